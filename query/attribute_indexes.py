"""Whether the spans table has the text indexes on the attribute item arrays (a ClickHouse read).

On ClickHouse 26.2 and newer the upstream layout indexes ``SpanAttributeItems`` and
``ResourceAttributeItems`` (``'key=value'`` strings, ALIAS columns) with ``text`` indexes
(schemas/migrations.py). A search condition ``has(SpanAttributeItems, 'k=v')`` is answered from
that index and prunes every granule without the pair; ``SpanAttributes['k'] = 'v'`` is not, and
reads the whole map of every span in the window (10M spans: 0.24 s against 0.01 s for a value no
span has). Without the text index (the bloom-filter layout of older servers) the ``has`` would
build the item array of every row, so the search builders add it only when this says so.
"""

from __future__ import annotations

from typing import Any

# The upstream names of the two indexes (schemas/clickhouse/0008_upstream_trace_layout.sql).
ITEM_INDEXES = ("idx_span_attr_items", "idx_res_attr_items")


def has_item_text_indexes(client: Any) -> bool:
    """True if both item arrays of ``otel_traces`` carry their text index in the current database
    (a sharded layout reads through ``remote()`` tables, which list no index: False)."""
    rows = client.query(
        "SELECT name FROM system.data_skipping_indices"
        " WHERE database = currentDatabase() AND table = 'otel_traces' AND type = 'text'"
    ).result_rows
    indexed = {str(r[0]) for r in rows}
    return all(name in indexed for name in ITEM_INDEXES)


class ItemIndexes:
    """The answer of :func:`has_item_text_indexes`, asked once per query process (the layout
    of a table never changes under a running service: a migration between layouts rebuilds it
    and the service restarts with the new version)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._known: bool | None = None

    def __call__(self) -> bool:
        if self._known is None:
            self._known = has_item_text_indexes(self._client)
        return self._known

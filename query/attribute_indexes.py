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

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

log = logging.getLogger("tracehouse.query")

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
    """The answer of :func:`has_item_text_indexes` for one query process.

    A yes is kept (a table never loses its indexes under a running service: changing the
    layout rebuilds the table, which a restart of the service follows). A no is asked again
    after ``RECHECK_SECONDS``, since the service may have started before ``tracehouse
    migrate`` created the table or its indexes; a failed read (ClickHouse unreachable, a user
    without access to ``system`` tables) counts as a no for that long, so searches go on
    without the index rather than fail.
    """

    RECHECK_SECONDS = 60.0

    def __init__(self, client: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._known = False
        self._ask_after = -math.inf

    def __call__(self) -> bool:
        if self._known:
            return True
        now = self._clock()
        if now < self._ask_after:
            return False
        try:
            self._known = has_item_text_indexes(self._client)
        except (DatabaseError, OperationalError) as exc:
            log.warning("cannot read the spans table's indexes, searching without them: %s", exc)
        if not self._known:
            self._ask_after = now + self.RECHECK_SECONDS
        return self._known

"""Field groups of the ``span_batch`` v2 wire format, read from its Avro schema.

The v2 record is a set of parallel arrays; writers (streams, test fixtures) and the reader
(sink) must agree on which arrays hold one entry per span and which are flattened per
resource, attribute, event or link. Deriving the groups from ``span_batch.v2.avsc`` keeps
that agreement in one place: a field added to the schema cannot be forgotten by one side.
"""

from __future__ import annotations

from typing import Any

from schemas.avro_codec import schema_json

FIELDS: tuple[str, ...] = tuple(f["name"] for f in schema_json("span_batch", 2)["fields"])

# Everything up to ``resource_index`` is a plain per-span value of the span itself.
SPAN_SCALARS: tuple[str, ...] = FIELDS[: FIELDS.index("resource_index")]

# Arrays with exactly one entry per span: the scalars plus each span's index or counts.
PER_SPAN: tuple[str, ...] = (
    *SPAN_SCALARS,
    "resource_index",
    "attribute_lengths",
    "event_counts",
    "link_counts",
)


def empty_record() -> dict[str, list[Any]]:
    """A v2 record with every array present and empty, ready to append to."""
    return {f: [] for f in FIELDS}


def _fields_of(item: str) -> tuple[str, ...]:
    return tuple(
        f["name"] for f in schema_json("span_batch", 2)["fields"] if f["type"]["items"] == item
    )


# Value types of the arrays; span_batch v3 packs each kind in its own Arrow layout.
STRING_FIELDS: tuple[str, ...] = _fields_of("string")
INT_FIELDS: tuple[str, ...] = _fields_of("int")
LONG_FIELDS: tuple[str, ...] = _fields_of("long")

"""Layout of the ``span_batch`` v3 wire format: the one declaration writer and reader share.

A v3 message is a set of parallel columns, each packed in Arrow memory layout inside one Avro
``bytes`` field, so the sink can wrap them as Arrow arrays without copying. The streams packer
(:mod:`streams.packed_batch`) and the sink reader (:mod:`sinks.packed_spans`) must agree on
three things, declared here and nowhere else:

- the columns, in wire order, and the buffer layout of each (:data:`COLUMNS`);
- what one entry of a column describes (a span, a resource, an attribute, an event, a link:
  :attr:`Column.entity`), so every column of an entity has the same entry count;
- how the entities nest (:data:`NESTING`): a flattened child column is cut into per-parent
  runs by a lengths column of the parent; resources are shared and referenced per span.

``schemas/avro/span_batch.v3.avsc`` is what travels; it is checked against this module at
import (field names, order, Avro types), and field by field, docs included, in
``tests/unit/test_span_batch_v3.py``. A column added to one and not the other fails at start-up
instead of producing messages one side cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.avro_codec import schema_json

VERSION = 3
SCHEMA = "span_batch"

# utf8: the UTF-8 bytes of all values concatenated, plus a ``<name>_offsets`` field of
# count + 1 int32 LE offsets; int32/int64: little-endian integers of that width, one per entry.
Layout = Literal["utf8", "int32", "int64"]
# What one entry of a column describes.
Entity = Literal[
    "span", "resource", "resource_attribute", "attribute", "event", "event_attribute", "link",
    "link_attribute",
]  # fmt: skip

SPAN_COUNT = "span_count"
OFFSETS_SUFFIX = "_offsets"


@dataclass(frozen=True)
class Column:
    name: str
    layout: Layout
    entity: Entity


COLUMNS: tuple[Column, ...] = (
    # The span itself: ids lower-case hex, times Unix nanoseconds, enums as OTLP numbers.
    Column("tenant_id", "utf8", "span"),
    Column("trace_id", "utf8", "span"),
    Column("span_id", "utf8", "span"),
    Column("parent_span_id", "utf8", "span"),
    Column("trace_state", "utf8", "span"),
    Column("name", "utf8", "span"),
    Column("kind", "int32", "span"),
    Column("service_name", "utf8", "span"),
    Column("start_time_unix_nano", "int64", "span"),
    Column("end_time_unix_nano", "int64", "span"),
    Column("status_code", "int32", "span"),
    Column("status_message", "utf8", "span"),
    Column("scope_name", "utf8", "span"),
    Column("scope_version", "utf8", "span"),
    # Resources travel once per batch; each span names its own by index.
    Column("resource_index", "int32", "span"),
    Column("resource_attribute_lengths", "int32", "resource"),
    Column("resource_attribute_keys", "utf8", "resource_attribute"),
    Column("resource_attribute_values", "utf8", "resource_attribute"),
    Column("attribute_lengths", "int32", "span"),
    Column("attribute_keys", "utf8", "attribute"),
    Column("attribute_values", "utf8", "attribute"),
    Column("event_counts", "int32", "span"),
    Column("event_time_unix_nano", "int64", "event"),
    Column("event_name", "utf8", "event"),
    Column("event_attribute_lengths", "int32", "event"),
    Column("event_attribute_keys", "utf8", "event_attribute"),
    Column("event_attribute_values", "utf8", "event_attribute"),
    Column("link_counts", "int32", "span"),
    Column("link_trace_id", "utf8", "link"),
    Column("link_span_id", "utf8", "link"),
    Column("link_trace_state", "utf8", "link"),
    Column("link_attribute_lengths", "int32", "link"),
    Column("link_attribute_keys", "utf8", "link_attribute"),
    Column("link_attribute_values", "utf8", "link_attribute"),
)

# child entity -> (parent entity, the parent's column holding each parent's child count).
# Children are flattened in parent order, so the counts cut them into per-parent runs.
NESTING: dict[Entity, tuple[Entity, str]] = {
    "resource_attribute": ("resource", "resource_attribute_lengths"),
    "attribute": ("span", "attribute_lengths"),
    "event": ("span", "event_counts"),
    "event_attribute": ("event", "event_attribute_lengths"),
    "link": ("span", "link_counts"),
    "link_attribute": ("link", "link_attribute_lengths"),
}
# Per span: index into the resources (entries of resource_attribute_lengths).
RESOURCE_INDEX = "resource_index"

LAYOUT: dict[str, Layout] = {c.name: c.layout for c in COLUMNS}


def columns_of(entity: Entity) -> tuple[str, ...]:
    """The columns with one entry per ``entity``, in wire order."""
    return tuple(c.name for c in COLUMNS if c.entity == entity)


# Columns that only say how entities nest (counts and the resource index), not a value.
STRUCTURE: frozenset[str] = frozenset({RESOURCE_INDEX, *(n for _, n in NESTING.values())})
# The span's own values, one per span (what the packer reads off each span).
SPAN_SCALARS: tuple[str, ...] = tuple(c for c in columns_of("span") if c not in STRUCTURE)


def offsets_field(column: str) -> str:
    return column + OFFSETS_SUFFIX


def wire_fields() -> tuple[tuple[str, str], ...]:
    """(Avro field name, Avro type) in wire order, as this declaration implies them."""
    out = [(SPAN_COUNT, "long")]
    for c in COLUMNS:
        out.append((c.name, "bytes"))
        if c.layout == "utf8":
            out.append((offsets_field(c.name), "bytes"))
    return tuple(out)


def avsc_fields() -> tuple[tuple[str, str], ...]:
    """(Avro field name, Avro type) as ``span_batch.v3.avsc`` declares them."""
    return tuple((f["name"], f["type"]) for f in schema_json(SCHEMA, VERSION)["fields"])


if wire_fields() != avsc_fields():
    raise RuntimeError("span_batch.v3.avsc does not match schemas/span_batch_v3.py (ADR 0003)")

"""Decoded ``span_batch`` v3 record -> checked Arrow arrays over its buffers -> ``otel_traces``.

v3 columns arrive as Arrow buffers inside Avro ``bytes`` (layout: :mod:`schemas.span_batch_v3`),
so the arrays are views of the decoded bytes, not copies, and the table is assembled from them
with offsets: maps, events and links are rebuilt from their flattened values and per-owner
counts, never through per-span Python objects. The bytes come from the network: every buffer
(widths, offset counts, monotonic in-range offsets, UTF-8) and every count of the nesting is
checked before Arrow sees it, and a breach is ``InvalidRecord`` so the worker sends the
message to the DLQ instead of crashing or storing garbage.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.span_batch_v3 import (
    LAYOUT,
    NESTING,
    RESOURCE_INDEX,
    SPAN_COUNT,
    Entity,
    columns_of,
    offsets_field,
)
from sinks.otel_names import OTEL_TRACES_COLUMNS, SPAN_KIND_NAMES, STATUS_CODE_NAMES, enum_names
from sinks.window_columns import InvalidRecord

_NS = pa.timestamp("ns")

# Wire dtype (little-endian) and the native dtype Arrow needs; equal on little-endian hosts,
# where astype(copy=False) is then a no-op and the array stays a view of the message.
_INTS: dict[str, tuple[np.dtype[Any], np.dtype[Any], pa.DataType]] = {
    "int32": (np.dtype("<i4"), np.dtype(np.int32), pa.int32()),
    "int64": (np.dtype("<i8"), np.dtype(np.int64), pa.int64()),
}


def _ints(field: str, layout: str, buf: bytes) -> np.ndarray:
    wire, native, _ = _INTS[layout]
    if len(buf) % wire.itemsize:
        raise InvalidRecord(
            f"span_batch v3: {field} has {len(buf)} bytes, not a multiple of {wire.itemsize}"
        )
    return np.frombuffer(buf, wire).astype(native, copy=False)


def _strings(field: str, data: bytes, offsets_buf: bytes) -> pa.StringArray:
    offsets = _ints(offsets_field(field), "int32", offsets_buf)
    if not len(offsets):
        raise InvalidRecord(f"span_batch v3: {offsets_field(field)} is empty (needs count + 1)")
    if offsets[0] != 0 or offsets[-1] != len(data):
        raise InvalidRecord(
            f"span_batch v3: {offsets_field(field)} spans {offsets[0]}..{offsets[-1]},"
            f" not 0..{len(data)} (the length of {field})"
        )
    if len(offsets) > 1 and (np.diff(offsets) < 0).any():
        raise InvalidRecord(f"span_batch v3: {offsets_field(field)} is not non-decreasing")
    array = pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        array.validate(full=True)  # offsets are sound by now: this is the UTF-8 check
    except pa.ArrowInvalid as exc:
        raise InvalidRecord(f"span_batch v3: {field} is not valid UTF-8: {exc}") from exc
    return array


def columns_from_packed(rec: dict[str, Any]) -> dict[str, pa.Array]:
    """Every column of a decoded v3 record as a checked Arrow array over the message bytes."""
    columns: dict[str, pa.Array] = {}
    for field, layout in LAYOUT.items():
        if layout == "utf8":
            columns[field] = _strings(field, rec[field], rec[offsets_field(field)])
        else:
            columns[field] = pa.array(_ints(field, layout, rec[field]), _INTS[layout][2])
    spans = rec[SPAN_COUNT]
    if len(columns["trace_id"]) != spans:
        raise InvalidRecord(
            f"span_batch v3: span_count is {spans}, trace_id has {len(columns['trace_id'])}"
        )
    return columns


def _counts(columns: dict[str, pa.Array]) -> dict[Entity, int]:
    """Entries per entity; every column of an entity must have that many."""
    counts: dict[Entity, int] = {}
    for entity in ("span", "resource", *NESTING):
        names = columns_of(entity)
        n = counts[entity] = len(columns[names[0]])
        for f in names[1:]:
            if len(columns[f]) != n:
                raise InvalidRecord(f"span_batch: {f} has {len(columns[f])} entries, {entity} {n}")
    return counts


def _offsets(lengths: pa.Array, total: int, what: str) -> pa.Array:
    """Per-owner counts -> Arrow list offsets, checked against the flattened entry count."""
    counts = lengths.to_numpy()
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    if len(counts):
        np.cumsum(counts, out=offsets[1:])
    if offsets[-1] != total or (len(counts) and counts.min() < 0):
        raise InvalidRecord(f"span_batch: {what} lengths add up to {offsets[-1]}, not {total}")
    return pa.array(offsets.astype(np.int32))


def otel_traces_from_packed(rec: dict[str, Any]) -> pa.Table:
    """One decoded v3 ``SpanBatch`` -> an Arrow table with exactly the ``otel_traces`` columns."""
    c = columns_from_packed(rec)
    counts = _counts(c)
    offsets = {
        child: _offsets(c[lengths], counts[child], child)
        for child, (_parent, lengths) in NESTING.items()
    }
    resource_index = c[RESOURCE_INDEX]
    if counts["span"] and (
        pc.min(resource_index).as_py() < 0 or pc.max(resource_index).as_py() >= counts["resource"]
    ):
        raise InvalidRecord("span_batch: resource_index out of range")

    def map_of(entity: Entity) -> pa.MapArray:
        return pa.MapArray.from_arrays(offsets[entity], c[f"{entity}_keys"], c[f"{entity}_values"])

    def nested(entity: Entity, values: pa.Array) -> pa.ListArray:
        return pa.ListArray.from_arrays(offsets[entity], values)

    start = c["start_time_unix_nano"]
    duration = pc.max_element_wise(pc.subtract(c["end_time_unix_nano"], start), 0)
    columns = [
        start.cast(_NS),
        c["trace_id"],
        c["span_id"],
        c["parent_span_id"],
        c["trace_state"],
        c["name"],
        enum_names(c["kind"], SPAN_KIND_NAMES),
        c["service_name"],
        map_of("resource_attribute").take(resource_index),
        c["scope_name"],
        c["scope_version"],
        map_of("attribute"),
        duration.cast(pa.uint64()),
        enum_names(c["status_code"], STATUS_CODE_NAMES),
        c["status_message"],
        nested("event", c["event_time_unix_nano"].cast(_NS)),
        nested("event", c["event_name"]),
        nested("event", map_of("event_attribute")),
        nested("link", c["link_trace_id"]),
        nested("link", c["link_span_id"]),
        nested("link", c["link_trace_state"]),
        nested("link", map_of("link_attribute")),
        c["tenant_id"],
    ]
    return pa.Table.from_arrays(columns, names=list(OTEL_TRACES_COLUMNS))

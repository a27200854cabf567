"""Decoded ``span_batch`` v3 record -> Arrow arrays over its buffers -> ``otel_traces`` table.

v3 columns arrive as Arrow buffers inside Avro ``bytes`` (layout in
docs/adr/0003-packed-span-batches.md), so the arrays are views of the decoded bytes, not
copies; the table is then assembled by :func:`sinks.columnar_spans.otel_traces_from_columns`,
exactly as for v2. The bytes come from the network: every buffer is checked (widths, offset
counts, monotonic in-range offsets, UTF-8, span count) before Arrow sees it, and a breach is
``InvalidRecord`` so the worker sends the message to the DLQ instead of crashing or storing
garbage.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from schemas.span_batch_v3 import LAYOUT, SPAN_COUNT, offsets_field
from sinks.columnar_spans import otel_traces_from_columns
from sinks.window_columns import InvalidRecord

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
    """Every v2 field of a decoded v3 record as a checked Arrow array over the message bytes."""
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


def otel_traces_from_packed(rec: dict[str, Any]) -> pa.Table:
    """One decoded v3 ``SpanBatch`` -> the ``otel_traces`` table (same rows as v1 and v2)."""
    return otel_traces_from_columns(columns_from_packed(rec))

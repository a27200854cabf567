"""``span_batch`` columns (v2 lists or v3 Arrow arrays) -> the ``otel_traces`` Arrow table.

v2 carries every field as its own Avro array, so fastavro hands back plain Python lists and
each becomes one Arrow array in C++; v3 carries the same fields already in Arrow layout and
:mod:`sinks.packed_spans` hands them over as Arrow arrays. Either way the table is assembled
here, so both versions store identical rows: maps, events and links are rebuilt from their
flattened values and per-owner lengths with offsets, never through per-span dicts. The result
equals :func:`sinks.span_columns.otel_traces_arrow` of the same spans sent as v1 (same column
types), which tests/unit/test_span_batch_v2.py and test_span_batch_v3.py check. Lengths that
do not add up are a contract breach (``InvalidRecord``), so a bad message goes to the DLQ
instead of stopping the worker.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.span_batch_v2 import PER_SPAN
from sinks.span_columns import OTEL_TRACES_COLUMNS, SPAN_KIND_NAMES, STATUS_CODE_NAMES, enum_names
from sinks.window_columns import InvalidRecord

_NS = pa.timestamp("ns")
_STR = pa.string()

# A decoded column: a Python list (v2) or an Arrow array (v3, see sinks.packed_spans).
Column: TypeAlias = list[Any] | pa.Array


def _arrow(values: Column, kind: pa.DataType) -> pa.Array:
    if isinstance(values, pa.Array):
        return values if values.type == kind else values.cast(kind)
    return pa.array(values, kind)


def _numpy(values: Column) -> np.ndarray:
    return values.to_numpy() if isinstance(values, pa.Array) else np.asarray(values, np.int64)


def _offsets(lengths: Column, total: int, what: str) -> pa.Array:
    """Per-owner lengths -> Arrow list offsets, checked against the flattened value count."""
    counts = _numpy(lengths)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    if len(counts):
        np.cumsum(counts, out=offsets[1:])
    if offsets[-1] != total or (len(counts) and counts.min() < 0):
        raise InvalidRecord(f"span_batch: {what} lengths add up to {offsets[-1]}, not {total}")
    return pa.array(offsets.astype(np.int32))


def _map(rec: dict[str, Any], prefix: str, lengths_field: str) -> pa.MapArray:
    keys, values = rec[f"{prefix}_keys"], rec[f"{prefix}_values"]
    if len(keys) != len(values):
        raise InvalidRecord(f"span_batch: {len(keys)} {prefix} keys, {len(values)} values")
    offsets = _offsets(rec[lengths_field], len(keys), prefix)
    return pa.MapArray.from_arrays(offsets, _arrow(keys, _STR), _arrow(values, _STR))


def _same_length(rec: dict[str, Any], fields: tuple[str, ...], n: int, owner: str) -> None:
    for f in fields:
        if len(rec[f]) != n:
            raise InvalidRecord(f"span_batch: {f} has {len(rec[f])} entries, {owner} {n}")


def otel_traces_from_columns(rec: dict[str, Any]) -> pa.Table:
    """Decoded ``SpanBatch`` columns -> an Arrow table with exactly the ``otel_traces`` columns.

    ``rec`` maps every v2 field to a list (v2) or an Arrow array (v3); lengths are checked.
    """
    n = len(rec["trace_id"])
    _same_length(rec, PER_SPAN, n, "spans")
    resources = _map(rec, "resource_attribute", "resource_attribute_lengths")
    resource_index = _arrow(rec["resource_index"], pa.int32())
    if n and (
        pc.min(resource_index).as_py() < 0 or pc.max(resource_index).as_py() >= len(resources)
    ):
        raise InvalidRecord("span_batch: resource_index out of range")

    events = len(rec["event_time_unix_nano"])
    _same_length(rec, ("event_name", "event_attribute_lengths"), events, "events")
    event_offsets = _offsets(rec["event_counts"], events, "event")
    links = len(rec["link_trace_id"])
    _same_length(
        rec, ("link_span_id", "link_trace_state", "link_attribute_lengths"), links, "links"
    )
    link_offsets = _offsets(rec["link_counts"], links, "link")

    def col(field: str, kind: pa.DataType = _STR) -> pa.Array:
        return _arrow(rec[field], kind)

    def nested(offsets: pa.Array, values: pa.Array) -> pa.ListArray:
        return pa.ListArray.from_arrays(offsets, values)

    start = col("start_time_unix_nano", pa.int64())
    duration = pc.max_element_wise(pc.subtract(col("end_time_unix_nano", pa.int64()), start), 0)
    columns = [
        start.cast(_NS),
        col("trace_id"),
        col("span_id"),
        col("parent_span_id"),
        col("trace_state"),
        col("name"),
        enum_names(col("kind", pa.int32()), SPAN_KIND_NAMES),
        col("service_name"),
        resources.take(resource_index),
        col("scope_name"),
        col("scope_version"),
        _map(rec, "attribute", "attribute_lengths"),
        duration.cast(pa.uint64()),
        enum_names(col("status_code", pa.int32()), STATUS_CODE_NAMES),
        col("status_message"),
        nested(event_offsets, col("event_time_unix_nano", pa.int64()).cast(_NS)),
        nested(event_offsets, col("event_name")),
        nested(event_offsets, _map(rec, "event_attribute", "event_attribute_lengths")),
        nested(link_offsets, col("link_trace_id")),
        nested(link_offsets, col("link_span_id")),
        nested(link_offsets, col("link_trace_state")),
        nested(link_offsets, _map(rec, "link_attribute", "link_attribute_lengths")),
        col("tenant_id"),
    ]
    return pa.Table.from_arrays(columns, names=list(OTEL_TRACES_COLUMNS))

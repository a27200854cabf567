"""Avro span records -> the columns of ``otel_traces``.

Two builders with the same output: :func:`otel_traces_arrow` (used by the sink) lets pyarrow
convert the decoded records in C++ and derives the exporter's columns with vectorised
compute, :func:`otel_traces_columns` is the plain-Python column-list variant kept for the
``bench/sink.py`` comparison. Names, kinds and status strings match what the OTel Collector's
ClickHouse exporter writes, so existing Grafana/SQL queries work unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

# pdata's SpanKind.String() / StatusCode.String(), as the current exporter stores them.
SPAN_KIND_NAMES = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODE_NAMES = ("Unset", "Ok", "Error")

OTEL_TRACES_COLUMNS = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
    "TenantId",
)

_STR_MAP = pa.map_(pa.string(), pa.string())
_EVENT = pa.struct(
    [("time_unix_nano", pa.int64()), ("name", pa.string()), ("attributes", _STR_MAP)]
)
_LINK = pa.struct(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("trace_state", pa.string()),
        ("attributes", _STR_MAP),
    ]
)
# The Avro ``Span`` record as an Arrow struct (field names as in span_batch.v1.avsc).
SPAN_STRUCT = pa.struct(
    [
        ("tenant_id", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("trace_state", pa.string()),
        ("name", pa.string()),
        ("kind", pa.int32()),
        ("service_name", pa.string()),
        ("start_time_unix_nano", pa.int64()),
        ("end_time_unix_nano", pa.int64()),
        ("status_code", pa.int32()),
        ("status_message", pa.string()),
        ("resource_attributes", _STR_MAP),
        ("scope_name", pa.string()),
        ("scope_version", pa.string()),
        ("attributes", _STR_MAP),
        ("events", pa.list_(_EVENT)),
        ("links", pa.list_(_LINK)),
    ]
)
_NS = pa.timestamp("ns")


def _name(names: tuple[str, ...], code: int) -> str:
    return names[code] if 0 <= code < len(names) else str(code)


def enum_names(codes: pa.Array, names: tuple[str, ...]) -> pa.Array:
    """OTLP enum numbers -> exporter strings; unknown numbers are kept as their digits."""
    known = pc.and_(pc.greater_equal(codes, 0), pc.less(codes, len(names)))
    index = pc.if_else(known, codes, 0)
    return pc.if_else(known, pc.take(pa.array(names), index), pc.cast(codes, pa.string()))


def _nested(lists: pa.ListArray, field: str, kind: pa.DataType | None = None) -> pa.Array:
    """One field of a list<struct> as list<field> with the same offsets (a Nested column)."""
    values = pc.struct_field(lists.values, field)
    if kind is not None:
        values = values.cast(kind)
    return pa.ListArray.from_arrays(lists.offsets, values)


def otel_traces_arrow(spans: Sequence[dict[str, Any]]) -> pa.Table:
    """Decoded Avro spans -> an Arrow table with exactly the ``otel_traces`` columns."""
    s = pa.array(spans, type=SPAN_STRUCT)

    def f(name: str) -> pa.Array:
        return pc.struct_field(s, name)

    start = f("start_time_unix_nano")
    duration = pc.max_element_wise(pc.subtract(f("end_time_unix_nano"), start), 0)
    events, links = f("events"), f("links")
    columns = [
        start.cast(_NS),
        f("trace_id"),
        f("span_id"),
        f("parent_span_id"),
        f("trace_state"),
        f("name"),
        enum_names(f("kind"), SPAN_KIND_NAMES),
        f("service_name"),
        f("resource_attributes"),
        f("scope_name"),
        f("scope_version"),
        f("attributes"),
        duration.cast(pa.uint64()),
        enum_names(f("status_code"), STATUS_CODE_NAMES),
        f("status_message"),
        _nested(events, "time_unix_nano", _NS),
        _nested(events, "name"),
        _nested(events, "attributes"),
        _nested(links, "trace_id"),
        _nested(links, "span_id"),
        _nested(links, "trace_state"),
        _nested(links, "attributes"),
        f("tenant_id"),
    ]
    return pa.Table.from_arrays(columns, names=list(OTEL_TRACES_COLUMNS))


def otel_traces_columns(spans: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """The same columns as Python lists, for ``client.insert(column_oriented=True)``."""
    cols: list[list[Any]] = [[] for _ in OTEL_TRACES_COLUMNS]
    (
        ts,
        trace_id,
        span_id,
        parent,
        state,
        name,
        kind,
        service,
        res_attrs,
        scope_name,
        scope_version,
        attrs,
        duration,
        status,
        status_msg,
        ev_ts,
        ev_name,
        ev_attrs,
        ln_trace,
        ln_span,
        ln_state,
        ln_attrs,
        tenant,
    ) = cols
    for s in spans:
        start = s["start_time_unix_nano"]
        ts.append(start)
        trace_id.append(s["trace_id"])
        span_id.append(s["span_id"])
        parent.append(s["parent_span_id"])
        state.append(s["trace_state"])
        name.append(s["name"])
        kind.append(_name(SPAN_KIND_NAMES, s["kind"]))
        service.append(s["service_name"])
        res_attrs.append(s["resource_attributes"])
        scope_name.append(s["scope_name"])
        scope_version.append(s["scope_version"])
        attrs.append(s["attributes"])
        duration.append(max(0, s["end_time_unix_nano"] - start))
        status.append(_name(STATUS_CODE_NAMES, s["status_code"]))
        status_msg.append(s["status_message"])
        events = s["events"]
        ev_ts.append([e["time_unix_nano"] for e in events])
        ev_name.append([e["name"] for e in events])
        ev_attrs.append([e["attributes"] for e in events])
        links = s["links"]
        ln_trace.append([lk["trace_id"] for lk in links])
        ln_span.append([lk["span_id"] for lk in links])
        ln_state.append([lk["trace_state"] for lk in links])
        ln_attrs.append([lk["attributes"] for lk in links])
        tenant.append(s["tenant_id"])
    return cols

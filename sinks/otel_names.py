"""Names the OTel Collector's ClickHouse exporter uses, so existing Grafana/SQL queries work.

The ``otel_traces`` column order, and pdata's ``SpanKind.String()`` / ``StatusCode.String()``
for OTLP enum numbers; shared by the span table (:mod:`sinks.packed_spans`) and the RED table
(:mod:`sinks.window_columns`), which must spell kinds and statuses the same way.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

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


def enum_name(names: tuple[str, ...], code: int) -> str:
    """One OTLP enum number -> exporter string; an unknown number is kept as its digits."""
    return names[code] if 0 <= code < len(names) else str(code)


def enum_names(codes: pa.Array, names: tuple[str, ...]) -> pa.Array:
    """:func:`enum_name` over an Arrow array, vectorised."""
    known = pc.and_(pc.greater_equal(codes, 0), pc.less(codes, len(names)))
    index = pc.if_else(known, codes, 0)
    return pc.if_else(known, pc.take(pa.array(names), index), pc.cast(codes, pa.string()))

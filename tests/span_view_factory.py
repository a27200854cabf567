"""Hand-built :class:`streams.span_views.SpanView` values for unit tests of streams' consumers.

Tests of RED, the service graph, policies and the trace buffer care about a few fields of a
span each; this builds a complete view with neutral defaults for the rest. Keyword-only and
typed, so a misspelled field is a mypy error here too. Attributes go into the protobuf span
as string values (the cache stays empty), so the tests read them the way the worker does.
"""

from __future__ import annotations

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from streams.span_views import SpanView

TRACE_ID = b"\x01" * 16
SPAN_ID = b"\x02" * 8


def span_view(
    *,
    tenant_id: str = "",
    trace_id: bytes = TRACE_ID,
    span_id: bytes = SPAN_ID,
    parent_span_id: bytes = b"",
    trace_state: str = "",
    name: str = "op",
    kind: int = trace_pb2.Span.SPAN_KIND_SERVER,
    service_name: str = "svc",
    start_time_unix_nano: int = 0,
    end_time_unix_nano: int = 1_000_000,
    status_code: int = 0,
    resource_attributes: dict[str, str] | None = None,
    attributes: dict[str, str] | None = None,
) -> SpanView:
    span = trace_pb2.Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        trace_state=trace_state,
        name=name,
        kind=kind,  # type: ignore[arg-type]  # any int, as on the wire
        start_time_unix_nano=start_time_unix_nano,
        end_time_unix_nano=end_time_unix_nano,
    )
    span.status.code = status_code  # type: ignore[assignment]
    for key, value in (attributes or {}).items():
        span.attributes.add(key=key, value=common_pb2.AnyValue(string_value=value))
    return SpanView(
        tenant_id,
        trace_id,
        span_id,
        parent_span_id,
        trace_state,
        name,
        kind,
        service_name,
        start_time_unix_nano,
        end_time_unix_nano,
        status_code,
        resource_attributes if resource_attributes is not None else {},
        span,
        common_pb2.InstrumentationScope(),
    )

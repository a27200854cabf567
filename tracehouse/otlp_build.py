"""Small builders for synthetic OTLP requests (demo load, load generator, tests).

Both generators group spans as an SDK does: one ``ResourceSpans`` per service carrying
``service.name``, with one instrumentation scope. Keeping that here means the demo and the
benchmarks send requests of the same shape as real exporters.
"""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2


def kv(key: str, value: str | int | bool) -> common_pb2.KeyValue:
    """An OTLP attribute of the matching value type (bool before int: bool is an int)."""
    out = common_pb2.KeyValue(key=key)
    if isinstance(value, bool):
        out.value.bool_value = value
    elif isinstance(value, int):
        out.value.int_value = value
    else:
        out.value.string_value = value
    return out


class ServiceScopes:
    """Hands out the ``ScopeSpans`` of each service in one request, creating it on first use."""

    def __init__(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        environment: str,
        scope_name: str,
    ) -> None:
        self.request = request
        self.environment = environment
        self.scope_name = scope_name
        self._by_service: dict[str, trace_pb2.ScopeSpans] = {}

    def __call__(self, service: str) -> trace_pb2.ScopeSpans:
        ss = self._by_service.get(service)
        if ss is None:
            rs = self.request.resource_spans.add()
            rs.resource.attributes.extend(
                [kv("service.name", service), kv("deployment.environment", self.environment)]
            )
            ss = rs.scope_spans.add()
            ss.scope.name = self.scope_name
            ss.scope.version = "1"
            self._by_service[service] = ss
        return ss

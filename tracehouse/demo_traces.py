"""Deterministic synthetic traces (OTLP protobuf) for the tests and the benchmarks.

Each trace is a chain of server/client hops that follows the demo shop's fixed topology
(tracehouse/shop_topology.py): it starts at a frontend route, and every client span calls one
of the services that route's service really calls (a service that calls no other service
calls itself, which adds no edge), so the service map is the shop's, not a complete graph.
Occasional errors and slow spans. Same seed, same bytes.
"""

from __future__ import annotations

import random
import time
import urllib.request

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tracehouse.otlp_build import ServiceScopes, kv
from tracehouse.shop_topology import BY_NAME, SHOP, Service, parse_call


def _calls(service: Service) -> list[str]:
    return [call for route in service.routes for call in route.calls]


SERVICES = tuple(s.name for s in SHOP)
OPERATIONS = {s.name: tuple(r.name for r in s.routes) for s in SHOP}
# service -> the services it calls (the shop's HTTP edges; databases and caches are not spans
# of a service of their own).
CALLEES = {
    s.name: tuple(sorted({c for c, _m, _p in map(parse_call, _calls(s)) if c in BY_NAME}))
    for s in SHOP
}


def make_request(
    traces: int, seed: int = 1, spans_per_trace: int = 5, now_ns: int | None = None
) -> trace_service_pb2.ExportTraceServiceRequest:
    """Build one export request holding ``traces`` whole traces."""
    rng = random.Random(seed)
    now_ns = time.time_ns() if now_ns is None else now_ns
    request = trace_service_pb2.ExportTraceServiceRequest()
    scope = ServiceScopes(request, "demo", "tracehouse.demo")

    for _ in range(traces):
        trace_id = rng.randbytes(16)
        start = now_ns - rng.randint(0, 5_000_000_000)
        error_trace = rng.random() < 0.05
        slow_trace = rng.random() < 0.02
        parent_id = b""
        service = "frontend"
        # Children nest inside their parent, each a fraction of it, as real call trees do.
        span_start = start
        duration = rng.randint(2_000_000, 120_000_000) * (50 if slow_trace else 1)
        for depth in range(spans_per_trace):
            span = scope(service).spans.add()
            span.trace_id = trace_id
            span.span_id = rng.randbytes(8)
            span.parent_span_id = parent_id
            span.name = rng.choice(OPERATIONS[service])
            span.kind = (
                trace_pb2.Span.SPAN_KIND_SERVER
                if depth % 2 == 0
                else trace_pb2.Span.SPAN_KIND_CLIENT
            )
            span.start_time_unix_nano = span_start
            span.end_time_unix_nano = span_start + duration
            span.attributes.extend(
                [
                    kv("http.route", span.name),
                    kv("user.id", f"u{rng.randint(1, 500)}"),
                    kv("retry", depth > 3),
                ]
            )
            if error_trace and depth == spans_per_trace - 1:
                span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
                span.status.message = "upstream failed"
            parent_id = span.span_id
            span_start += int(duration * rng.uniform(0.02, 0.2))
            duration = int(duration * rng.uniform(0.4, 0.75))
            if depth % 2 == 1:  # client span: the next span is the callee's server span
                service = rng.choice(CALLEES[service] or (service,))
    return request


def post_otlp_http(endpoint: str, body: bytes, timeout: float = 30) -> int:
    req = urllib.request.Request(
        endpoint, data=body, method="POST", headers={"Content-Type": "application/x-protobuf"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return int(resp.status)


def send_demo_load(endpoint: str, requests: int, traces_per_request: int, seed: int = 1) -> int:
    """Send ``requests`` export requests; returns the number of spans sent."""
    spans = 0
    for i in range(requests):
        req = make_request(traces_per_request, seed=seed + i)
        post_otlp_http(endpoint, req.SerializeToString())
        spans += sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
    return spans

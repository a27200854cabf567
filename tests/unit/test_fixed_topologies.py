"""Synthetic traces follow fixed topologies, so service maps look like real systems."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tracehouse.demo_traces import SERVICES, make_request
from tracehouse.loadgen_traces import SERVICE_NAMES, LoadProfile, TraceGenerator, call_topology
from tracehouse.shop_topology import edges as shop_edges


def service_edges(request: trace_service_pb2.ExportTraceServiceRequest) -> set[tuple[str, str]]:
    spans = {}
    for rs in request.resource_spans:
        service = next(
            a.value.string_value for a in rs.resource.attributes if a.key == "service.name"
        )
        for ss in rs.scope_spans:
            for span in ss.spans:
                spans[(span.trace_id, span.span_id)] = (service, span)
    out = set()
    for (trace_id, _sid), (service, span) in spans.items():
        parent = spans.get((trace_id, span.parent_span_id))
        if parent is not None and parent[0] != service:
            out.add((parent[0], service))
    return out


def test_demo_traces_draw_the_shop_map() -> None:
    found = service_edges(make_request(traces=500, seed=4))
    assert found <= shop_edges()
    assert len(found) >= 6
    complete = len(SERVICES) * (len(SERVICES) - 1)
    assert len(found) < complete / 4


def test_loadgen_traces_follow_the_layered_topology() -> None:
    for n in (2, 3, 10, len(SERVICE_NAMES)):
        gen = TraceGenerator(LoadProfile(services=n), seed=n)
        allowed = {
            (a, b) for a, callees in call_topology(SERVICE_NAMES[:n]).items() for b in callees
        }
        found = service_edges(gen.batch(300, 10**18).request)
        assert found <= allowed, found - allowed
        assert found, n
        # No cycles: the graph is a DAG (every edge goes to a later service).
        order = {s: i for i, s in enumerate(SERVICE_NAMES[:n])}
        assert all(order[a] < order[b] for a, b in found)

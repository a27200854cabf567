"""The load generator's traces: deterministic, well-formed trees, bounded knobs."""

from __future__ import annotations

import pytest

from tracehouse.loadgen_traces import (
    CLIENT,
    ERROR,
    SERVER,
    LoadProfile,
    TraceGenerator,
    span_count,
)

NOW = 1_800_000_000_000_000_000


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a = TraceGenerator(LoadProfile(), seed=5).batch(50, NOW)
    b = TraceGenerator(LoadProfile(), seed=5).batch(50, NOW)
    c = TraceGenerator(LoadProfile(), seed=6).batch(50, NOW)
    assert a.request.SerializeToString() == b.request.SerializeToString()
    assert a.late_request is not None and b.late_request is not None
    assert a.late_request.SerializeToString() == b.late_request.SerializeToString()
    assert a.request.SerializeToString() != c.request.SerializeToString()


def test_tree_shape_calls_pair_client_and_server_across_services() -> None:
    profile = LoadProfile(services=8, max_fanout=3, max_depth=3, max_spans=30)
    gen = TraceGenerator(profile, seed=2)
    for _ in range(200):
        trace = gen.trace(NOW)
        assert 3 <= len(trace.spans) <= profile.max_spans
        by_id = {span.span_id: (svc, span) for svc, span in trace.spans}
        roots = [s for _, s in trace.spans if not s.parent_span_id]
        assert len(roots) == 1 and roots[0].kind == SERVER
        for service, span in trace.spans:
            assert span.trace_id == trace.trace_id
            if not span.parent_span_id:
                continue
            parent_service, parent = by_id[span.parent_span_id]
            assert parent.start_time_unix_nano <= span.start_time_unix_nano
            assert span.end_time_unix_nano <= parent.end_time_unix_nano
            if span.kind == SERVER:  # callee side of a call: another service
                assert parent.kind == CLIENT and parent_service != service
            else:
                assert span.kind == CLIENT and parent.kind == SERVER
                assert parent_service == service


def test_service_count_is_respected() -> None:
    for services in (5, 12, 20):
        gen = TraceGenerator(LoadProfile(services=services, max_fanout=4), seed=3)
        seen = {svc for _ in range(500) for svc, _ in gen.trace(NOW).spans}
        assert len(seen) == services
    with pytest.raises(ValueError):
        LoadProfile(services=21)


def test_late_spans_are_the_held_back_tail_of_a_fraction_of_traces() -> None:
    profile = LoadProfile(late_trace_rate=0.25, late_share=0.3)
    batch = TraceGenerator(profile, seed=4).batch(2000, NOW)
    assert batch.late_request is not None
    assert span_count(batch.request) == batch.spans
    assert span_count(batch.late_request) == batch.late_spans
    late_traces = {
        s.trace_id
        for rs in batch.late_request.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    }
    on_time_traces = {
        s.trace_id for rs in batch.request.resource_spans for ss in rs.scope_spans for s in ss.spans
    }
    assert late_traces <= on_time_traces  # every trace keeps at least one on-time span
    assert 0.2 < len(late_traces) / 2000 < 0.3
    gen = TraceGenerator(LoadProfile(late_trace_rate=0.0), seed=4)
    assert gen.batch(200, NOW).late_request is None


def test_attribute_cardinality_is_bounded() -> None:
    batch = TraceGenerator(LoadProfile(cardinality=7), seed=5).batch(500, NOW)
    values = {
        kv.value.string_value
        for rs in batch.request.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
        for kv in s.attributes
        if kv.key == "user.id"
    }
    assert len(values) == 7


def test_errors_propagate_to_the_root_and_slow_traces_are_longer() -> None:
    gen = TraceGenerator(LoadProfile(error_rate=1.0, slow_rate=1.0), seed=6)
    trace = gen.trace(NOW)
    root = next(s for _, s in trace.spans if not s.parent_span_id)
    assert root.status.code == ERROR
    assert root.end_time_unix_nano - root.start_time_unix_nano >= 250_000_000
    clean = TraceGenerator(LoadProfile(error_rate=0.0), seed=6).batch(100, NOW)
    assert all(
        s.status.code != ERROR
        for rs in clean.request.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    )

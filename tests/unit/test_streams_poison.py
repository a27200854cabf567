"""No span can stop the streams worker: each case refused one by one, counted, dead-lettered.

Regression tests for spans that once crashed the worker on every restart (times at or above
2^63 ns, int64 sums of absurd durations, kept spans too large for one message).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from opentelemetry.proto.trace.v1 import trace_pb2

from schemas import avro_codec
from schemas.span_limits import MAX_TIME_UNIX_NANO
from streams import counters as c
from streams.counters import CounterSet
from streams.partition_processor import AggregationOptions, PartitionProcessor
from streams.policies import AlwaysSample, Decision, TraceView
from streams.sampling_config import parse_config
from streams.service_graph import ServiceGraph
from streams.span_batch_messages import encode_span_batches
from streams.span_views import span_views
from tests.span_view_factory import span_view
from tracehouse.span_specs import CLIENT, SERVER, SpanSpec, payload, sid, tid, traces_data

KEEP_ALL = {"decision_wait": 1, "policies": [{"name": "all", "type": "always_sample"}]}
NOW_NS = 1_700_000_000_000_000_000


def make() -> PartitionProcessor:
    cfg = parse_config(KEEP_ALL)
    return PartitionProcessor(
        "raw/0", cfg, cfg.policies, AggregationOptions(red_window_seconds=1), CounterSet()
    )


def run(proc: PartitionProcessor, until: float) -> tuple[list[bytes], Counter[tuple[str, str]]]:
    """Tick to ``until``; the span ids kept and every counter published on the way."""
    kept: list[bytes] = []
    counts: Counter[tuple[str, str]] = Counter()
    t = 100.0
    while t <= until:
        out = proc.tick(t)
        kept += [v.span_id for v in out.sampled]
        counts.update(out.counters)
        # Everything the worker would publish must encode with its contract.
        encode_span_batches(out.sampled)
        if out.red is not None:
            avro_codec.encode("red_metrics", out.red)
        if out.edges is not None:
            avro_codec.encode("graph_edges", out.edges)
        t += 0.5
    return kept, counts


def _raw(spans: list[SpanSpec], mutate: dict[int, dict[str, int | bytes]]) -> bytes:
    data = traces_data(spans)
    flat = [s for rs in data.resource_spans for ss in rs.scope_spans for s in ss.spans]
    for index, fields in mutate.items():
        for name, value in fields.items():
            if name == "event_time":
                flat[index].events.add(time_unix_nano=value, name="e")
            else:
                setattr(flat[index], name, value)
    return data.SerializeToString()


def test_times_beyond_datetime64_are_refused_per_span_and_the_rest_is_kept() -> None:
    proc = make()
    spans = [SpanSpec(tid(1), sid(n), "svc", start_ns=NOW_NS) for n in range(1, 6)]
    message = _raw(
        spans,
        {
            0: {"start_time_unix_nano": 2**63},
            1: {"end_time_unix_nano": 9_300_000_000_000_000_000},
            2: {"event_time": 2**64 - 1},
        },
    )
    assert proc.process(0, message, 100.0) is None
    assert [(d.reason, d.spans) for d in proc.dead_letters] == [("time_out_of_range", 3)]
    refused = trace_pb2.TracesData.FromString(proc.dead_letters[0].payload)
    assert {s.span_id for rs in refused.resource_spans for ss in rs.scope_spans for s in ss.spans}
    kept, counts = run(proc, 103)
    assert sorted(kept) == [sid(4), sid(5)]
    assert counts[(c.SPANS_RECEIVED, "")] == 5
    assert counts[(c.SPANS_REJECTED, "time_out_of_range")] == 3


def test_the_largest_storable_time_is_kept() -> None:
    proc = make()
    last: dict[int, dict[str, int | bytes]] = {0: {"end_time_unix_nano": MAX_TIME_UNIX_NANO}}
    message = _raw([SpanSpec(tid(1), sid(1), "svc")], last)
    proc.process(0, message, 100.0)
    kept, _ = run(proc, 103)
    assert kept == [sid(1)]


def test_bad_ids_from_a_direct_producer_are_refused_with_their_reason() -> None:
    proc = make()
    spans = [SpanSpec(tid(1), sid(n), "svc") for n in range(1, 5)]
    message = _raw(
        spans,
        {0: {"trace_id": b"\x00" * 16}, 1: {"span_id": b"abc"}, 2: {"parent_span_id": b"xy"}},
    )
    proc.process(0, message, 100.0)
    assert sorted(d.reason for d in proc.dead_letters) == [
        "invalid_parent_span_id_length",
        "invalid_span_id",
        "invalid_trace_id",
    ]
    kept, counts = run(proc, 103)
    assert kept == [sid(4)]
    assert sum(v for (n, _), v in counts.items() if n == c.SPANS_REJECTED) == 3


def test_all_zero_parent_means_root() -> None:
    message = _raw([SpanSpec(tid(1), sid(1), "svc")], {0: {"parent_span_id": bytes(8)}})
    [view] = span_views(trace_pb2.TracesData.FromString(message))
    assert view.parent_span_id == b""


def test_absurd_durations_saturate_instead_of_overflowing_int64() -> None:
    """Six spans of one operation with start=0, end=now in one RED window (an SDK bug)."""
    proc = make()
    forever = NOW_NS / 1e6
    spans = [
        SpanSpec(tid(n), sid(n), "svc", name="op", kind=CLIENT, start_ns=0, duration_ms=forever)
        for n in range(1, 7)
    ]
    spans += [
        SpanSpec(
            tid(n),
            sid(n + 10),
            "db",
            parent_id=sid(n),
            kind=SERVER,
            start_ns=0,
            duration_ms=forever,
        )
        for n in range(1, 7)
    ]
    proc.process(0, payload(spans), 100.0)
    out = proc.tick(101.5)
    assert out.red is not None and out.edges is not None
    red = avro_codec.decode("red_metrics", avro_codec.encode("red_metrics", out.red))
    series = [s for s in red["series"] if s["service_name"] == "svc"]
    assert series[0]["calls"] == 6 and series[0]["duration_sum_ns"] == 2**63 - 1
    avro_codec.encode("graph_edges", out.edges)


def test_kept_spans_are_cut_into_messages_by_bytes() -> None:
    """20 spans of 900 KB in one trace: no message may exceed the producer's limit."""
    big = "x" * 900_000
    spans = [SpanSpec(tid(1), sid(n), "svc", attributes={"blob": big}) for n in range(1, 21)]
    views = span_views(traces_data(spans))
    limit = 2_000_000
    encoded = encode_span_batches(views, max_bytes=limit)
    assert not encoded.refused
    assert all(len(p) <= limit for p in encoded.payloads)
    assert len(encoded.payloads) >= 10
    spans_out = sum(avro_codec.decode("span_batch", p)["span_count"] for p in encoded.payloads)
    assert spans_out == 20


def test_a_span_larger_than_any_message_is_refused_alone() -> None:
    spans = [SpanSpec(tid(1), sid(1), "svc", attributes={"blob": "x" * 50_000})]
    spans += [SpanSpec(tid(1), sid(n), "svc") for n in range(2, 6)]
    encoded = encode_span_batches(span_views(traces_data(spans)), max_bytes=20_000)
    assert [(reason, [v.span_id for v in views]) for reason, views in encoded.refused] == [
        ("span_too_large", [sid(1)])
    ]
    spans_out = sum(avro_codec.decode("span_batch", p)["span_count"] for p in encoded.payloads)
    assert spans_out == 4


def test_an_unencodable_span_is_isolated_by_halving() -> None:
    views = span_views(traces_data([SpanSpec(tid(1), sid(n), "svc") for n in range(1, 9)]))
    views[5].start_time_unix_nano = 2**64  # what no int64 column can hold
    encoded = encode_span_batches(views)
    assert [(r, [v.span_id for v in vs]) for r, vs in encoded.refused] == [
        ("encode_error", [sid(6)])
    ]
    assert sum(avro_codec.decode("span_batch", p)["span_count"] for p in encoded.payloads) == 7


def test_an_edge_needs_both_spans_in_one_tenant() -> None:
    graph = ServiceGraph(wait_seconds=5)
    parent = span_view(
        tenant_id="a",
        trace_id=tid(1),
        span_id=sid(1),
        kind=CLIENT,
        service_name="a-frontend",
        end_time_unix_nano=10,
    )
    child = replace(
        parent,
        tenant_id="b",
        span_id=sid(2),
        parent_span_id=sid(1),
        kind=SERVER,
        service_name="b-secret",
    )
    graph.add([parent, child], 1.0)
    assert graph.edges == {}
    assert graph.cross_tenant == 1
    same = replace(child, tenant_id="a", span_id=sid(3), service_name="a-backend")
    graph.add([same], 1.0)
    assert list(graph.edges) == [("a", "a-frontend", "a-backend", "")]


def test_a_raising_policy_is_ignored_and_counted() -> None:
    class Broken(AlwaysSample):
        def evaluate(self, trace: TraceView, now: float) -> Decision:
            raise ZeroDivisionError("policy bug")

    cfg = parse_config(KEEP_ALL)
    proc = PartitionProcessor(
        "raw/0",
        cfg,
        [Broken("broken"), *cfg.policies],
        AggregationOptions(red_window_seconds=1),
        CounterSet(),
    )
    proc.process(0, payload([SpanSpec(tid(1), sid(1), "svc", start_ns=NOW_NS)]), 100.0)
    kept, counts = run(proc, 103)
    assert kept == [sid(1)]  # decided by the other policy
    assert counts[(c.POLICY_ERRORS, "broken")] == 1

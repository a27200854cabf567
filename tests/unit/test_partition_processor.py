"""One partition end to end without a broker: decisions, late spans, replay, offsets, counters."""

from __future__ import annotations

from collections import Counter

from schemas import avro_codec
from streams import counters as c
from streams.counters import CounterSet
from streams.partition_processor import (
    AggregationOptions,
    PartitionProcessor,
    RestoredState,
    TickOutput,
)
from streams.sampling_config import parse_config
from streams.state_log import apply_state, encode_state
from tracehouse.span_specs import CLIENT, ERROR, SERVER, SpanSpec, payload, sid, tid

POLICY = {
    "decision_wait": 1,
    "policies": [
        {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}
    ],
}


class Counted:
    """Every delta the processor published in its tick outputs, plus what it holds now."""

    def __init__(self, live: CounterSet) -> None:
        self.live = live
        self.proc: PartitionProcessor | None = None
        self.published: Counter[tuple[str, str]] = Counter()

    def get(self, name: str, reason: str = "") -> int:
        assert self.proc is not None
        key = (name, reason)
        return self.published[key] + self.live.get(*key) + self.proc.pending.get(*key)

    def drain(self) -> dict[tuple[str, str], int]:
        return {k: v for k, v in self.published.items() if v}


def make(
    restored: RestoredState | None = None, **policy: object
) -> tuple[PartitionProcessor, Counted]:
    cfg = parse_config({**POLICY, **policy})
    live = CounterSet()
    counters = Counted(live)
    proc = PartitionProcessor(
        "raw/0", cfg, cfg.policies, AggregationOptions(red_window_seconds=1), live, restored
    )
    counters.proc = proc
    original = proc.tick

    def tick(now: float) -> TickOutput:
        out = original(now)
        counters.published.update(out.counters)
        return out

    proc.tick = tick  # type: ignore[method-assign]
    return proc, counters


def hexid(n: int) -> str:
    return tid(n).hex()


def test_whole_trace_decided_across_messages_and_late_spans_follow() -> None:
    proc, cnt = make()
    proc.process(0, payload([SpanSpec(tid(1), sid(1), "shop", kind=CLIENT)]), 100.0)
    server = SpanSpec(tid(1), sid(2), "pay", parent_id=sid(1), kind=SERVER, status=ERROR)
    proc.process(1, payload([server, SpanSpec(tid(2), sid(3), "shop")]), 100.2)
    out = proc.tick(101.05)
    assert {r.span_id for r in out.sampled} == {sid(1), sid(2)}
    assert sorted(out.decisions) == [(hexid(1), True, 1)]
    # Trace 2 arrived later: still waiting.
    out = proc.tick(101.3)
    assert out.decisions == [(hexid(2), False, 1)] and out.sampled == []
    # Late spans follow the cached decision.
    proc.process(
        2, payload([SpanSpec(tid(1), sid(9), "pay"), SpanSpec(tid(2), sid(8), "shop")]), 102
    )
    out = proc.tick(102.1)
    assert [r.span_id for r in out.sampled] == [sid(9)]
    assert sorted(out.decisions) == [(hexid(1), True, 2), (hexid(2), False, 2)]
    d = cnt.drain()
    assert d[(c.SPANS_RECEIVED, "")] == 5
    assert d[(c.SPANS_SAMPLED, "")] == 3
    assert d[(c.SPANS_SAMPLED_OUT, "no_policy_matched")] == 1
    assert d[(c.SPANS_SAMPLED_OUT, "late")] == 1
    assert d[(c.SPANS_LATE, "sampled")] == 1 and d[(c.SPANS_LATE, "not_sampled")] == 1
    assert d[(c.TRACES_SAMPLED, "errors")] == 1


def test_offsets_commit_only_after_decision_and_flush() -> None:
    proc, _ = make()
    proc.process(0, payload([SpanSpec(tid(1), sid(1), "a")]), 100.0)
    proc.process(1, payload([SpanSpec(tid(2), sid(2), "a")]), 100.9)
    out = proc.tick(101.0)  # trace 1 due; the window [100, 101) closes
    assert out.red is not None and out.aggregates_through == 1
    assert proc.delivered(out) == [0]  # 1 waits for trace 2
    out = proc.tick(102.0)
    assert proc.delivered(out) == [1]


def test_malformed_is_reported_and_committable() -> None:
    proc, cnt = make()
    assert proc.process(0, b"\xff\xff\xff", 100.0) is not None
    assert cnt.get(c.MESSAGES_REJECTED, "malformed") == 1
    out = proc.tick(101.0)
    out.aggregates_through = 0
    assert proc.delivered(out) == [0]


def test_eviction_counts_and_drops_late_spans() -> None:
    proc, cnt = make(num_traces=1)
    proc.process(0, payload([SpanSpec(tid(1), sid(1), "a", status=ERROR)]), 100.0)
    proc.process(1, payload([SpanSpec(tid(2), sid(2), "a")]), 100.1)
    assert cnt.get(c.TRACES_EVICTED) == 1 and cnt.get(c.SPANS_EVICTED, "buffer_full") == 1
    proc.process(2, payload([SpanSpec(tid(1), sid(3), "a", status=ERROR)]), 100.2)
    out = proc.tick(105)
    assert all(r.trace_id != tid(1) for r in out.sampled)
    assert cnt.get(c.SPANS_LATE, "not_sampled") == 1


def test_replay_after_failover_skips_what_the_previous_owner_did() -> None:
    """The state log of a first owner lets a second owner resume without duplicates."""
    first, _ = make()
    m0 = payload([SpanSpec(tid(1), sid(1), "a", status=ERROR)])
    m1 = payload([SpanSpec(tid(2), sid(2), "a", status=ERROR), SpanSpec(tid(1), sid(3), "a")])
    first.process(0, m0, 100.0)
    first.process(1, m1, 100.5)
    out = first.tick(101.0)  # trace 1 decided through offset 1; window flushed through 1
    assert out.aggregates_through == 1
    state = RestoredState()
    latest: dict[str, tuple[bool, int]] = {}
    apply_state(state, latest, encode_state(out.decisions, out.aggregates_through))
    restored = RestoredState([(t, s, o) for t, (s, o) in latest.items()], state.aggregates_through)
    # The first owner dies before committing offset 1 (trace 2 was undecided); the second
    # owner re-reads from offset 1.
    second, cnt = make(restored)
    second.process(1, m1, 200.0)
    out2 = second.tick(201.5)
    assert [r.trace_id for r in out2.sampled] == [tid(2)]  # trace 1 not sent twice
    assert cnt.get(c.SPANS_REPLAYED) == 1
    assert cnt.get(c.SPANS_RECEIVED) == 0  # RED already counted offset 1
    assert out2.red is None


def test_root_span_decides_early() -> None:
    proc, _ = make(decide_on_root_span=True, root_span_wait=0.1, decision_wait=30)
    proc.process(0, payload([SpanSpec(tid(1), sid(1), "a", status=ERROR)]), 100.0)
    assert [d[0] for d in proc.tick(100.2).decisions] == [hexid(1)]


def test_outputs_encode_with_the_avro_contracts() -> None:
    proc, _ = make()
    client = SpanSpec(tid(1), sid(1), "shop", kind=CLIENT, status=ERROR)
    server = SpanSpec(tid(1), sid(2), "pay", parent_id=sid(1), kind=SERVER)
    proc.process(0, payload([client, server]), 100)
    out = proc.tick(101.5)
    assert out.red is not None and out.edges is not None
    red = avro_codec.decode("red_metrics", avro_codec.encode("red_metrics", out.red))
    assert sum(s["calls"] for s in red["series"]) == 2
    edges = avro_codec.decode("graph_edges", avro_codec.encode("graph_edges", out.edges))
    assert edges["edges"][0]["client_service"] == "shop"
    assert len(out.sampled) == 2


def test_state_records_fold_later_wins_and_garbage_is_skipped() -> None:
    state = RestoredState()
    latest: dict[str, tuple[bool, int]] = {}
    apply_state(state, latest, encode_state([("a", True, 3), ("b", False, 4)], 7))
    apply_state(state, latest, b"not json")
    apply_state(state, latest, encode_state([("a", True, 9)], None))
    assert latest == {"a": (True, 9), "b": (False, 4)}
    assert state.aggregates_through == 7


def test_a_full_service_graph_is_counted_not_silent() -> None:
    """Spans the graph forgets to stay within graph_max_items are published as a counter."""
    cfg = parse_config(POLICY)
    live = CounterSet()
    proc = PartitionProcessor(
        "raw/0",
        cfg,
        cfg.policies,
        AggregationOptions(red_window_seconds=1, graph_max_items=2),
        live,
    )
    proc.process(0, payload([SpanSpec(tid(1), sid(i), "a") for i in range(1, 6)]), 100.0)
    published = Counter(proc.tick(102).counters)
    published.update(live.drain())
    assert published[(c.GRAPH_DROPPED_FULL, "")] == 3


KEEP_ALL = {"decision_wait": 5, "policies": [{"name": "all", "type": "always_sample"}]}


def test_keep_all_sends_a_trace_with_the_next_tick_not_after_the_wait() -> None:
    proc, cnt = make(None, **KEEP_ALL)
    spans = [
        SpanSpec(tid(1), sid(1), "shop", kind=CLIENT),
        SpanSpec(tid(1), sid(2), "pay", parent_id=sid(1), kind=SERVER),
    ]
    proc.process(0, payload(spans), 100.0)
    assert len(proc.buffer) == 0
    out = proc.tick(100.1)  # long before the 5 s decision wait
    assert {r.span_id for r in out.sampled} == {sid(1), sid(2)}
    assert out.decisions == [(hexid(1), True, 0)]
    assert out.sent_keys and hexid(1) in out.sent_keys
    assert cnt.get(c.TRACES_SAMPLED, "all") == 1 and cnt.get(c.SPANS_SAMPLED) == 2


def test_keep_all_later_spans_follow_dropping_copies_and_are_not_counted_late() -> None:
    proc, cnt = make(None, **KEEP_ALL)
    first = SpanSpec(tid(1), sid(1), "shop")
    proc.process(0, payload([first, first]), 100.0)  # a copy within the message
    assert proc.delivered(proc.tick(100.1)) == []  # its RED window is still open
    proc.process(1, payload([first, SpanSpec(tid(1), sid(2), "shop", parent_id=sid(1))]), 100.5)
    out = proc.tick(101.1)
    assert [r.span_id for r in out.sampled] == [sid(2)]
    # Committable once the tick that sent them (and closed their RED window) is delivered.
    assert proc.delivered(out) == [0, 1]
    assert cnt.get(c.SPANS_DUPLICATE) == 2
    assert cnt.get(c.SPANS_SAMPLED) == 2
    assert cnt.get(c.TRACES_SAMPLED, "all") == 1
    assert cnt.get(c.SPANS_LATE, "sampled") == 0


def _shared_server_half_without_client() -> SpanSpec:
    """Trace 1's Zipkin server half whose client half (span 9) never comes; declared parent 1."""
    return SpanSpec(
        tid(1), sid(2), "pay", parent_id=sid(9), kind=SERVER,
        attributes={"zipkin.parent_id": sid(1).hex()},
    )  # fmt: skip


def test_keep_all_waits_for_a_zipkin_shared_server_half_and_relinks_it() -> None:
    proc, _ = make(None, **KEEP_ALL)
    orphan = _shared_server_half_without_client()
    proc.process(0, payload([SpanSpec(tid(1), sid(1), "shop"), orphan]), 100.0)
    assert proc.tick(100.1).sampled == []
    out = proc.tick(105.1)
    assert {r.span_id: r.parent_span_id for r in out.sampled} == {sid(1): b"", sid(2): sid(1)}


def test_keep_all_decides_new_traces_on_arrival_while_a_zipkin_trace_waits() -> None:
    proc, _ = make(None, **KEEP_ALL)
    orphan = _shared_server_half_without_client()
    proc.process(0, payload([orphan, SpanSpec(tid(2), sid(3), "shop")]), 100.0)
    # The buffered trace's later spans join it instead of being decided on arrival.
    proc.process(1, payload([SpanSpec(tid(1), sid(4), "pay", parent_id=sid(2))]), 100.5)
    out = proc.tick(100.6)
    assert [r.span_id for r in out.sampled] == [sid(3)]
    out = proc.tick(105.1)
    assert {r.span_id for r in out.sampled} == {sid(2), sid(4)}

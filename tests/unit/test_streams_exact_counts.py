"""Counts and kept spans stay exact through client retries and any number of worker crashes.

A simulated worker runs :class:`PartitionProcessor` over one raw partition the way
``streams/app.py`` does (tick -> outputs -> decisions-log record -> accounting -> commit) and
dies at points hypothesis chooses; each new owner restores from the log and replays from the
committed offset. Client retries are messages that repeat spans already sent. After the last
message is decided, the published counters (deduplicated by their identity, as the
ReplacingMergeTree ``pipeline_counters`` does) must satisfy the identity exactly, every distinct
valid span must be kept once, and every span received exactly once.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import counters as c
from streams.counters import CounterSet
from streams.partition_processor import (
    AggregationOptions,
    CounterRecord,
    PartitionProcessor,
    RestoredState,
)
from streams.sampling_config import parse_config
from streams.state_log import apply_state, encode_state
from tracehouse.span_specs import SERVER, SpanSpec, payload, sid, tid

EXAMPLES = int(os.environ.get("TRACEHOUSE_FUZZ_EXAMPLES", "150"))
KEEP_ALL = {
    "decision_wait": 1,
    "num_traces": 3,  # small, so evictions happen too (traces that wait: Zipkin shared halves)
    "policies": [{"name": "all", "type": "always_sample"}],
}
# Every trace waits for its decision (keep-all decides most on arrival).
HALF = {**KEEP_ALL, "policies": [{"name": "half", "type": "probabilistic",
                                  "probabilistic": {"sampling_percentage": 50}}]}  # fmt: skip
OK, BAD, SHARED = 0, 1, 2  # a span as sent: valid, unstorable time, Zipkin shared server half
BAD_TIME = 2**63


@dataclass
class Broker:
    """What outlives a worker: the raw messages, the decisions log, outputs, the commit."""

    raw: list[bytes]
    log: list[bytes] = field(default_factory=list)
    stored: list[tuple[bytes, bytes, int]] = field(default_factory=list)
    accounting: dict[tuple[int, int], dict[tuple[str, str], int]] = field(default_factory=dict)
    committed: int = 0


def restore(broker: Broker) -> RestoredState:
    state = RestoredState(epoch=len(broker.log))  # the barrier's offset
    latest: dict[str, tuple[bool, int]] = {}
    for record in broker.log:
        apply_state(state, latest, record)
    state.decisions = [(t, s, o) for t, (s, o) in latest.items()]
    broker.log.append(b"{}")  # the barrier itself
    return state


class Worker:
    def __init__(self, broker: Broker, policy: dict[str, object]) -> None:
        cfg = parse_config(policy)
        restored = restore(broker)
        self.broker = broker
        self.proc = PartitionProcessor(
            "raw/0", cfg, cfg.policies, AggregationOptions(red_window_seconds=1), CounterSet(),
            restored,
        )  # fmt: skip
        if self.proc.unpublished_counters is not None:
            self.publish(self.proc.unpublished_counters)

    def publish(self, record: CounterRecord) -> None:
        self.broker.accounting[(record.epoch, record.seq)] = dict(record.counters)

    def tick(self, now: float) -> None:
        out = self.proc.tick(now)
        b = self.broker
        b.stored += [(v.trace_id, v.span_id, v.kind) for v in out.sampled]
        if out.persists_state():
            record = None
            if out.counters:
                record = self.proc.counter_record(out.counters, 0)
            b.log.append(encode_state(out.decisions, out.aggregates_through, out.sent_keys, record))
            if record is not None:
                self.publish(record)
        acked = self.proc.delivered(out)
        if acked:
            b.committed = max(b.committed, acked[-1] + 1)


def spans_strategy() -> st.SearchStrategy[list[tuple[int, int, int]]]:
    # (trace, span, OK/BAD/SHARED): small id spaces, so retries and late spans are common.
    span = st.tuples(st.integers(1, 5), st.integers(1, 8), st.just(OK))
    other = st.tuples(st.integers(1, 5), st.integers(1, 8), st.sampled_from([BAD, SHARED]))
    return st.lists(st.one_of(span, span, span, other), min_size=1, max_size=6)


def spec(t: int, s: int, how: int) -> SpanSpec:
    span = SpanSpec(tid(t), sid(t * 100 + s), "svc", start_ns=1_700_000_000 * 10**9)
    if how == BAD:
        span.start_ns = BAD_TIME
    elif how == SHARED:  # its parent never comes: re-parented to the declared one at decision
        span.kind, span.parent_id = SERVER, sid(999)
        span.attributes["zipkin.parent_id"] = sid(t * 100).hex()
    return span


def message(spans: list[tuple[int, int, int]]) -> bytes:
    return payload([spec(*s) for s in spans])


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=st.sampled_from([KEEP_ALL, HALF]),
    messages=st.lists(spans_strategy(), min_size=1, max_size=25),
    crashes=st.sets(st.integers(0, 40), max_size=4),
    ticks=st.lists(st.booleans(), min_size=25, max_size=25),
)
def test_identity_and_kept_spans_are_exact_under_retries_and_crashes(
    policy: dict[str, object],
    messages: list[list[tuple[int, int, int]]],
    crashes: set[int],
    ticks: list[bool],
) -> None:
    broker = Broker([message(m) for m in messages])
    worker = Worker(broker, policy)
    now, step = 100.0, 0.0
    offset = 0
    while offset < len(broker.raw):
        worker.proc.process(offset, broker.raw[offset], now)
        now += 0.3
        if ticks[offset % len(ticks)]:
            worker.tick(now)
        if int(step) in crashes:
            crashes.discard(int(step))
            worker = Worker(broker, policy)  # kill -9: memory gone, replay from the commit
            offset = broker.committed
        else:
            offset += 1
        step += 1
    for _ in range(8):  # let every trace be decided and every window flushed
        now += 1.0
        worker.tick(now)

    totals: Counter[tuple[str, str]] = Counter()
    for counts in broker.accounting.values():
        totals.update(counts)

    def total(name: str) -> int:
        return sum(v for (n, _), v in totals.items() if n == name)

    sent = [span for m in messages for span in m]
    assert total(c.SPANS_RECEIVED) == len(sent)
    assert total(c.SPANS_REJECTED) == sum(1 for *_, how in sent if how == BAD)
    # Stored once each: no copy of a span, whatever the crashes and retries.
    assert len(broker.stored) == len(set(broker.stored))
    assert total(c.SPANS_RECEIVED) == (
        len(broker.stored)
        + total(c.SPANS_SAMPLED_OUT)
        + total(c.SPANS_EVICTED)
        + total(c.SPANS_REJECTED)
        + total(c.SPANS_DUPLICATE)
    )
    # Every distinct valid span is stored unless its trace was evicted or sampled out.
    valid = {(tid(t), sid(t * 100 + s)) for t, s, how in sent if how != BAD}
    stored = {(t, s) for t, s, _ in broker.stored}
    assert stored <= valid
    if total(c.SPANS_EVICTED) == 0 and total(c.SPANS_SAMPLED_OUT) == 0:
        assert stored == valid


def test_a_retried_request_is_stored_once_and_counted_as_duplicate() -> None:
    broker = Broker([message([(1, 1, OK), (1, 2, OK)])] * 2)
    worker = Worker(broker, KEEP_ALL)
    worker.proc.process(0, broker.raw[0], 100.0)
    worker.proc.process(1, broker.raw[1], 100.1)
    for t in (101.5, 102.5):
        worker.tick(t)
    assert len(broker.stored) == 2
    assert sum(broker.accounting[(0, 1)].values()) > 0
    totals: Counter[tuple[str, str]] = Counter()
    for counts in broker.accounting.values():
        totals.update(counts)
    assert totals[(c.SPANS_DUPLICATE, "")] == 2
    assert totals[(c.SPANS_RECEIVED, "")] == 4


def test_a_late_copy_after_a_failover_is_recognised_by_the_persisted_keys() -> None:
    first = message([(1, 1, OK)])
    broker = Broker([first])
    worker = Worker(broker, KEEP_ALL)
    worker.proc.process(0, first, 100.0)
    worker.tick(101.5)
    worker.tick(102.0)  # decided, stored, committed
    assert broker.committed == 1 and len(broker.stored) == 1
    broker.raw.append(first)  # the client's retry, after the decision
    worker = Worker(broker, KEEP_ALL)  # a new owner, with only the log to go on
    worker.proc.process(1, first, 200.0)
    worker.tick(201.0)
    assert len(broker.stored) == 1
    dup = sum(v.get((c.SPANS_DUPLICATE, ""), 0) for v in broker.accounting.values())
    assert dup == 1

"""Bounded trace buffer (count and bytes, oldest evicted), decision timing and the cache."""

from __future__ import annotations

from streams.offset_tracker import OffsetTracker
from streams.span_views import SpanView
from streams.trace_buffer import DecisionCache, TraceBuffer
from tests.span_view_factory import span_view


def recs(n: int) -> list[SpanView]:
    return [span_view(span_id=str(i).encode()) for i in range(n)]


def test_decision_wait() -> None:
    b = TraceBuffer(decision_wait=2, max_traces=10, max_bytes=10_000)
    b.add("a", recs(1), 10, 0, now=100)
    b.add("b", recs(1), 10, 1, now=101)
    b.add("a", recs(2), 20, 2, now=101.5)  # late spans do not extend the wait
    assert b.due(101.9) == []
    due = b.due(102)
    assert [t.trace_id for t in due] == ["a"]
    assert len(due[0].records) == 3 and due[0].offsets == [0, 2]
    assert [t.trace_id for t in b.due(103)] == ["b"]
    assert b.nbytes == 0 and len(b) == 0


def test_evicts_oldest_by_count() -> None:
    b = TraceBuffer(decision_wait=10, max_traces=2, max_bytes=10_000)
    assert b.add("a", recs(1), 1, 0, 0) == []
    assert b.add("b", recs(1), 1, 1, 1) == []
    evicted = b.add("c", recs(1), 1, 2, 2)
    assert [t.trace_id for t in evicted] == ["a"]
    assert "a" not in b and "c" in b


def test_evicts_oldest_by_bytes_but_keeps_the_newest() -> None:
    b = TraceBuffer(decision_wait=10, max_traces=100, max_bytes=100)
    b.add("a", recs(1), 40, 0, 0)
    b.add("b", recs(1), 40, 1, 0)
    evicted = b.add("c", recs(1), 50, 2, 0)
    assert [t.trace_id for t in evicted] == ["a"]
    assert b.nbytes == 90
    # One trace larger than the limit on its own is kept (there is nothing older to evict).
    b2 = TraceBuffer(decision_wait=10, max_traces=100, max_bytes=10)
    assert b2.add("huge", recs(1), 500, 0, 0) == []


def test_root_span_shortens_the_wait() -> None:
    b = TraceBuffer(10, 100, 10_000, decide_on_root_span=True, root_span_wait=0.5)
    b.add("early", recs(1), 1, 0, now=0)
    b.add("rooted", recs(1), 1, 1, now=1, has_root=True)
    assert [t.trace_id for t in b.due(1.5)] == ["rooted"]
    assert [t.trace_id for t in b.due(10)] == ["early"]
    off = TraceBuffer(10, 100, 10_000, decide_on_root_span=False)
    off.add("rooted", recs(1), 1, 0, now=0, has_root=True)
    assert off.due(1) == []


def test_decision_cache_lru_and_offsets() -> None:
    c = DecisionCache(sampled_size=2, not_sampled_size=1)
    c.put("a", True, 5)
    c.put("b", True, 6)
    c.put("a", True, 3)  # never lowers the handled offset; refreshes recency
    c.put("c", True, 7)  # evicts b, the least recently used
    assert c.get("a") == (True, 5)
    assert c.get("b") is None
    c.put("x", False, 1)
    c.put("y", False, 2)
    assert c.get("x") is None and c.get("y") == (False, 2)
    assert len(c) == 3


def test_offset_tracker_releases_only_a_prefix() -> None:
    t = OffsetTracker()
    t.add(10, 0)
    t.inc(10)
    t.add(11, 0)
    t.add(12, 0)
    t.inc(12)
    t.flushed_through(12)
    assert t.ackable() == []  # 10 still has an undecided trace
    t.trace_done([12])
    assert t.ackable() == []  # 12 done, but 10 blocks the prefix
    t.trace_done([10])
    assert t.ackable() == [10, 11, 12]
    t.add(13, 0)
    assert t.ackable() == []  # not yet covered by an aggregate flush
    t.flushed_through(13)
    assert t.ackable() == [13]

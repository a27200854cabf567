"""Span caps (pure parts): the per-trace level shared by a response, and the warnings."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from query.jaeger_model import MAX_PARENT_WARNINGS, traces_json, truncation_warning
from query.store import TraceSpans, per_trace_limit
from tests.unit.test_jaeger_model import ROW


def test_one_huge_trace_is_cut_to_the_cap() -> None:
    assert per_trace_limit([100_000], budget=20_000, cap=20_000) == 20_000
    assert per_trace_limit([100_000], budget=20_000, cap=500) == 500


def test_small_traces_stay_whole_next_to_a_huge_one() -> None:
    counts = [10] * 20 + [100_000]
    level = per_trace_limit(counts, budget=20_000, cap=20_000)
    assert level == 20_000 - 200
    assert sum(min(c, level) for c in counts) <= 20_000


def test_many_traces_share_the_budget() -> None:
    assert per_trace_limit([1000] * 1500, budget=20_000, cap=20_000) == 13
    assert per_trace_limit([], budget=20_000, cap=20_000) == 20_000


@given(
    st.lists(st.integers(1, 10**6), max_size=200),
    st.integers(1, 10**6),
    st.integers(1, 10**6),
)
def test_level_is_the_largest_within_budget(counts: list[int], budget: int, cap: int) -> None:
    level = per_trace_limit(counts, budget, cap)
    assert 1 <= level <= cap
    if len(counts) <= budget:
        assert sum(min(c, level) for c in counts) <= budget
        if level < cap and level < max(counts, default=0):
            assert sum(min(c, level + 1) for c in counts) > budget


def test_truncated_traces_are_reported_with_counts() -> None:
    rows = [("t1", "a"), ("t1", "b"), ("t2", "c")]
    spans = TraceSpans(rows=list(rows), stored={"t1": 5, "t2": 1}, limit=2)
    assert spans.truncated() == {"t1": (5, 2)}


def test_capped_trace_carries_the_warning() -> None:
    child = list(ROW)
    child[1], child[2] = "c" * 16, "d" * 16  # parent beyond the cut
    [trace] = traces_json([ROW, child], {ROW[0]: (100_000, 2)})
    assert trace["warnings"][0] == truncation_warning(100_000, 2)
    assert trace["warnings"][0] == "trace has 100000 spans; showing the first 2 by start time"
    assert "beyond the span limit" in trace["warnings"][1]
    [whole] = traces_json([ROW])
    assert whole["warnings"] is None


def test_missing_parent_warnings_are_bounded() -> None:
    rows = []
    for i in range(50):
        row = list(ROW)
        row[1], row[2] = f"{i:016x}", f"{i + 1000:016x}"
        rows.append(row)
    [trace] = traces_json(rows)
    assert len(trace["warnings"]) == MAX_PARENT_WARNINGS + 1
    assert trace["warnings"][-1] == f"{50 - MAX_PARENT_WARNINGS} more parent spans are not returned"

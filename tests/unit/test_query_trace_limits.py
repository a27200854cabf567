"""Span caps (pure parts): the per-trace level shared by a response, and the warnings."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from query.jaeger_model import (
    MAX_PARENT_WARNINGS,
    TracesJsonWriter,
    display_trace_id,
    traces_json,
    truncation_warning,
)
from query.store import per_trace_limit
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


def rows_of(traces: int, spans: int) -> list[list[object]]:
    rows = []
    for t in range(traces):
        for i in range(spans):
            row = list(ROW)
            row[0], row[1] = f"{t:032x}", f"{t:08x}{i:08x}"
            row[2] = "" if i == 0 else f"{t:08x}{(i - 1) // 3:08x}"
            row[5] = ["web", "db"][i % 2]
            row[10] = int(str(row[10])) + i
            rows.append(row)
    return rows


@given(st.integers(1, 4), st.integers(1, 30), st.integers(1, 7), st.integers(0, 3))
def test_streamed_json_equals_the_document(
    traces: int, spans: int, chunk: int, extra_stored: int
) -> None:
    """TracesJsonWriter's chunks are the same bytes at any chunk size, in the asked order."""
    rows = rows_of(traces, spans)
    stored = {f"{t:032x}": spans + (extra_stored if t == 0 else 0) for t in range(traces)}
    truncated = {t: (n, spans) for t, n in stored.items() if n > spans}
    order = sorted(stored, reverse=True)

    def streamed(size: int) -> bytes:
        writer = TracesJsonWriter(stored)
        for row in rows:
            writer.add(row)
        assert len(writer) == traces
        return b"".join(writer.chunks(order, spans_per_chunk=size))

    body = streamed(chunk)
    assert body == streamed(10**6)
    doc = json.loads(body)
    assert set(doc) == {"data", "total", "limit", "offset", "errors"}
    assert [t["traceID"] for t in doc["data"]] == [display_trace_id(t) for t in order]
    assert doc["data"] == traces_json(rows, truncated)[::-1]
    if extra_stored:
        assert doc["data"][-1]["warnings"][0] == truncation_warning(spans + extra_stored, spans)


def test_capped_trace_carries_the_warning() -> None:
    child = list(ROW)
    child[1], child[2] = "c" * 16, "d" * 16  # parent beyond the cut
    [trace] = traces_json([ROW, child], {str(ROW[0]): (100_000, 2)})
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

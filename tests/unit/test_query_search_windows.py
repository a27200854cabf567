"""query.search_windows: searching the recent end of the window first gives the same answer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from query.search_windows import newest_traces

spans = st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 1000)), max_size=40)


def _search(
    data: list[tuple[str, int]], start: int, end: int, limit: int
) -> tuple[list[str], list[tuple[int | None, int | None]]]:
    """A reference search over (trace, start) spans, and the windowed one with its calls."""
    calls: list[tuple[int | None, int | None]] = []

    def ranked(lo: int, hi: int) -> list[str]:  # spans in [lo, hi), newest trace first
        last: dict[str, int] = {}
        for trace, ts in data:
            if lo <= ts < hi:
                last[trace] = max(last.get(trace, ts), ts)
        return sorted(last, key=lambda t: (-last[t], t))[:limit]

    def run(after: int | None, before: int | None) -> list[str]:
        calls.append((after, before))
        lo = start if after is None else max(start, after)
        hi = end + 1 if before is None else min(end + 1, before)
        return ranked(lo, hi)

    return newest_traces(run, start, end, limit), calls


@given(spans, st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 6))
def test_same_answer_as_one_search(data: list[tuple[str, int]], a: int, b: int, limit: int) -> None:
    start, end = min(a, b), max(a, b)
    got, calls = _search(data, start, end, limit)
    last: dict[str, int] = {}  # the reference: one search over the whole window
    for trace, ts in data:
        if start <= ts <= end:
            last[trace] = max(last.get(trace, ts), ts)
    want = sorted(last, key=lambda t: (-last[t], t))[:limit]
    assert got == want
    assert len(calls) <= 2


def test_recent_window_alone_answers_when_it_holds_enough_traces() -> None:
    data = [(t, 990 + i) for i, t in enumerate("abc")] + [("z", 5)]
    got, calls = _search(data, 0, 1000, 2)
    assert got == ["c", "b"] and calls == [(1000 - 1000 // 32, None)]
    got, calls = _search(data, 0, 1000, 4)
    assert got == ["c", "b", "a", "z"] and len(calls) == 2

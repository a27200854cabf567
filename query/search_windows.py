"""Newest-first trace search over the recent end of the window first (pure).

A search ranks traces by their newest matching span and returns the first ``limit``; over a
day of spans the plain statement groups every matching span of the window by trace, although
the answer nearly always lies in the last minutes. So the search first runs over the newest
``1/RECENT_FRACTION`` of the window, [split, end]. If that finds ``limit`` traces, it is the
answer: every trace it found has its newest matching span at or after ``split``, so it ranks
above every trace whose spans all lie before ``split``, and its rank (that span) is the same as
over the whole window. Otherwise the rest, [start, split), is searched too, and its traces
not already found follow, since each of them ranks below every recent one. Same answer as one
statement, two statements at most; the property tests compare it with a reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The first statement reads the newest 1/32 of the window (45 minutes of a day).
RECENT_FRACTION = 32

# run(after_ns, before_ns) -> trace ids, best first, at most the search's limit: the search
# restricted to spans starting at or after after_ns / strictly before before_ns (None: no bound).
SearchRun = Callable[[int | None, int | None], list[str]]


def newest_traces(run: SearchRun, start_ns: int, end_ns: int, limit: int) -> list[str]:
    """The search's answer, running it over the recent end of [start_ns, end_ns] first."""
    split = end_ns - (end_ns - start_ns) // RECENT_FRACTION
    if split <= start_ns or limit <= 0:
        return run(None, None)
    recent = run(split, None)
    if len(recent) >= limit:
        return recent[:limit]
    seen = set(recent)
    older = [t for t in run(None, split) if t not in seen]
    return recent + older[: limit - len(recent)]


def window_conditions(
    after_ns: int | None, before_ns: int | None
) -> tuple[list[str], dict[str, Any]]:
    """The conditions (AND-ed) and parameters of a run's bounds, for the search builders."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if after_ns is not None:
        where.append("Timestamp >= fromUnixTimestamp64Nano({after_ns:Int64})")
        params["after_ns"] = after_ns
    if before_ns is not None:
        where.append("Timestamp < fromUnixTimestamp64Nano({before_ns:Int64})")
        params["before_ns"] = before_ns
    return where, params

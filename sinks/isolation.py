"""Store a batch that ClickHouse rejects: bisect it until the bad rows are isolated.

A batch is inserted whole first, with its token ``T`` (see ``sinks/batching.py``). When
ClickHouse rejects it for its data (``ErrorClass.REJECTED``), the batch is split: first by
message (halves of the message list), then, inside a single message, by row (halves of the
row range). Every sub-insert carries a token derived from ``T`` and the sub-range only::

    T/m<first offset>-<last offset>      a run of whole messages
    T/r<offset>:<first row>-<end row>    rows [first, end) of the message at <offset>

so the tokens are a pure function of the batch and of the range. Why this keeps exactly-once
(ADR 0001, "Rejected rows"): a rejected insert stores nothing (ClickHouse converts, checks
constraints and splits by partition before it writes a part), and the walk is deterministic:
it starts from the same batch (the intent pins the offsets), visits halves in the same order
and gets the same verdicts for the same rows, so a replay after a crash issues the very same
sub-inserts with the very same tokens, and the ones that got through before the crash are
deduplicated. An outage in the middle raises out of :func:`store_isolating`; the caller
retries the whole batch later and the walk starts over the same way.

The walk is bounded (``max_inserts``): a batch in which every row is bad would otherwise take
two inserts per row, and too many sub-inserts would push the earlier tokens out of the
table's deduplication window (10000 blocks). Ranges still failing when the budget is spent
are dead-lettered whole (their good rows too, counted as rejected: nothing is lost, the DLQ
keeps the original message).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import pyarrow as pa

from sinks.clickhouse_errors import ErrorClass, classify, describe

# Inserts one Arrow table with a dedup token; raises what the ClickHouse client raises.
InsertFn = Callable[[pa.Table, str], None]

DEFAULT_MAX_INSERTS = 200


@dataclass(frozen=True)
class Part:
    """One Kafka message's rows in a batch."""

    offset: int
    table: pa.Table


@dataclass(frozen=True)
class Rejection:
    """Rows ``[first_row, end_row)`` of the message at ``offset`` that ClickHouse refused."""

    offset: int
    first_row: int
    end_row: int
    error: str

    @property
    def rows(self) -> int:
        return self.end_row - self.first_row


def rejected_rows(rejections: list[Rejection]) -> int:
    return sum(r.rows for r in rejections)


@dataclass
class IsolationResult:
    rejections: list[Rejection]
    inserts: int  # sub-inserts attempted (0: the batch went in whole)
    stored_rows: int


class _Budget:
    def __init__(self, max_inserts: int) -> None:
        self.left = max_inserts
        self.used = 0

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        self.used += 1
        return True


def messages_token(token: str, parts: Sequence[Part]) -> str:
    return f"{token}/m{parts[0].offset}-{parts[-1].offset}"


def rows_token(token: str, offset: int, first: int, end: int) -> str:
    return f"{token}/r{offset}:{first}-{end}"


def store_isolating(
    parts: Sequence[Part],
    token: str,
    insert: InsertFn,
    max_inserts: int = DEFAULT_MAX_INSERTS,
) -> IsolationResult:
    """Insert ``parts`` with ``token``; on a data rejection, bisect and return what was refused.

    Raises only for outages (``ErrorClass.OUTAGE``): nothing about this batch is final then,
    and a retry of the whole call with the same arguments repeats the same inserts.
    """
    total = sum(p.table.num_rows for p in parts)
    try:
        insert(_concat(parts), token)
        return IsolationResult([], 0, total)
    except Exception as exc:  # classified: outages are re-raised
        if classify(exc) is ErrorClass.OUTAGE:
            raise
        first_error = describe(exc)
    budget = _Budget(max_inserts)
    rejections = _isolate_messages(list(parts), token, insert, budget, first_error)
    rejected = rejected_rows(rejections)
    return IsolationResult(rejections, budget.used, total - rejected)


def _concat(parts: Sequence[Part]) -> pa.Table:
    if len(parts) == 1:
        return parts[0].table
    return pa.concat_tables([p.table for p in parts])


def _try(insert: InsertFn, build: Callable[[], pa.Table], token: str) -> str | None:
    """None when stored; the error text when ClickHouse (or Arrow, assembling the table)
    rejects the data; raises on outages."""
    try:
        insert(build(), token)
        return None
    except Exception as exc:  # classified: outages are re-raised
        if classify(exc) is ErrorClass.OUTAGE:
            raise
        return describe(exc)


def _whole(parts: Sequence[Part], error: str) -> list[Rejection]:
    return [Rejection(p.offset, 0, p.table.num_rows, error) for p in parts if p.table.num_rows]


def _isolate_messages(
    parts: list[Part], token: str, insert: InsertFn, budget: _Budget, error: str
) -> list[Rejection]:
    """``parts`` are known to be rejected together (with ``error``): find the bad ones."""
    if len(parts) == 1:
        only = parts[0]
        return _isolate_rows(only, 0, only.table.num_rows, token, insert, budget, error)
    mid = len(parts) // 2
    out: list[Rejection] = []
    for half in (parts[:mid], parts[mid:]):
        if not any(p.table.num_rows for p in half):
            continue
        if not budget.take():
            out.extend(_whole(half, error))
            continue
        half_error = _try(insert, partial(_concat, half), messages_token(token, half))
        if half_error is not None:
            out.extend(_isolate_messages(half, token, insert, budget, half_error))
    return out


def _isolate_rows(
    part: Part,
    first: int,
    end: int,
    token: str,
    insert: InsertFn,
    budget: _Budget,
    error: str,
) -> list[Rejection]:
    """Rows ``[first, end)`` of ``part`` are known to be rejected (with ``error``)."""
    if end - first <= 1:
        return [Rejection(part.offset, first, end, error)] if end > first else []
    mid = (first + end) // 2
    out: list[Rejection] = []
    for lo, hi in ((first, mid), (mid, end)):
        if not budget.take():
            out.append(Rejection(part.offset, lo, hi, error))
            continue
        rows = partial(part.table.slice, lo, hi - lo)
        half_error = _try(insert, rows, rows_token(token, part.offset, lo, hi))
        if half_error is not None:
            out.extend(_isolate_rows(part, lo, hi, token, insert, budget, half_error))
    return _merge(out)


def _merge(rejections: list[Rejection]) -> list[Rejection]:
    """Adjacent rejected ranges of one message become one (fewer DLQ headers)."""
    merged: list[Rejection] = []
    for r in rejections:
        last = merged[-1] if merged else None
        if last and last.offset == r.offset and last.end_row == r.first_row:
            merged[-1] = Rejection(r.offset, last.first_row, r.end_row, last.error)
        else:
            merged.append(r)
    return merged

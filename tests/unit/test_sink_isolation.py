"""Bisecting a batch ClickHouse rejects: bad rows isolated, good rows stored exactly once.

The stand-in below behaves like one ClickHouse table for what the walk relies on: an insert
holding a refused row stores nothing and raises VIOLATED_CONSTRAINT, an insert whose token was
seen is a no-op, and an outage raises a transport error. (The real server is exercised in
tests/integration/test_sink_shape_errors.py.)
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from sinks.isolation import Part, Rejection, store_isolating


class Table:
    def __init__(self, outage_after: int | None = None) -> None:
        self.tokens: set[str] = set()
        self.rows: list[int] = []
        self.calls: list[str] = []
        self.outage_after = outage_after

    def insert(self, data: pa.Table, token: str) -> None:
        self.calls.append(token)
        if self.outage_after is not None and len(self.calls) > self.outage_after:
            raise OperationalError("connection refused")
        values = data.column("v").to_pylist()
        bad = [i for i, v in enumerate(values) if v < 0]
        if bad:
            raise DatabaseError(
                f"Code: 469. Constraint `pos` is violated at row {bad[0] + 1}", code=469
            )
        if token in self.tokens:
            return
        self.tokens.add(token)
        self.rows.extend(values)


def parts(*messages: list[int], first_offset: int = 10) -> list[Part]:
    return [
        Part(first_offset + i, pa.table({"v": pa.array(m, pa.int64())}))
        for i, m in enumerate(messages)
    ]


def good(batch: list[Part]) -> list[int]:
    return sorted(v for p in batch for v in p.table.column("v").to_pylist() if v >= 0)


def test_a_clean_batch_is_one_insert_with_the_batch_token() -> None:
    t = Table()
    result = store_isolating(parts([1, 2], [3]), "T", t.insert)
    assert result.rejections == [] and result.inserts == 0 and result.stored_rows == 3
    assert t.calls == ["T"]


def test_bad_rows_are_isolated_and_the_good_ones_stored() -> None:
    batch = parts([1, 2, 3], [4, -5, 6, 7], [8], [-9], first_offset=100)
    t = Table()
    result = store_isolating(batch, "T", t.insert)
    assert sorted(t.rows) == good(batch)
    assert result.rejections == [
        Rejection(101, 1, 2, result.rejections[0].error),
        Rejection(103, 0, 1, result.rejections[1].error),
    ]
    assert "Code 469" in result.rejections[0].error
    assert result.stored_rows == len(good(batch))
    assert all(c == "T" or c.startswith("T/") for c in t.calls)


def test_adjacent_bad_rows_are_one_range() -> None:
    batch = parts([1, -2, -3, -4, 5, 6, 7, 8])
    result = store_isolating(batch, "T", Table().insert)
    assert [(r.first_row, r.end_row) for r in result.rejections] == [(1, 4)]


def test_the_walk_and_its_tokens_are_deterministic() -> None:
    """A replay (same batch) issues the very same inserts with the very same tokens."""
    batch = parts([1, -2], [3], [4, 5, -6, 7], [-8, 9])
    first, second = Table(), Table()
    store_isolating(batch, "T", first.insert)
    store_isolating(batch, "T", second.insert)
    assert first.calls == second.calls
    assert len(set(first.calls)) == len(first.calls)  # no token names two different ranges


@pytest.mark.parametrize("crash_after", range(1, 12))
def test_an_interrupted_walk_replayed_stores_every_good_row_once(crash_after: int) -> None:
    """An outage (or a kill) after any number of inserts, then the replay: exact."""
    batch = parts([1, -2, 3, 4], [5, 6], [7, -8, -9, 10, 11], [12])
    t = Table(outage_after=crash_after)
    with pytest.raises(OperationalError):
        store_isolating(batch, "T", t.insert)
    t.outage_after = None
    result = store_isolating(batch, "T", t.insert)
    assert sorted(t.rows) == good(batch)  # nothing twice, nothing missing
    assert sum(r.rows for r in result.rejections) == 3


def test_outages_propagate_without_a_verdict() -> None:
    t = Table(outage_after=0)
    with pytest.raises(OperationalError):
        store_isolating(parts([1, -2]), "T", t.insert)
    assert t.rows == []


def test_the_walk_is_bounded_and_dead_letters_what_is_left() -> None:
    batch = parts([-v for v in range(1, 1001)])  # every row bad: 2 inserts a row unbounded
    t = Table()
    result = store_isolating(batch, "T", t.insert, max_inserts=20)
    assert result.inserts == 20
    assert sum(r.rows for r in result.rejections) == 1000
    assert result.stored_rows == 0


def test_messages_whose_tables_do_not_concatenate_are_stored_one_by_one() -> None:
    """Arrow refusing to concatenate (schemas differ) is a data problem, not an outage."""
    other = Part(11, pa.table({"v": pa.array([2], pa.int64()), "w": pa.array(["x"])}))
    batch = [parts([1])[0], other]
    t = Table()
    result = store_isolating(batch, "T", t.insert)
    assert sorted(t.rows) == [1, 2] and result.rejections == []

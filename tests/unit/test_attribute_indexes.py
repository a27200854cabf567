"""When the search asks ClickHouse again whether the attribute item text indexes exist.

The answer itself is read from the real server in tests/integration/test_attribute_item_indexes.py;
here a scripted client stands in for it, to pin the caching policy: a yes is kept, a no and a
failed read are asked again after a minute, and a failed read never fails the search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.exceptions import OperationalError

from query.attribute_indexes import ITEM_INDEXES, ItemIndexes


@dataclass
class Result:
    result_rows: list[tuple[str]]


@dataclass
class ScriptedClient:
    """Answers the index query with the next scripted answer: index names, or an exception."""

    answers: list[Any]
    asked: int = 0
    sql: list[str] = field(default_factory=list)

    def query(self, sql: str) -> Result:
        self.sql.append(sql)
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        if isinstance(answer, Exception):
            raise answer
        return Result([(name,) for name in answer])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_yes_is_kept_for_the_life_of_the_process() -> None:
    client, clock = ScriptedClient([list(ITEM_INDEXES), []]), Clock()
    indexes = ItemIndexes(client, clock)
    assert indexes() is True
    clock.now += 10 * ItemIndexes.RECHECK_SECONDS
    assert indexes() is True and client.asked == 1
    assert "system.data_skipping_indices" in client.sql[0]


def test_a_no_is_asked_again_after_a_minute() -> None:
    """The service may start before `tracehouse migrate` created the indexes."""
    client, clock = ScriptedClient([[], [ITEM_INDEXES[0]], list(ITEM_INDEXES)]), Clock()
    indexes = ItemIndexes(client, clock)
    assert indexes() is False
    clock.now += ItemIndexes.RECHECK_SECONDS - 1
    assert indexes() is False and client.asked == 1
    clock.now += 1
    assert indexes() is False and client.asked == 2  # one of the two is not enough
    clock.now += ItemIndexes.RECHECK_SECONDS
    assert indexes() is True and client.asked == 3


def test_a_failed_read_is_a_no_not_a_failed_search() -> None:
    client, clock = ScriptedClient([OperationalError("down"), list(ITEM_INDEXES)]), Clock()
    indexes = ItemIndexes(client, clock)
    assert indexes() is False
    assert indexes() is False and client.asked == 1
    clock.now += ItemIndexes.RECHECK_SECONDS
    assert indexes() is True and client.asked == 2

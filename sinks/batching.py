"""Pure bookkeeping of per-partition batches: what to flush and with which offsets.

A batch is always one topic partition's contiguous offset range, because only then can a
replacement worker rebuild it exactly (see ``sink_batches``) and reuse its deduplication token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sinks.isolation import rejected_rows


@dataclass
class PartitionBatch:
    topic: str
    partition: int
    first_offset: int
    last_offset: int = -1
    # One Arrow table per message (concatenated at insert time) and its offset.
    parts: list[Any] = field(default_factory=list)
    part_offsets: list[int] = field(default_factory=list)
    # Key and value of each message with rows, by offset: the original bytes go to the DLQ
    # if ClickHouse refuses some of its rows (v3 tables are zero-copy views of these bytes).
    sources: dict[int, tuple[bytes | None, bytes]] = field(default_factory=dict)
    row_count: int = 0
    dlq: list[tuple[int, bytes | None, bytes, str, str]] = field(default_factory=list)
    started_at: float = 0.0
    # Set when this batch replays a recorded intent: it must end exactly there.
    planned_last_offset: int | None = None
    # Kafka timestamp of the first record (-1: unknown). Offsets alone do not name the data:
    # a topic that was deleted and recreated, or a broker that lost its log, starts again at
    # offset 0, and a token made of offsets only would make ClickHouse drop the new batches
    # as duplicates of old ones. The record's timestamp is stored with it, so a replay of the
    # same record still yields the same token.
    first_timestamp_ms: int = -1
    # Rows ClickHouse refused (``sinks.isolation.Rejection``), set by the store; they go to
    # the DLQ and into the accounting with the batch, before the commit.
    rejections: list[Any] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.row_count

    @property
    def rejected_rows(self) -> int:
        """Rows of this batch ClickHouse refused (0 until the store isolated any)."""
        return rejected_rows(self.rejections)

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)

    def add(
        self, offset: int, part: Any, rows: int, key: bytes | None = None, value: bytes = b""
    ) -> None:
        self.last_offset = offset
        self.parts.append(part)
        self.part_offsets.append(offset)
        self.sources[offset] = (key, value)
        self.row_count += rows

    def add_poison(
        self, offset: int, key: bytes | None, value: bytes, reason: str, detail: str
    ) -> None:
        """Keep a record for the DLQ: it is produced with the batch, before the commit."""
        self.last_offset = offset
        self.dlq.append((offset, key, value, reason, detail))

    def dedup_token(self, group: str) -> str:
        token = dedup_token(group, self.topic, self.partition, self.first_offset, self.last_offset)
        return token if self.first_timestamp_ms < 0 else f"{token}@{self.first_timestamp_ms}"

    def is_complete(self, max_rows: int, max_age: float, now: float) -> bool:
        if self.planned_last_offset is not None:
            return self.last_offset >= self.planned_last_offset
        return self.rows >= max_rows or (now - self.started_at) >= max_age


def dedup_token(group: str, topic: str, partition: int, first: int, last: int) -> str:
    return f"{group}/{topic}/{partition}/{first}-{last}"


class Intent(NamedTuple):
    """A recorded batch intent: its offset range and the Kafka timestamp of its first record
    (-1 when unknown), which tells the record from another one at the same offset."""

    first: int
    last: int
    first_timestamp_ms: int = -1


def drop_stale_plans(
    plan: list[Intent],
    offset: int,
    timestamp_ms: int = -1,
    on_other_life: Callable[[Intent], None] | None = None,
) -> int | None:
    """Forget intents that end before ``offset``; the planned end if one starts exactly there.

    Within one life of a topic partition an intent cannot start past ``offset`` (offsets are
    committed only at intent boundaries), so a new batch either replays an intent or is a
    fresh one. Across lives it can: a topic deleted and recreated, or a broker that lost its
    log, numbers its records from 0 again while the intents of the old records are still in
    ClickHouse (and the group's committed offset is gone, so all of them are read back). An
    intent whose first record had another timestamp than the record now at that offset
    belongs to that earlier life and is dropped too; replaying it would hold the new batch
    until an offset the new log may never reach. ``on_other_life`` hears of each such intent.
    """
    while plan and plan[0].last < offset:
        plan.pop(0)
    if plan and plan[0].first == offset:
        recorded = plan[0].first_timestamp_ms
        if recorded >= 0 and timestamp_ms >= 0 and recorded != timestamp_ms:
            stale = plan.pop(0)
            if on_other_life is not None:
                on_other_life(stale)
            return None
        return plan[0].last
    return None

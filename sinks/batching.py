"""Pure bookkeeping of per-partition batches: what to flush and with which offsets.

A batch is always one partition's contiguous offset range, because only then can a replacement
worker rebuild it exactly (see ``sink_batches``) and reuse its deduplication token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PartitionBatch:
    topic: str
    partition: int
    first_offset: int
    last_offset: int = -1
    records: list[dict[str, Any]] = field(default_factory=list)
    dlq: list[tuple[int, bytes | None, bytes, str]] = field(default_factory=list)
    started_at: float = 0.0
    # Set when this batch replays a recorded intent: it must end exactly there.
    planned_last_offset: int | None = None

    @property
    def rows(self) -> int:
        return len(self.records)

    def add(self, offset: int, records: list[dict[str, Any]]) -> None:
        self.last_offset = offset
        self.records.extend(records)

    def add_poison(self, offset: int, key: bytes | None, value: bytes, reason: str) -> None:
        self.last_offset = offset
        self.dlq.append((offset, key, value, reason))

    def dedup_token(self, group: str) -> str:
        return dedup_token(group, self.topic, self.partition, self.first_offset, self.last_offset)

    def is_complete(self, max_rows: int, max_age: float, now: float) -> bool:
        if self.planned_last_offset is not None:
            return self.last_offset >= self.planned_last_offset
        return self.rows >= max_rows or (now - self.started_at) >= max_age


def dedup_token(group: str, topic: str, partition: int, first: int, last: int) -> str:
    return f"{group}/{topic}/{partition}/{first}-{last}"

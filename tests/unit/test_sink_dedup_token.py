"""The sink's insert_deduplication_token must tell a recreated topic's offsets from the old
ones (a broker restart without its log starts again at offset 0), yet stay the same when a
replacement worker replays the same records."""

from __future__ import annotations

from sinks.batching import PartitionBatch


def _batch(first_ts: int) -> PartitionBatch:
    b = PartitionBatch("spans.sampled", 2, first_offset=0, first_timestamp_ms=first_ts)
    b.add(0, None, 10)
    b.add(1, None, 10)
    return b


def test_same_records_same_token() -> None:
    assert _batch(1_700_000_000_000).dedup_token("g") == _batch(1_700_000_000_000).dedup_token("g")


def test_same_offsets_of_a_new_topic_incarnation_get_a_new_token() -> None:
    assert _batch(1_700_000_000_000).dedup_token("g") != _batch(1_700_000_999_000).dedup_token("g")


def test_unknown_timestamp_keeps_the_offset_only_token() -> None:
    assert _batch(-1).dedup_token("g") == "g/spans.sampled/2/0-1"

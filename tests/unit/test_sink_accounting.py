"""The sink's counter record for rejected span rows is a pure function of the batch, so a
replay publishes the identical record and pipeline_counters (ReplacingMergeTree) keeps one."""

from __future__ import annotations

from schemas import avro_codec
from sinks.accounting import rejected_spans_record


def test_record_names_the_batch_and_counts_by_reason() -> None:
    record = rejected_spans_record(
        "spans.sampled", 3, 1200, 1_764_000_000_123, {"clickhouse_rejected": 7}
    )
    assert record == {
        "component": "sink",
        "instance": "spans.sampled/3",
        "seq": 1200,
        "time_unix_nano": 1_764_000_000_123_000_000,
        "counters": [
            {"tenant_id": "", "name": "spans_rejected", "reason": "clickhouse_rejected", "value": 7}
        ],
    }
    encoded = avro_codec.encode("pipeline_counters", record)
    assert avro_codec.decode("pipeline_counters", encoded)["seq"] == 1200


def test_a_replay_encodes_to_the_same_bytes() -> None:
    args = ("spans.sampled", 0, 5, 1_700_000_000_000, {"clickhouse_rejected": 2})
    a, b = rejected_spans_record(*args), rejected_spans_record(*args)
    assert a is not None and b is not None
    assert avro_codec.encode("pipeline_counters", a) == avro_codec.encode("pipeline_counters", b)


def test_nothing_rejected_nothing_published() -> None:
    assert rejected_spans_record("s", 0, 0, 0, {"clickhouse_rejected": 0}) is None

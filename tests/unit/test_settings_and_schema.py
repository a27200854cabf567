from core.settings import Settings, Topics
from schemas.migrations import load_migrations
from sinks.batching import PartitionBatch


def test_settings_env_round_trip() -> None:
    s = Settings(
        kafka_bootstrap="127.0.0.1:1234",
        partitions=3,
        sink_batch_seconds=0.25,
        topics=Topics(raw_spans="raw_x"),
    )
    again = Settings.from_env(s.to_env())
    assert again == s


def test_migrations_are_ordered_and_render_ttl() -> None:
    migs = load_migrations()
    assert [m.version for m in migs] == sorted(m.version for m in migs)
    first = migs[0].statements("db1", retention=7)
    assert any("TTL toDateTime(Timestamp) + toIntervalDay(7)" in s for s in first)
    assert all("{db}" not in s for s in first)
    no_ttl = migs[0].statements("db1", retention=0)
    assert not any("TTL" in s for s in no_ttl)
    assert any("ttl_only_drop_parts = 1" in s for s in no_ttl)


def test_batch_completion_and_token() -> None:
    b = PartitionBatch("t", 3, first_offset=10, started_at=100.0)
    b.add(10, "part-a", 5)
    b.add(11, "part-b", 5)
    assert not b.is_complete(max_rows=20, max_age=1.0, now=100.5)
    assert b.is_complete(max_rows=10, max_age=1.0, now=100.5)
    assert b.is_complete(max_rows=20, max_age=1.0, now=101.0)
    assert b.dedup_token("g") == "g/t/3/10-11"
    b.planned_last_offset = 12
    assert not b.is_complete(max_rows=1, max_age=0.0, now=1e9)
    b.add_poison(12, None, b"x", "bad", "detail")
    assert b.is_complete(max_rows=1, max_age=0.0, now=0) and b.rows == 10 and len(b.dlq) == 1

"""Pure column building and validation of the sink's table writers."""

from __future__ import annotations

from typing import Any

import pytest

from core.settings import Settings
from schemas import avro_codec
from sinks.batching import Intent, drop_stale_plans
from sinks.decoding import PoisonRecord, decode_message, decode_rows
from sinks.otel_names import OTEL_TRACES_COLUMNS
from sinks.window_columns import InvalidRecord, edge_rows, red_metrics_arrow, red_rows
from sinks.writers import WRITERS, writers_by_topic
from tracehouse.span_tables import span_message


def _span(i: int, kind: int = 2, status: int = 0) -> dict[str, Any]:
    return {
        "tenant_id": "t1",
        "trace_id": f"{i + 1:032x}",
        "span_id": f"{i + 1:016x}",
        "name": "op",
        "kind": kind,
        "service_name": "svc",
        "start_time_unix_nano": 1_000 + i,
        "end_time_unix_nano": 900 if i == 1 else 5_000 + i,
        "status_code": status,
        "scope_name": "s",
        "attributes": {"k": str(i)},
        "events": [{"time_unix_nano": 7, "name": "e", "attributes": {"a": "b"}}] * (i % 3),
        "links": [{"trace_id": "ab" * 16, "span_id": "cd" * 8}] * (i % 2),
    }


def test_span_table_keeps_odd_values() -> None:
    """Unknown enum numbers keep their digits, end before start clamps, nesting per span."""
    spans = [_span(0), _span(1, kind=9, status=7), _span(2, kind=5, status=2), _span(3)]
    table = decode_message("spans", span_message(spans)).table
    assert table is not None and table.column_names == list(OTEL_TRACES_COLUMNS)
    assert table.column("SpanKind").to_pylist() == ["Server", "9", "Consumer", "Server"]
    assert table.column("StatusCode").to_pylist() == ["Unset", "7", "Error", "Unset"]
    assert table.column("Duration").to_pylist() == [4_000, 0, 4_000, 4_000]
    assert [len(v) for v in table.column("Events.Name").to_pylist()] == [0, 1, 2, 0]
    assert [len(v) for v in table.column("Links.SpanId").to_pylist()] == [0, 1, 0, 1]
    assert table.column("TenantId").to_pylist() == ["t1"] * 4
    assert table.column("SpanAttributes").to_pylist()[2] == [("k", "2")]


def _red(counts: list[int], calls: int = 3) -> dict[str, Any]:
    return {
        "source": "otlp_spans/0",
        "window_start_unix_nano": 60,
        "window_end_unix_nano": 120,
        "bucket_bounds_ms": [1.0, 5.0],
        "series": [
            {
                "tenant_id": "",
                "service_name": "a",
                "span_name": "b",
                "span_kind": 2,
                "status_code": 2,
                "overflow": False,
                "calls": calls,
                "errors": 1,
                "duration_sum_ns": 10,
                "duration_max_ns": 9,
                "bucket_counts": counts,
            }
        ],
    }


def test_red_rows_validate_histograms() -> None:
    rows = red_rows(_red([1, 1, 1]))
    table = red_metrics_arrow(rows)
    assert table.column("SpanKind").to_pylist() == ["Server"]
    assert table.column("StatusCode").to_pylist() == ["Error"]
    assert table.column("BucketCounts").to_pylist() == [[1, 1, 1]]
    for bad in ([1, 1], [1, -1, 1]):
        with pytest.raises(InvalidRecord):
            red_rows(_red(bad))
    with pytest.raises(InvalidRecord, match="negative calls"):
        red_rows(_red([1, 1, 1], calls=-1))
    unordered = _red([1, 1, 1])
    unordered["bucket_bounds_ms"] = [5.0, 1.0]
    with pytest.raises(InvalidRecord, match="increasing"):
        red_rows(unordered)
    backwards = _red([1, 1, 1])
    backwards["window_end_unix_nano"] = 0
    with pytest.raises(InvalidRecord):
        red_rows(backwards)


def test_edge_rows_need_matching_buckets() -> None:
    batch = {
        "source": "s",
        "window_start_unix_nano": 0,
        "window_end_unix_nano": 1,
        "bucket_bounds_ms": [1.0],
        "edges": [
            {
                "tenant_id": "",
                "client_service": "a",
                "server_service": "b",
                "connection_type": "",
                "calls": 1,
                "errors": 0,
                "duration_sum_ns": 1,
                "duration_max_ns": 1,
                "bucket_counts": [1],
            }
        ],
    }
    with pytest.raises(InvalidRecord):
        edge_rows(batch)


def test_decode_rows_classifies_poison() -> None:
    writer = WRITERS["red"]
    with pytest.raises(PoisonRecord) as undecodable:
        decode_rows(writer, b"junk")
    assert undecodable.value.reason == "undecodable_avro"
    with pytest.raises(PoisonRecord) as invalid:
        decode_rows(writer, avro_codec.encode("red_metrics", _red([1])))
    assert invalid.value.reason == "invalid_record"
    assert len(decode_rows(writer, avro_codec.encode("red_metrics", _red([1, 2, 0])))) == 1


def test_decode_message_gives_a_table_or_a_reason() -> None:
    ok = decode_message("red", avro_codec.encode("red_metrics", _red([1, 2, 0])))
    assert ok.table is not None and ok.table.num_rows == 1 and ok.reason == ""
    bad = decode_message("red", avro_codec.encode("red_metrics", _red([1])))
    assert bad.table is None and bad.reason == "invalid_record" and "bucket" in bad.detail
    junk = decode_message("spans", b"\xa7\x01garbage")
    assert junk.table is None and junk.reason == "undecodable_avro"


def test_writers_follow_settings() -> None:
    s = Settings()
    assert set(writers_by_topic(s)) == {
        "spans.sampled",
        "metrics.red",
        "graph.edges",
        "pipeline.accounting",
    }
    only = writers_by_topic(s.with_(sink_streams="red"))
    assert [w.table for w in only.values()] == ["red_metrics"]
    with pytest.raises(ValueError):
        writers_by_topic(s.with_(sink_streams="spans,nope"))


def test_drop_stale_plans() -> None:
    plan = [Intent(0, 4), Intent(5, 9), Intent(10, 12)]
    assert drop_stale_plans(plan, 5) == 9 and plan == [Intent(5, 9), Intent(10, 12)]
    assert drop_stale_plans(plan, 13) is None and plan == []
    assert drop_stale_plans([Intent(3, 4)], 0) is None


def test_intents_of_an_earlier_life_of_the_partition_are_not_replayed() -> None:
    """After a topic is recreated (or the broker lost its log) offsets start at 0 again while
    the old intents are still recorded: the record at the intent's first offset has another
    timestamp, so the intent is dropped and reported instead of holding the new batch until
    the old intent's end."""
    plan = [Intent(0, 30, 1_000), Intent(31, 60, 2_000)]
    dropped: list[Intent] = []
    assert drop_stale_plans(plan, 0, 9_000, dropped.append) is None
    assert dropped == [Intent(0, 30, 1_000)] and plan == [Intent(31, 60, 2_000)]
    # The same record (same timestamp) is a genuine replay; an unknown timestamp on either
    # side keeps the offsets-only rule.
    assert drop_stale_plans([Intent(0, 30, 1_000)], 0, 1_000) == 30
    assert drop_stale_plans([Intent(0, 30, -1)], 0, 9_000) == 30
    assert drop_stale_plans([Intent(0, 30, 1_000)], 0, -1) == 30

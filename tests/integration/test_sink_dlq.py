"""Poison records go to the DLQ with a reason header; the records around them are stored."""

from __future__ import annotations

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from schemas import avro_codec
from tests.integration.helpers import wait_until
from tests.integration.sink_data import produce, read_topic, red_batch, span_batch, start_sink
from tracehouse.span_tables import span_message


def test_malformed_records_land_in_dlq_and_the_rest_is_stored(
    services: LocalStack, pipeline_settings: Settings
) -> None:
    s = pipeline_settings
    t = s.topics
    good_before = span_batch(0, traces=5, spans_per_trace=4)
    good_after = span_batch(100, traces=5, spans_per_trace=4)
    corrupt = bytearray(span_message(good_before["spans"]))
    corrupt[5:] = b"\xff" * (len(corrupt) - 5)
    # A frame of a span_batch version this sink has no reader for (v2 was removed).
    unknown_version = bytes((avro_codec.MAGIC, 2)) + span_message(good_after["spans"])[2:]
    bad_red = red_batch(0, "otlp_spans/0")
    bad_red["series"][0]["bucket_counts"] = [1, 2]  # does not fit the 9 bounds
    produce(
        s.kafka_bootstrap,
        t.sampled_spans,
        [
            (0, span_message(good_before["spans"])),
            (0, b"not avro at all"),
            (0, bytes(corrupt)),
            (0, unknown_version),
            (0, span_message(good_after["spans"])),
        ],
    )
    produce(
        s.kafka_bootstrap,
        t.red_metrics,
        [
            (1, avro_codec.encode("red_metrics", bad_red)),
            (1, avro_codec.encode("red_metrics", red_batch(1, "otlp_spans/1"))),
        ],
    )
    stack = LocalStack(s, services.run_dir / s.clickhouse_database, say=lambda _m: None)
    try:
        start_sink(stack, free_port())
        client = connect(s.clickhouse_url, s.clickhouse_database)
        wait_until(
            lambda: (
                client.command("SELECT count() FROM otel_traces"),
                client.command("SELECT count() FROM red_metrics"),
            ),
            lambda c: c == (40, len(red_batch(1, "x")["series"])),
            timeout=30,
        )
        dead = read_topic(s.kafka_bootstrap, t.sink_dlq, expect=4)
    finally:
        stack.stop()
    assert len(dead) == 4
    by_value = {m.value(): dict(m.headers()) for m in dead}
    assert by_value[b"not avro at all"]["reason"] == b"undecodable_avro"
    assert by_value[bytes(corrupt)]["reason"] == b"undecodable_avro"
    assert by_value[unknown_version]["reason"] == b"undecodable_avro"
    assert b"unknown schema version 2" in by_value[unknown_version]["error"]
    red_headers = by_value[avro_codec.encode("red_metrics", bad_red)]
    assert red_headers["reason"] == b"invalid_record"
    assert b"bucket counts" in red_headers["error"]
    assert red_headers["source_topic"] == t.red_metrics.encode()
    assert by_value[b"not avro at all"]["source_offset"] == b"1"
    assert client.command("SELECT uniqExact(TraceId) FROM otel_traces") == 10

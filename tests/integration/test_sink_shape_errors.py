"""Batches ClickHouse refuses for their data never stop the sink (real broker and ClickHouse).

- 101 spans on 101 days in one message: ClickHouse refuses the insert (code 252, more than
  ``max_partitions_per_insert_block`` partitions); the sink stores it anyway and goes on.
- One row a table constraint refuses (code 469, a real server-side rejection of a row):
  bisection stores the good rows once, the bad row goes to the DLQ with its reason and is
  counted in ``pipeline_counters``.
- A SIGKILL in the middle of that bisection, then a restart: still every good row once.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from schemas import avro_codec
from tests.integration.crashing_sink import start_crashing_sink
from tests.integration.helpers import wait_until
from tests.integration.sink_data import (
    metric,
    produce,
    read_topic,
    red_batch,
    span,
    span_batch,
    start_sink,
)
from tracehouse.span_tables import span_message

DAY_NS = 86_400 * 10**9
BAD_SERVICE = "reject-me"


def _stack(services: LocalStack, settings: Settings) -> LocalStack:
    return LocalStack(
        settings, services.run_dir / settings.clickhouse_database, say=lambda _m: None
    )


def _constraint(client: Any, table: str) -> None:
    """A real ClickHouse rejection of single rows (VIOLATED_CONSTRAINT), as an operator's
    CHECK would cause; the sink's Arrow types are otherwise accepted for any value."""
    client.command(
        f"ALTER TABLE {table} ADD CONSTRAINT no_reject CHECK ServiceName != '{BAD_SERVICE}'"
    )


def _messages_with_one_bad_span(first_trace: int) -> tuple[list[bytes], int]:
    """Eight span messages of 12 spans; message 6 holds one span the constraint refuses."""
    values, spans = [], 0
    for m in range(8):
        rec = span_batch(first_trace + m * 3, traces=3, spans_per_trace=4)
        if m == 6:
            rec["spans"][5]["service_name"] = BAD_SERVICE
        spans += len(rec["spans"])
        values.append(span_message(rec["spans"]))
    return values, spans - 1


def _sink_counters(client: Any) -> list[tuple[str, str, str, int]]:
    return [
        (str(i), str(n), str(r), int(v))
        for i, n, r, v in client.query(
            "SELECT Instance, Name, Reason, sum(Value) FROM pipeline_counters FINAL "
            "WHERE Component = 'sink' GROUP BY Instance, Name, Reason ORDER BY Instance"
        ).result_rows
    ]


def test_spans_on_101_days_are_stored_and_the_sink_goes_on(
    services: LocalStack, pipeline_settings: Settings
) -> None:
    s = pipeline_settings
    t = s.topics
    days = []
    for d in range(101):
        sp = span(50_000 + d, 0)
        sp["start_time_unix_nano"] += d * DAY_NS
        sp["end_time_unix_nano"] += d * DAY_NS
        days.append(sp)
    later = span_batch(0, traces=5, spans_per_trace=4)["spans"]
    produce(s.kafka_bootstrap, t.sampled_spans, [(0, span_message(days))])
    stack = _stack(services, s)
    port = free_port()
    try:
        start_sink(stack, port)
        client = connect(s.clickhouse_url, s.clickhouse_database)
        wait_until(
            lambda: client.command("SELECT count() FROM otel_traces"), lambda n: n == 101, 30
        )
        produce(
            s.kafka_bootstrap,
            t.sampled_spans,
            [(0, span_message(later)), (1, span_message(later[:4]))],
        )
        wait_until(
            lambda: client.command("SELECT count() FROM otel_traces"),
            lambda n: n == 101 + len(later) + 4,
            timeout=30,
        )
        assert metric(port, "tracehouse_sink_paused") == 0
        assert metric(port, "tracehouse_sink_shape_errors_total") >= 1
    finally:
        stack.stop()
    assert client.command("SELECT uniqExact(toDate(Timestamp)) FROM otel_traces") >= 101
    assert client.command("SELECT uniqExact(TraceId) FROM otel_traces_trace_id_ts") == 101 + 5
    assert read_topic(s.kafka_bootstrap, t.sink_dlq, expect=0, timeout=1) == []


def test_rows_clickhouse_rejects_go_to_the_dlq_and_are_counted(
    services: LocalStack, pipeline_settings: Settings
) -> None:
    s = pipeline_settings.with_(sink_batch_rows=1_000_000, sink_batch_seconds=2.0)
    t = s.topics
    client = connect(s.clickhouse_url, s.clickhouse_database)
    _constraint(client, "otel_traces")
    _constraint(client, "red_metrics")
    values, good_spans = _messages_with_one_bad_span(0)
    produce(s.kafka_bootstrap, t.sampled_spans, [(0, v) for v in values])
    bad_red = red_batch(0, "otlp_spans/0")
    bad_red["series"][2]["service_name"] = BAD_SERVICE
    produce(s.kafka_bootstrap, t.red_metrics, [(1, avro_codec.encode("red_metrics", bad_red))])
    stack = _stack(services, s)
    port = free_port()
    try:
        start_sink(stack, port)
        wait_until(
            lambda: (
                client.command("SELECT count() FROM otel_traces"),
                client.command("SELECT count() FROM red_metrics"),
                _sink_counters(client),
            ),
            lambda c: (
                c
                == (
                    good_spans,
                    len(bad_red["series"]) - 1,
                    [(f"{t.sampled_spans}/0", "spans_rejected", "clickhouse_rejected", 1)],
                )
            ),
            timeout=40,
        )
        dead = read_topic(s.kafka_bootstrap, t.sink_dlq, expect=2)
        # Data behind the rejected rows flows on.
        produce(s.kafka_bootstrap, t.sampled_spans, [(0, span_message([span(9_000, 0)]))])
        wait_until(
            lambda: client.command("SELECT count() FROM otel_traces"),
            lambda n: n == good_spans + 1,
            timeout=30,
        )
        assert metric(port, "tracehouse_sink_rows_rejected_total") == 2
        assert metric(port, "tracehouse_sink_paused") == 0
    finally:
        stack.stop()
    assert client.command("SELECT uniqExact(SpanId, TraceId) FROM otel_traces") == good_spans + 1
    assert (
        client.command(f"SELECT count() FROM otel_traces WHERE ServiceName = '{BAD_SERVICE}'") == 0
    )
    assert len(dead) == 2
    by_topic = {dict(m.headers())["source_topic"].decode(): m for m in dead}
    spans_dlq = dict(by_topic[t.sampled_spans].headers())
    assert spans_dlq["reason"] == b"clickhouse_rejected"
    assert b"469" in spans_dlq["error"] and b"VIOLATED_CONSTRAINT" in spans_dlq["error"]
    assert spans_dlq["source_offset"] == b"6"
    assert spans_dlq["rows"] == b"5:6" and spans_dlq["rejected_rows"] == b"1"
    assert by_topic[t.sampled_spans].value() == values[6]  # the original message
    red_dlq = dict(by_topic[t.red_metrics].headers())
    assert red_dlq["reason"] == b"clickhouse_rejected" and red_dlq["rows"] == b"2:3"
    # RED rows are not spans: counted in Prometheus only, not in the span accounting.
    assert [c for c in _sink_counters(client) if t.red_metrics in c[0]] == []


def test_sigkill_in_the_middle_of_a_bisection_stores_every_good_row_once(
    services: LocalStack, pipeline_settings: Settings
) -> None:
    """Eight messages, one bad row in message 6: the whole insert fails, [0-3] and [4-5] get
    in as sub-inserts, and the hook kills the sink right after the second one, before the
    rest of the walk, the DLQ, the accounting record and the commit. The next sink replays
    the intent: same batch, same walk, same sub-tokens, so [0-3] and [4-5] are deduplicated."""
    s = pipeline_settings.with_(sink_batch_rows=1_000_000, sink_batch_seconds=2.0)
    t = s.topics
    client = connect(s.clickhouse_url, s.clickhouse_database)
    _constraint(client, "otel_traces")
    values, good_spans = _messages_with_one_bad_span(0)
    produce(s.kafka_bootstrap, t.sampled_spans, [(0, v) for v in values])
    stack = _stack(services, s)
    try:
        crashing = start_crashing_sink(stack, free_port(), 2, "otel_traces")
        assert crashing.proc.wait(40) == -signal.SIGKILL
        stored_at_crash = client.command("SELECT count() FROM otel_traces")
        assert 0 < stored_at_crash < good_spans  # killed half-way through the bisection
        port = free_port()
        start_sink(stack, port)
        wait_until(
            lambda: (client.command("SELECT count() FROM otel_traces"), _sink_counters(client)),
            lambda c: (
                c
                == (
                    good_spans,
                    [(f"{t.sampled_spans}/0", "spans_rejected", "clickhouse_rejected", 1)],
                )
            ),
            timeout=40,
        )
        time.sleep(1.5)  # a late duplicate would show now
        assert client.command("SELECT count() FROM otel_traces") == good_spans
        assert metric(port, "tracehouse_sink_replayed_batches_total") >= 1
    finally:
        stack.stop()
    assert client.command("SELECT uniqExact(SpanId, TraceId) FROM otel_traces") == good_spans
    assert client.command("SELECT uniqExact(TraceId) FROM otel_traces_trace_id_ts") == 8 * 3
    dead = read_topic(s.kafka_bootstrap, t.sink_dlq, expect=1)
    assert {dict(m.headers())["source_offset"] for m in dead} == {b"6"}


def test_sigkill_after_a_too_many_partitions_insert_is_deduplicated_on_replay(
    services: LocalStack, pipeline_settings: Settings
) -> None:
    """The 101-day insert goes in (second attempt, partition check off, same token), the sink
    dies before the commit; the replay fails the check again, repeats the relaxed insert with
    the same token, and ClickHouse drops every part of it as a duplicate (MV target too)."""
    s = pipeline_settings
    t = s.topics
    days = []
    for d in range(101):
        sp = span(60_000 + d, 0)
        sp["start_time_unix_nano"] += d * DAY_NS
        sp["end_time_unix_nano"] += d * DAY_NS
        days.append(sp)
    produce(s.kafka_bootstrap, t.sampled_spans, [(2, span_message(days))])
    client = connect(s.clickhouse_url, s.clickhouse_database)
    stack = _stack(services, s)
    try:
        crashing = start_crashing_sink(stack, free_port(), 1, "otel_traces")
        assert crashing.proc.wait(40) == -signal.SIGKILL
        assert client.command("SELECT count() FROM otel_traces") == 101
        port = free_port()
        start_sink(stack, port)
        wait_until(lambda: metric(port, "tracehouse_sink_replayed_batches_total"), bool, 30)
        time.sleep(1.0)
    finally:
        stack.stop()
    assert client.command("SELECT count() FROM otel_traces") == 101
    assert client.command("SELECT count() FROM otel_traces_trace_id_ts") == 101

"""Spans that once stopped all storage, sent straight to the raw topic (as high-volume producers
do, with no ingest validation in front) through the real broker, streams, sink and ClickHouse:
each is refused alone with its reason and counted, every good span sent alongside or after it
is stored, no worker dies, and the accounting identity holds."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from core.clickhouse import connect
from core.partitioning import partition_for_key
from core.settings import Settings
from deploy.local.stack import LocalStack
from tests.integration.helpers import wait_until
from tests.integration.test_docs_queries import doc_queries
from tracehouse.span_specs import CLIENT, SpanSpec, sid, tid, traces_data

NOW_NS = time.time_ns()


def _produce(settings: Settings, messages: list[tuple[bytes, bytes]]) -> None:
    """(trace id, OTLP payload) messages, each on its trace's partition."""
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "acks": "all",
            "message.max.bytes": settings.max_request_bytes,
        }
    )
    for trace, value in messages:
        p = partition_for_key(trace, settings.partitions)
        producer.produce(settings.topics.raw_spans, value, key=trace, partition=p)
    assert producer.flush(30) == 0


def _accounting(settings: Settings) -> dict[str, Any]:
    client = connect(settings.clickhouse_url, settings.clickhouse_database)
    result = client.query(doc_queries()["pipeline_accounting"])
    return dict(zip(result.column_names, result.result_rows[0], strict=True))


def _dlq_reasons(settings: Settings) -> list[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"dlq-{time.monotonic_ns()}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign(
        [
            TopicPartition(settings.topics.streams_dlq, p, OFFSET_BEGINNING)
            for p in range(settings.partitions)
        ]
    )
    reasons: list[str] = []
    try:
        for _ in range(10):
            for msg in consumer.consume(100, 0.3):
                if msg.error() is None:
                    reason = dict(msg.headers() or [])["reason"]
                    assert isinstance(reason, bytes)
                    reasons.append(reason.decode())
    finally:
        consumer.close()
    return reasons


def test_poison_spans_from_a_direct_producer_are_refused_alone(pipeline: LocalStack) -> None:
    s = pipeline.settings
    good = [SpanSpec(tid(1), sid(n), "shop", start_ns=NOW_NS) for n in range(1, 6)]
    data = traces_data(good)
    spans = data.resource_spans[0].scope_spans[0].spans
    bad = spans.add()
    bad.CopyFrom(spans[0])
    bad.span_id, bad.start_time_unix_nano = sid(90), 2**63  # a legal uint64 beyond DateTime64
    late = spans.add()
    late.CopyFrom(spans[0])
    late.span_id, late.end_time_unix_nano = sid(91), 9_300_000_000_000_000_000
    # Six spans of one operation from the epoch to now in one RED window (an SDK bug): the
    # duration sum passes 2^63.
    forever = [
        SpanSpec(tid(2), sid(n), "batch", name="job", kind=CLIENT, start_ns=0,
                 duration_ms=NOW_NS / 1e6)
        for n in range(1, 7)
    ]  # fmt: skip
    _produce(
        s,
        [
            (tid(1), data.SerializeToString()),
            (tid(2), traces_data(forever).SerializeToString()),
        ],
    )
    # A trace of 20 spans of 900 KB: kept spans are more than one message can carry.
    blob = "x" * 900_000
    large = [
        (tid(3), traces_data([SpanSpec(tid(3), sid(n), "upload", start_ns=NOW_NS,
                                       attributes={"payload": blob})]).SerializeToString())
        for n in range(1, 21)
    ]  # fmt: skip
    _produce(s, large)
    # Good spans after all of it must still be stored.
    after = [SpanSpec(tid(4), sid(n), "shop", start_ns=NOW_NS) for n in range(1, 4)]
    _produce(s, [(tid(4), traces_data(after).SerializeToString())])

    client = connect(s.clickhouse_url, s.clickhouse_database)
    expected = 5 + 6 + 20 + 3
    wait_until(
        lambda: int(client.command("SELECT count() FROM otel_traces")),
        lambda n: n >= expected,
        timeout=90,
    )
    acc = wait_until(lambda: _accounting(s), lambda a: bool(a["balanced"]) and a["received"] == 36)
    assert acc["stored"] == expected
    assert acc["rejected_by_reason"] == {"time_out_of_range": 2}
    assert not pipeline.dead(), [c.name for c in pipeline.dead()]
    assert _dlq_reasons(s) == ["time_out_of_range"]
    red = client.query(
        "SELECT sum(Calls), max(DurationSumNs) FROM red_metrics WHERE ServiceName = 'batch'"
    ).result_rows
    assert red[0][0] == 6 and red[0][1] == 2**63 - 1


def test_a_retried_request_is_stored_once(pipeline: LocalStack) -> None:
    """The same spans twice on the raw topic (a client retry after a timeout whose first
    attempt reached the broker): stored once, counted as duplicates, identity exact."""
    s = pipeline.settings
    spans = [SpanSpec(tid(7), sid(n), "shop", start_ns=NOW_NS) for n in range(1, 11)]
    body = traces_data(spans).SerializeToString()
    _produce(s, [(tid(7), body)])
    time.sleep(1)
    _produce(s, [(tid(7), body)])
    acc = wait_until(lambda: _accounting(s), lambda a: a["received"] == 20 and a["balanced"])
    assert acc["stored"] == 10 and acc["duplicate"] == 10
    # Long after the decision (decision wait + a tick), a third copy: still stored once.
    time.sleep(s.red_window_seconds + 6)
    _produce(s, [(tid(7), body)])
    acc = wait_until(lambda: _accounting(s), lambda a: a["received"] == 30 and a["balanced"])
    assert acc["stored"] == 10 and acc["duplicate"] == 20

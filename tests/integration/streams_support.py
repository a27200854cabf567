"""Helpers for the streams integration tests: produce raw OTLP messages, read Avro topics."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from core.clickhouse import connect
from core.partitioning import partition_for_key
from core.settings import Settings
from deploy.local.stack import LocalStack
from schemas import avro_codec
from tracehouse.span_specs import SpanSpec, payload


def streams_settings(base: Settings, tmp_path: Path, policy: dict[str, Any]) -> Settings:
    path = tmp_path / "sampling.yaml"
    path.write_text(yaml.safe_dump(policy))
    return base.with_(
        sampling_policy_file=str(path),
        red_window_seconds=1.0,
        graph_wait_seconds=2.0,
        streams_tick_seconds=0.2,
    )


def start_streams(stack: LocalStack, metrics_port: int) -> Any:
    return stack.start_component(
        "streams",
        f"http://127.0.0.1:{metrics_port}/health",
        extra_env={"TRACEHOUSE_STREAMS_METRICS_PORT": str(metrics_port)},
    )


def produce_spans(settings: Settings, spans: Iterable[SpanSpec]) -> int:
    """One raw message per partition (as ingest does), many records per produce batch."""
    by_partition: dict[int, list[SpanSpec]] = defaultdict(list)
    for s in spans:
        by_partition[partition_for_key(s.trace_id, settings.partitions)].append(s)
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20, "acks": "all"}
    )
    sent = 0
    for p, group in sorted(by_partition.items()):
        # Split each partition's spans into a few messages so batches hold several records.
        for i in range(0, len(group), 7):
            chunk = group[i : i + 7]
            producer.produce(
                settings.topics.raw_spans, payload(chunk), key=chunk[0].trace_id, partition=p
            )
            sent += len(chunk)
    assert producer.flush(30) == 0
    return sent


class TopicReader:
    """Reads every partition of a topic from the beginning, accumulating decoded records."""

    def __init__(self, settings: Settings, topic: str, schema: str) -> None:
        self.schema = schema
        self.records: list[dict[str, Any]] = []
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"reader-{topic}-{time.monotonic_ns()}",
                "enable.auto.commit": False,
            }
        )
        self.consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.partitions)]
        )

    def poll(self) -> list[dict[str, Any]]:
        for msg in self.consumer.consume(1000, 0.3):
            if msg.error() is None:
                self.records.append(avro_codec.decode(self.schema, msg.value() or b""))
        return self.records

    def close(self) -> None:
        self.consumer.close()


def counter_totals(batches: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for b in batches:
        for c in b["counters"]:
            totals[(c["name"], c["reason"])] += c["value"]
    return totals


def stored_spans(settings: Settings) -> list[tuple[str, str]]:
    client = connect(settings.clickhouse_url, settings.clickhouse_database)
    rows = client.query("SELECT TraceId, SpanId FROM otel_traces").result_rows
    return [(r[0], r[1]) for r in rows]

"""Producers writing the raw topic directly in the encodings the Collector's Kafka exporter
offers, through the real broker, streams, sink and ClickHouse: each lands; an undecodable
message is counted by reason and dead-lettered; a trace put on another partition than the
configured partitioner picks is counted and shown by ``tracehouse status``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from core.partitioning import PARTITIONERS
from deploy.local.stack import LocalStack
from tests.conftest import running_pipeline
from tests.integration.cli_runner import run_cli
from tests.integration.helpers import wait_until
from tests.integration.ingest_helpers import wait_for_trace_rows

NOW_US = time.time_ns() // 1000


def _otlp_json(trace: str, service: str) -> bytes:
    span = {
        "traceId": trace,
        "spanId": "00000000000000a1",
        "name": "op",
        "kind": 2,
        "startTimeUnixNano": str(NOW_US * 1000),
        "endTimeUnixNano": str(NOW_US * 1000 + 5000),
        "attributes": [{"key": "k", "value": {"intValue": "7"}}],
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return json.dumps(
        {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}
    ).encode()


def _zipkin_json(trace: str, service: str) -> bytes:
    span = {
        "traceId": trace,
        "id": "00000000000000b1",
        "name": "get",
        "kind": "SERVER",
        "timestamp": NOW_US,
        "duration": 3,
        "localEndpoint": {"serviceName": service},
        "tags": {"http.path": "/x"},
    }
    return json.dumps([span]).encode()


@pytest.fixture
def stack(services: LocalStack, tmp_path: Path) -> Iterator[LocalStack]:
    # A short RED window: counters reach pipeline_counters (what status reads) sooner.
    with running_pipeline(services, tmp_path, red_window_seconds=2.0) as s:
        yield s


def test_encodings_by_header_misrouted_traces_and_bad_messages(stack: LocalStack) -> None:
    s = stack.settings
    partition_of = PARTITIONERS[s.ingest_partitioner]
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap, "acks": "all"})
    def trace_off(*busy: int) -> str:
        """A trace id whose partition (and the next one) avoids ``busy``: partition 0 gets
        only the undecodable messages, whose counts must still be published."""
        while True:
            trace = uuid.uuid4().hex
            p = partition_of(bytes.fromhex(trace), s.partitions)
            if p not in busy and (p + 1) % s.partitions not in busy:
                return trace

    home: dict[str, int] = {}
    for name, encode in (("otlp_json", _otlp_json), ("zipkin_json", _zipkin_json)):
        trace = trace_off(0)
        home[name] = partition_of(bytes.fromhex(trace), s.partitions)
        producer.produce(
            s.topics.raw_spans,
            encode(trace, f"svc-{name}"),
            partition=home[name],
            headers=[("encoding", name.encode())],
        )
        home[trace] = home.pop(name)
    # A trace on a partition its partitioner does not pick (round-robin producers do this).
    stray = trace_off(0)
    wrong = (partition_of(bytes.fromhex(stray), s.partitions) + 1) % s.partitions
    producer.produce(
        s.topics.raw_spans,
        _otlp_json(stray, "svc-stray"),
        partition=wrong,
        headers=[("encoding", b"otlp_json")],
    )
    producer.produce(
        s.topics.raw_spans, b"{truncated", partition=0, headers=[("encoding", b"otlp_json")]
    )
    producer.produce(s.topics.raw_spans, b"x", partition=0, headers=[("encoding", b"avro")])
    assert producer.flush(30) == 0

    rows = wait_for_trace_rows(s, [*home, stray], 3)
    by_service = {r[3]: r for r in rows}
    assert set(by_service) == {"svc-otlp_json", "svc-zipkin_json", "svc-stray"}
    assert by_service["svc-otlp_json"][8] == {"k": "7"}
    assert by_service["svc-zipkin_json"][5] == "Server"
    assert by_service["svc-zipkin_json"][8] == {"http.path": "/x"}

    report = wait_until(
        lambda: json.loads(run_cli(s, "status", "--json")),
        lambda r: (
            r["flow"]["misrouted_traces"] >= 1
            and r["flow"]["drops"].get("messages_rejected", {}).get("unknown_encoding", 0) >= 1
        ),
        timeout=60,
        interval=1,
    )
    assert report["flow"]["misrouted_traces"] == 1
    assert report["flow"]["drops"]["messages_rejected"] == {
        "malformed_otlp_json": 1,
        "unknown_encoding": 1,
    }
    assert sum(report["dlq"][s.topics.streams_dlq].values()) == 2
    text = run_cli(s, "status")
    assert "Traces split over partitions (all time): 1" in text
    assert f"ingest_partitioner={s.ingest_partitioner}" in text

"""Kafka unavailable: clients get retryable errors and nothing is acknowledged unwritten.

Uses its own Tansu broker (not the session's) so it can be killed and restarted.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from confluent_kafka import Consumer, TopicPartition
from opentelemetry.proto.trace.v1 import trace_pb2

from core.settings import Settings, Topics
from core.topics import ensure_topics
from deploy.local.broker import start_broker
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from ingest.grpc_receiver import SERVICE
from tests.integration.ingest_helpers import metric, post, scrape
from tracehouse.demo_traces import make_request

PROTOBUF = "application/x-protobuf"


def _span_ids(body: bytes) -> set[bytes]:
    data = trace_pb2.TracesData.FromString(body)
    return {s.span_id for rs in data.resource_spans for ss in rs.scope_spans for s in ss.spans}


def _topic_span_ids(settings: Settings) -> set[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"check-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign(
            [TopicPartition(settings.topics.raw_spans, p, 0) for p in range(settings.partitions)]
        )
        seen: set[bytes] = set()
        idle_until = time.monotonic() + 3
        while time.monotonic() < idle_until:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            seen |= _span_ids(msg.value() or b"")
            idle_until = time.monotonic() + 1.5
        return seen
    finally:
        consumer.close()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[Settings, list[subprocess.Popen[bytes]]]]:
    port = free_port()
    procs = [start_broker(port)]
    tag = uuid.uuid4().hex[:6]
    settings = Settings(
        kafka_bootstrap=f"127.0.0.1:{port}",
        topics=Topics(raw_spans=f"otlp_spans_{tag}"),
        partitions=2,
        ingest_http_port=free_port(),
        ingest_grpc_port=free_port(),
        ingest_zipkin_port=0,
        ingest_jaeger_enabled=False,
        ingest_kafka_timeout_ms=3000,
        ingest_retry_after_seconds=1,
    )
    try:
        yield settings, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_kafka_down_gives_retryable_errors_and_no_false_acks(
    own_broker: tuple[Settings, list[subprocess.Popen[bytes]]],
    tmp_path: Path,
) -> None:
    settings, procs = own_broker
    ensure_topics(settings)
    stack = LocalStack(settings, tmp_path, say=lambda _m: None)
    url = f"http://127.0.0.1:{settings.ingest_http_port}/v1/traces"
    try:
        stack.start_component("ingest", f"http://127.0.0.1:{settings.ingest_http_port}/health")
        acked: set[bytes] = set()
        for seed in range(3):
            body = make_request(traces=10, seed=seed).SerializeToString()
            assert post(url, body, PROTOBUF)[0] == 200
            acked |= _span_ids(body)
        assert acked <= _topic_span_ids(settings)  # every acknowledged span is in Kafka

        procs[0].kill()
        procs[0].wait()
        body = make_request(traces=10, seed=50).SerializeToString()
        started = time.monotonic()
        status, headers, _ = post(url, body, PROTOBUF)
        assert status == 503 and headers["Retry-After"] == "1"
        assert time.monotonic() - started < 15
        with grpc.insecure_channel(f"127.0.0.1:{settings.ingest_grpc_port}") as channel:
            export = channel.unary_unary(f"/{SERVICE}/Export")
            with pytest.raises(grpc.RpcError) as info:
                export(body, timeout=20)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE

        m = scrape(settings.ingest_http_port)
        assert metric(m, "tracehouse_ingest_spans_accepted_total", protocol="otlp_http") == 150
        assert (
            metric(
                m,
                "tracehouse_ingest_spans_rejected_total",
                protocol="otlp_http",
                reason="kafka_unavailable",
            )
            == 50
        )
        assert (
            metric(
                m,
                "tracehouse_ingest_requests_total",
                protocol="otlp_grpc",
                outcome="kafka_unavailable",
            )
            == 1
        )

        # A fresh broker on the same address: ingest recovers without a restart, and again
        # only what was acknowledged is (and must be) in Kafka.
        port = int(settings.kafka_bootstrap.rsplit(":", 1)[1])
        procs.append(start_broker(port))
        ensure_topics(settings)
        deadline = time.monotonic() + 40
        body = make_request(traces=10, seed=60).SerializeToString()
        while True:
            status = post(url, body, PROTOBUF)[0]
            if status == 200 or time.monotonic() > deadline:
                break
            assert status == 503
            time.sleep(1)
        assert status == 200
        assert _span_ids(body) <= _topic_span_ids(settings)
    finally:
        stack.stop()

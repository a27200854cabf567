"""Every way into tracehouse lands in ClickHouse: OTel SDK over gRPC, over OTLP/HTTP protobuf
(gzip) and OTLP/JSON, a Zipkin v2 post, and a producer writing OTLP straight to Kafka."""

from __future__ import annotations

import json
import random
import uuid

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from core.partitioning import partition_for_key
from core.settings import Settings
from deploy.local.stack import LocalStack
from tests.integration.ingest_helpers import (
    gzipped,
    metric,
    otlp_json_request,
    post,
    scrape,
    wait_for_trace_rows,
)
from tracehouse.demo_traces import make_request


def _emit(exporter: SpanExporter | None, service: str) -> list[ReadableSpan]:
    """A 3-span trace from a real SDK; returns the spans as the SDK finished them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.ingest")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.response.status_code", 200)
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as db:
            db.set_status(Status(StatusCode.ERROR, "timeout"))
            db.add_event("retry", {"attempt": 2})
        with tracer.start_as_current_span("render"):
            trace.get_current_span().set_attribute("template", "cart.html")
    provider.shutdown()
    return list(memory.get_finished_spans())


def _assert_landed(settings: Settings, spans: list[ReadableSpan], service: str) -> None:
    trace_id = format(spans[0].context.trace_id, "032x")
    rows = wait_for_trace_rows(settings, [trace_id], len(spans))
    assert len(rows) == len(spans)
    by_name = {r[4]: r for r in rows}
    assert set(by_name) == {"GET /cart", "SELECT", "render"}
    assert {r[3] for r in rows} == {service}
    assert by_name["GET /cart"][5] == "Server" and by_name["SELECT"][5] == "Client"
    assert by_name["SELECT"][6] == "Error" and by_name["SELECT"][7] == "timeout"
    assert by_name["SELECT"][9] == ["retry"]
    assert by_name["render"][8] == {"template": "cart.html"}
    assert by_name["SELECT"][2] == by_name["GET /cart"][1]
    assert {r[1] for r in rows} == {format(s.context.span_id, "016x") for s in spans}


def test_sdk_over_grpc_lands(pipeline: LocalStack) -> None:
    s = pipeline.settings
    exporter = GrpcExporter(endpoint=f"127.0.0.1:{s.ingest_grpc_port}", insecure=True)
    spans = _emit(exporter, "grpc-svc")
    _assert_landed(s, spans, "grpc-svc")
    assert (
        metric(
            scrape(s.ingest_http_port),
            "tracehouse_ingest_spans_accepted_total",
            protocol="otlp_grpc",
        )
        == 3
    )


def test_sdk_over_http_protobuf_gzip_and_json_land(pipeline: LocalStack) -> None:
    s = pipeline.settings
    endpoint = f"http://127.0.0.1:{s.ingest_http_port}/v1/traces"
    proto_spans = _emit(HttpExporter(endpoint=endpoint, compression=Compression.Gzip), "proto-svc")

    json_spans = _emit(None, "json-svc")
    status, headers, body = post(
        endpoint,
        gzipped(otlp_json_request(json_spans)),
        "application/json",
        {"Content-Encoding": "gzip"},
    )
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {}

    _assert_landed(s, proto_spans, "proto-svc")
    _assert_landed(s, json_spans, "json-svc")


def test_zipkin_post_lands(pipeline: LocalStack) -> None:
    s = pipeline.settings
    trace_id = uuid.uuid4().hex
    client = {
        "traceId": trace_id,
        "id": "1000000000000001",
        "name": "get /api",
        "kind": "CLIENT",
        "timestamp": 1_700_000_000_000_000,
        "duration": 5_000,
        "localEndpoint": {"serviceName": "web"},
        "remoteEndpoint": {"serviceName": "api"},
        "tags": {"http.path": "/api", "error": "502"},
        "annotations": [{"timestamp": 1_700_000_000_001_000, "value": "wire.send"}],
    }
    server = {
        "traceId": trace_id,
        "id": "1000000000000001",
        "name": "get /api",
        "kind": "SERVER",
        "shared": True,
        "timestamp": 1_700_000_000_001_000,
        "duration": 3_000,
        "localEndpoint": {"serviceName": "api"},
    }
    status, _, _ = post(
        f"http://127.0.0.1:{s.ingest_zipkin_port}/api/v2/spans",
        json.dumps([client, server]).encode(),
        "application/json",
    )
    assert status == 202
    rows = wait_for_trace_rows(s, [trace_id], 2)
    by_kind = {r[5]: r for r in rows}
    assert by_kind["Client"][3] == "web" and by_kind["Server"][3] == "api"
    assert by_kind["Client"][6] == "Error" and by_kind["Client"][7] == "502"
    assert by_kind["Client"][8] == {"http.path": "/api", "peer.service": "api"}
    assert by_kind["Client"][9] == ["wire.send"]
    # The shared server span keeps its own row, parented to the client span.
    assert by_kind["Server"][2] == "1000000000000001" != by_kind["Server"][1]
    assert (
        metric(
            scrape(s.ingest_http_port), "tracehouse_ingest_spans_accepted_total", protocol="zipkin"
        )
        == 2
    )


def test_librdkafka_murmur2_random_agrees_with_ingest(pipeline_settings: Settings) -> None:
    """Kafka keyed by raw trace id with partitioner murmur2_random == partition_for_key."""
    s = pipeline_settings
    topic, partitions = f"partition_check_{uuid.uuid4().hex[:8]}", 7
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    producer = Producer(
        {"bootstrap.servers": s.kafka_bootstrap, "partitioner": "murmur2_random", "linger.ms": 20}
    )
    rng = random.Random(11)
    mismatches: list[tuple[bytes, int, int]] = []
    delivered: list[int] = []

    def report(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        key, partition = msg.key(), msg.partition()
        assert isinstance(key, bytes) and partition is not None
        delivered.append(partition)
        if partition != partition_for_key(key, partitions):
            mismatches.append((key, partition, partition_for_key(key, partitions)))

    for _ in range(2000):
        producer.produce(topic, b"x", key=rng.randbytes(16), on_delivery=report)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert len(delivered) == 2000 and set(delivered) == set(range(partitions))
    assert mismatches == []


def test_direct_kafka_publish_lands(pipeline: LocalStack) -> None:
    """A high-volume producer writes OTLP TracesData straight to the raw topic, keyed by the
    16 raw trace-id bytes with librdkafka's murmur2_random (see ingest/README.md)."""
    s = pipeline.settings
    request = make_request(traces=30, seed=99)
    producer = Producer(
        {
            "bootstrap.servers": s.kafka_bootstrap,
            "partitioner": "murmur2_random",
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": "lz4",
        }
    )
    trace_ids: list[str] = []
    sent = 0
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            by_trace: dict[bytes, list] = {}
            for span in ss.spans:
                by_trace.setdefault(span.trace_id, []).append(span)
            for tid, spans in by_trace.items():
                msg = type(request)()
                out_rs = msg.resource_spans.add()
                out_rs.resource.CopyFrom(rs.resource)
                out_ss = out_rs.scope_spans.add()
                out_ss.scope.CopyFrom(ss.scope)
                out_ss.spans.extend(spans)
                producer.produce(s.topics.raw_spans, msg.SerializeToString(), key=tid)
                trace_ids.append(tid.hex())
                sent += len(spans)
    assert producer.flush(30) == 0
    rows = wait_for_trace_rows(s, sorted(set(trace_ids)), sent)
    assert len(rows) == sent == 150
    assert len({(r[0], r[1]) for r in rows}) == 150

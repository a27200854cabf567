"""The Jaeger Thrift HTTP receiver (``POST /api/traces``): media types, gzip, tenancy, partial
answers and counters, through a real aiohttp server (Kafka is the recording stand-in)."""

from __future__ import annotations

import asyncio
import gzip
import json

from aiohttp.test_utils import TestClient, TestServer
from jaeger_client.thrift_gen.jaeger import ttypes as J
from opentelemetry.proto.trace.v1 import trace_pb2
from prometheus_client import REGISTRY
from thrift.protocol import TBinaryProtocol
from thrift.transport import TTransport

from core.tenancy import TenantConfig
from ingest.admission import AdmissionConfig, SpanAdmission
from ingest.jaeger_http import PROTOCOL, build_jaeger_http_app
from tests.recording_publisher import RecordingPublisher

THRIFT = {"Content-Type": "application/x-thrift"}


def body(*spans: object) -> bytes:
    buf = TTransport.TMemoryBuffer()
    J.Batch(process=J.Process(serviceName="svc"), spans=list(spans)).write(
        TBinaryProtocol.TBinaryProtocol(buf)
    )
    return bytes(buf.getvalue())


def span(span_id: int, start: int = 1_700_000_000_000_000) -> object:
    return J.Span(
        traceIdLow=7,
        traceIdHigh=9,
        spanId=span_id,
        parentSpanId=0,
        operationName="op",
        flags=1,
        startTime=start,
        duration=3,
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def app_with(publisher: RecordingPublisher, tenants: TenantConfig | None = None) -> object:
    admission = SpanAdmission(
        publisher,  # type: ignore[arg-type]
        AdmissionConfig(topic="t", partitions=2),
        tenants,
    )
    return build_jaeger_http_app(admission, 1 << 20)


async def server(app: object) -> TestServer:
    """Started as ingest/server.py runs it: aiohttp must not inflate gzip itself (ingest does,
    within the size limit). TestServer passes runner options only through start_server."""
    srv = TestServer(app)  # type: ignore[arg-type]
    await srv.start_server(auto_decompress=False)
    return srv


def test_answers_and_counts() -> None:
    publisher = RecordingPublisher()

    async def go() -> None:
        async with TestClient(await server(app_with(publisher))) as client:
            resp = await client.post("/api/traces", data=body(span(1)), headers=THRIFT)
            assert resp.status == 202 and await resp.read() == b""
            zipped = gzip.compress(body(span(2)))
            resp = await client.post(
                "/api/traces", data=zipped, headers={**THRIFT, "Content-Encoding": "gzip"}
            )
            assert resp.status == 202
            late = span(3, start=2**62)
            resp = await client.post("/api/traces", data=body(span(4), late), headers=THRIFT)
            assert resp.status == 202
            assert await resp.json() == {
                "rejectedSpans": 1,
                "errorMessage": "rejected spans: 1 time_out_of_range",
            }
            before = sample(
                "tracehouse_ingest_requests_total", protocol=PROTOCOL, outcome="unsupported_media"
            )
            resp = await client.post("/api/traces", data=body(span(5)))
            assert resp.status == 415
            after = sample(
                "tracehouse_ingest_requests_total", protocol=PROTOCOL, outcome="unsupported_media"
            )
            assert after == before + 1
            resp = await client.post("/api/traces", data=b"\x0c\x00", headers=THRIFT)
            assert resp.status == 400
            assert json.loads(await resp.read())["message"].startswith("not a Jaeger Thrift")

    asyncio.run(go())
    stored = [
        s.span_id
        for value in publisher.values
        for rs in trace_pb2.TracesData.FromString(value).resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    assert sorted(stored) == [i.to_bytes(8, "big") for i in (1, 2, 4)]


def test_tenancy_applies_to_jaeger_http() -> None:
    publisher = RecordingPublisher()
    tenants = TenantConfig(tokens={"secret": "acme"})

    async def go() -> None:
        async with TestClient(await server(app_with(publisher, tenants))) as client:
            resp = await client.post("/api/traces", data=body(span(1)), headers=THRIFT)
            assert resp.status == 401
            auth = {**THRIFT, "Authorization": "Bearer secret"}
            resp = await client.post("/api/traces", data=body(span(1)), headers=auth)
            assert resp.status == 202

    asyncio.run(go())
    (value,) = publisher.values
    (rs,) = trace_pb2.TracesData.FromString(value).resource_spans
    attrs = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
    assert attrs == {"service.name": "svc", "tracehouse.tenant": "acme"}

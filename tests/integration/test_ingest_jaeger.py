"""Real Jaeger clients land every field: Python ``jaeger-client`` (PyPI) over UDP 6831 (Thrift
compact), Node ``jaeger-client`` (npm) over its HTTP sender (Thrift binary to ``/api/traces``)
and its UDP sender (Thrift binary, 6832), and a gRPC ``CollectorService/PostSpans`` call over a
real grpc channel. Each client is told exactly what to send (tags of every type it supports,
logs, references, process tags, an error span, 128- and 64-bit trace ids); the test reads the
rows back from ClickHouse and compares every column with that, translated as the OTel
Collector's jaeger receiver does (ingest/jaeger_otlp.py). Bad input is answered and counted.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import opentracing
import pytest
from jaeger_client import Config

from core.settings import Settings
from deploy.local.stack import LocalStack
from ingest.jaeger_proto import SERVICE, message_class
from tests.conftest import running_pipeline
from tests.integration.helpers import wait_until
from tests.integration.ingest_helpers import ch_rows, metric, post, scrape

CLIENTS = Path(__file__).resolve().parents[1] / "clients"

COLUMNS = (
    "TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,"
    " ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes,"
    " toUnixTimestamp64Nano(Timestamp), Duration, StatusCode, StatusMessage,"
    " arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`), `Events.Name`,"
    " `Events.Attributes`, `Links.TraceId`, `Links.SpanId`, `Links.TraceState`,"
    " `Links.Attributes`, TenantId"
)
NAMES = [
    "trace_id",
    "span_id",
    "parent",
    "trace_state",
    "name",
    "kind",
    "service",
    "resource",
    "scope",
    "scope_version",
    "attrs",
    "start_ns",
    "duration_ns",
    "status",
    "status_message",
    "event_times",
    "event_names",
    "event_attrs",
    "link_traces",
    "link_spans",
    "link_states",
    "link_attrs",
    "tenant",
]


@pytest.fixture(scope="module")
def stack(services: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_pipeline(services, tmp_path_factory.mktemp("jaeger")) as running:
        yield running


def stored(settings: Settings, trace_ids: set[str], count: int) -> dict[str, dict[str, Any]]:
    """The stored rows of these traces, by span id, once ``count`` rows are there."""
    sql = f"SELECT {COLUMNS} FROM otel_traces WHERE TraceId IN {{t:Array(String)}}"
    rows = wait_until(
        lambda: ch_rows(settings, sql, t=sorted(trace_ids)),
        lambda found: len(found) >= count,
        timeout=60,
    )
    assert len(rows) == count, rows
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        record = dict(zip(NAMES, row, strict=True))
        record["events"] = list(
            zip(
                record.pop("event_times"),
                record.pop("event_names"),
                record.pop("event_attrs"),
                strict=True,
            )
        )
        record["links"] = list(
            zip(
                record.pop("link_traces"),
                record.pop("link_spans"),
                record.pop("link_states"),
                record.pop("link_attrs"),
                strict=True,
            )
        )
        out[record["span_id"]] = record
    return out


def row(
    trace_id: str,
    span_id: str,
    parent: str,
    name: str,
    service: str,
    start_ns: int,
    end_ns: int,
    *,
    kind: str = "Unspecified",
    attrs: dict[str, str] | None = None,
    status: str = "Unset",
    status_message: str = "",
    events: list[tuple[int, str, dict[str, str]]] | None = None,
    links: list[tuple[str, str, str, dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """An expected row (resource attributes compared separately: clients add their own)."""
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent": parent,
        "trace_state": "",
        "name": name,
        "kind": kind,
        "service": service,
        "scope": "",
        "scope_version": "",
        "attrs": attrs or {},
        "start_ns": start_ns,
        "duration_ns": end_ns - start_ns,
        "status": status,
        "status_message": status_message,
        "events": events or [],
        "links": links or [],
        "tenant": "",
    }


def assert_rows(found: dict[str, dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert set(found) == {e["span_id"] for e in expected}
    for e in expected:
        got = {k: v for k, v in found[e["span_id"]].items() if k != "resource"}
        assert got == e, e["name"]


def follows(trace_id: str, span_id: str) -> tuple[str, str, str, dict[str, str]]:
    return (trace_id, span_id, "", {"opentracing.ref_type": "follows_from"})


# --- Python jaeger-client, UDP compact -----------------------------------------------------

PY_PROCESS_TAGS = {"proc.str": "p", "proc.long": 42, "proc.bool": True, "proc.double": 0.25}


def _py_tracer(port: int, service: str, wide_ids: bool) -> Any:
    config = Config(
        config={
            "sampler": {"type": "const", "param": 1},
            "local_agent": {"reporting_host": "127.0.0.1", "reporting_port": port},
            "generate_128bit_trace_id": wide_ids,
            "tags": PY_PROCESS_TAGS,
            "reporter_flush_interval": 0.1,
        },
        service_name=service,
        validate=True,
    )
    return config.new_tracer()


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def test_python_jaeger_client_over_udp_compact(
    stack: LocalStack, main_thread_event_loop: object
) -> None:
    s = stack.settings
    t0 = float(int(time.time()) - 60)  # whole seconds: every offset below is exact in floats
    ns = int(t0) * 1_000_000_000
    service, service64 = f"py-jaeger-{uuid.uuid4().hex[:6]}", f"py-jaeger64-{uuid.uuid4().hex[:6]}"
    tracer = _py_tracer(s.ingest_jaeger_compact_port, service, wide_ids=True)
    root = tracer.start_span(
        "GET /order",
        start_time=t0,
        tags={
            "span.kind": "server",
            "http.method": "GET",
            "order.items": 3,
            "order.total": 19.5,
            "cache.hit": False,
            "http.status_code": 200,
        },
    )
    root.log_kv({"event": "order.received", "order.id": "A-1", "attempt": 1}, t0 + 0.125)
    db = tracer.start_span(
        "SELECT orders",
        child_of=root,
        start_time=t0 + 0.25,
        tags={"span.kind": "client", "error": True, "otel.status_description": "timeout"},
    )
    db.finish(t0 + 0.5)
    publish = tracer.start_span(
        "publish", references=[opentracing.follows_from(root.context)], start_time=t0 + 0.5
    )
    publish.finish(t0 + 0.625)
    merge = tracer.start_span(
        "merge",
        references=[
            opentracing.child_of(db.context),
            opentracing.follows_from(publish.context),
        ],
        start_time=t0 + 0.75,
        tags={"span.kind": "internal"},
    )
    merge.finish(t0 + 0.875)
    root.finish(t0 + 1)
    tracer64 = _py_tracer(s.ingest_jaeger_compact_port, service64, wide_ids=False)
    tick = tracer64.start_span("tick", start_time=t0, tags={"span.kind": "producer"})
    tick.finish(t0 + 0.5)
    # close() flushes on the client's own IO-loop thread; its future is done once sent.
    for flushed in [t.close() for t in (tracer, tracer64)]:
        wait_until(flushed.done, bool, timeout=10)

    tid = _hex(root.context.trace_id, 32)
    assert root.context.trace_id >> 64, "128-bit trace id expected"
    tid64 = _hex(tick.context.trace_id, 32)
    assert tid64.startswith("0" * 16)
    sid = {sp.operation_name: _hex(sp.context.span_id, 16) for sp in (root, db, publish, merge)}
    sampler = {"sampler.type": "const", "sampler.param": "true"}
    expected = [
        row(
            tid,
            sid["GET /order"],
            "",
            "GET /order",
            service,
            ns,
            ns + 1_000_000_000,
            kind="Server",
            attrs={
                "http.method": "GET",
                "order.items": "3",
                "order.total": "19.5",
                "cache.hit": "false",
                "http.status_code": "200",
                **sampler,
            },
            events=[(ns + 125_000_000, "order.received", {"order.id": "A-1", "attempt": "1"})],
        ),
        row(
            tid,
            sid["SELECT orders"],
            sid["GET /order"],
            "SELECT orders",
            service,
            ns + 250_000_000,
            ns + 500_000_000,
            kind="Client",
            status="Error",
            status_message="timeout",
        ),
        row(
            tid,
            sid["publish"],
            sid["GET /order"],
            "publish",
            service,
            ns + 500_000_000,
            ns + 625_000_000,
            links=[follows(tid, sid["GET /order"])],
        ),
        row(
            tid,
            sid["merge"],
            sid["SELECT orders"],
            "merge",
            service,
            ns + 750_000_000,
            ns + 875_000_000,
            kind="Internal",
            links=[follows(tid, sid["publish"])],
        ),
        row(
            tid64,
            _hex(tick.context.span_id, 16),
            "",
            "tick",
            service64,
            ns,
            ns + 500_000_000,
            kind="Producer",
            attrs=sampler,
        ),
    ]
    found = stored(s, {tid, tid64}, len(expected))
    assert_rows(found, expected)
    told = {"proc.str": "p", "proc.long": "42", "proc.bool": "true", "proc.double": "0.25"}
    for record in found.values():
        resource = dict(record["resource"])
        ip = resource.pop("ip")
        socket.inet_aton(ip)  # the client's own process tag: an IPv4 address
        assert resource == {
            "service.name": record["service"],
            **told,
            "host.name": socket.gethostname(),
            "opencensus.exporterversion": "Jaeger-Python-4.8.0",
        }
    assert (
        metric(
            scrape(s.ingest_http_port),
            "tracehouse_ingest_spans_accepted_total",
            protocol="jaeger_udp_compact",
        )
        >= 5
    )


# --- Node jaeger-client, HTTP sender and UDP sender (Thrift binary) ------------------------


def _node_spec(sender: str, settings: Settings, service: str, wide: bool, t0_ms: int) -> dict:
    target = (
        {"endpoint": f"http://127.0.0.1:{settings.ingest_jaeger_http_port}/api/traces"}
        if sender == "http"
        else {"port": settings.ingest_jaeger_binary_port}
    )
    blob = base64.b64encode(b"\x00\x01\xfe\xff jaeger").decode()
    return {
        "sender": sender,
        **target,
        "service": service,
        "traceId128bit": wide,
        "processTags": {"proc.str": "node", "proc.num": 7.5, "proc.flag": False},
        "spans": [
            {
                "name": "GET /cart",
                "parent": None,
                "followsFrom": [],
                "startMs": t0_ms,
                "endMs": t0_ms + 40,
                "tags": {
                    "span.kind": {"type": "string", "value": "server"},
                    "http.url": {"type": "string", "value": "/cart?x=1"},
                    "ratio": {"type": "double", "value": 0.75},
                    "whole": {"type": "double", "value": 12},
                    "cached": {"type": "bool", "value": True},
                    "blob": {"type": "binary", "value": blob},
                },
                "logs": [
                    {
                        "timeMs": t0_ms + 5,
                        "fields": {
                            "event": {"type": "string", "value": "cart.loaded"},
                            "items": {"type": "double", "value": 3},
                            "raw": {"type": "binary", "value": blob},
                        },
                    }
                ],
            },
            {
                "name": "redis GET",
                "parent": 0,
                "followsFrom": [],
                "startMs": t0_ms + 10,
                "endMs": t0_ms + 20,
                "tags": {
                    "span.kind": {"type": "string", "value": "client"},
                    "error": {"type": "bool", "value": True},
                },
                "logs": [
                    {
                        "timeMs": t0_ms + 19,
                        "fields": {"message": {"type": "string", "value": "connection reset"}},
                    }
                ],
            },
            {
                "name": "audit",
                "parent": 0,
                "followsFrom": [1],
                "startMs": t0_ms + 25,
                "endMs": t0_ms + 30,
                "tags": {"otel.status_code": {"type": "string", "value": "OK"}},
                "logs": [],
            },
        ],
    }


def _run_node(spec: dict) -> list[dict[str, str]]:
    assert shutil.which("node"), "node not found: `make system-deps` installs Node.js"
    assert (CLIENTS / "node_modules" / "jaeger-client").is_dir(), (
        "npm's jaeger-client is missing: `make setup` installs tests/clients"
    )
    done = subprocess.run(
        ["node", str(CLIENTS / "jaeger_node_client.js"), json.dumps(spec)],
        cwd=CLIENTS,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NODE_PATH": str(CLIENTS / "node_modules")},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "jaeger-client:" not in done.stderr, done.stderr  # the sender reported an error
    ids: list[dict[str, str]] = json.loads(done.stdout)
    return ids


def _node_expected(spec: dict, ids: list[dict[str, str]]) -> list[dict[str, Any]]:
    blob = spec["spans"][0]["tags"]["blob"]["value"]  # binary values are stored as base64
    service = spec["service"]
    tid = ids[0]["traceId"]
    sid = [i["spanId"] for i in ids]
    ms = 1_000_000
    t0 = spec["spans"][0]["startMs"] * ms
    return [
        row(
            tid,
            sid[0],
            "",
            "GET /cart",
            service,
            t0,
            t0 + 40 * ms,
            kind="Server",
            attrs={
                "http.url": "/cart?x=1",
                "ratio": "0.75",
                "whole": "12",
                "cached": "true",
                "blob": blob,
                "sampler.type": "const",
                "sampler.param": "true",
            },
            events=[(t0 + 5 * ms, "cart.loaded", {"items": "3", "raw": blob})],
        ),
        row(
            tid,
            sid[1],
            sid[0],
            "redis GET",
            service,
            t0 + 10 * ms,
            t0 + 20 * ms,
            kind="Client",
            status="Error",
            events=[(t0 + 19 * ms, "", {"message": "connection reset"})],
        ),
        row(
            tid,
            sid[2],
            sid[0],
            "audit",
            service,
            t0 + 25 * ms,
            t0 + 30 * ms,
            status="Ok",
            links=[follows(tid, sid[1])],
        ),
    ]


@pytest.mark.parametrize(("sender", "wide"), [("http", True), ("udp", False)])
def test_node_jaeger_client(stack: LocalStack, sender: str, wide: bool) -> None:
    s = stack.settings
    service = f"node-{sender}-{uuid.uuid4().hex[:6]}"
    spec = _node_spec(sender, s, service, wide, (int(time.time()) - 60) * 1000)
    ids = _run_node(spec)
    tid = ids[0]["traceId"]
    assert tid.startswith("0" * 16) != wide, tid  # 128-bit ids only when asked for
    found = stored(s, {tid}, 3)
    assert_rows(found, _node_expected(spec, ids))
    for record in found.values():
        resource = dict(record["resource"])
        uuid.UUID(resource.pop("client-uuid"))
        socket.inet_aton(resource.pop("ip"))
        assert resource == {
            "service.name": service,
            "proc.str": "node",
            "proc.num": "7.5",
            "proc.flag": "false",
            "host.name": socket.gethostname(),
            "opencensus.exporterversion": "Jaeger-Node-3.19.0",
        }
    protocol = "jaeger_thrift_http" if sender == "http" else "jaeger_udp_binary"
    accepted = metric(
        scrape(s.ingest_http_port), "tracehouse_ingest_spans_accepted_total", protocol=protocol
    )
    assert accepted >= 3


# --- gRPC PostSpans ------------------------------------------------------------------------


def _kv(key: str, **value: Any) -> Any:
    return message_class("KeyValue")(key=key, **value)


def test_grpc_post_spans(stack: LocalStack) -> None:
    s = stack.settings
    request_cls = message_class("PostSpansRequest")
    trace_id = uuid.uuid4().bytes
    trace64 = bytes(8) + uuid.uuid4().bytes[:8]
    root_id, child_id, other_id = os.urandom(8), os.urandom(8), os.urandom(8)
    t0 = (int(time.time()) - 60) * 1_000_000_000
    request = request_cls()
    batch = request.batch
    batch.process.service_name = f"grpc-jaeger-{uuid.uuid4().hex[:6]}"
    batch.process.tags.extend(
        [_kv("hostname", v_str="box-1"), _kv("region.id", v_type=2, v_int64=-9)]
    )

    def add(span_trace: bytes, span_id: bytes, name: str, offset_ms: int) -> Any:
        span = batch.spans.add(trace_id=span_trace, span_id=span_id, operation_name=name, flags=1)
        start = t0 + offset_ms * 1_000_000
        span.start_time.seconds, span.start_time.nanos = divmod(start, 1_000_000_000)
        span.duration.nanos = 1_500_123  # nanosecond precision survives the gRPC path
        return span

    root = add(trace_id, root_id, "root", 0)
    root.tags.extend(
        [
            _kv("span.kind", v_str="server"),
            _kv("s", v_str="text"),
            _kv("b", v_type=1, v_bool=True),
            _kv("i", v_type=2, v_int64=-(2**63)),
            _kv("f", v_type=3, v_float64=2.5),
            _kv("x", v_type=4, v_binary=b"\xff\x00"),
            _kv("otel.scope.name", v_str="my.lib"),
            _kv("otel.scope.version", v_str="1.2.3"),
            _kv("w3c.tracestate", v_str="vendor=x"),
        ]
    )
    log = root.logs.add()
    log.timestamp.seconds, log.timestamp.nanos = divmod(t0 + 7, 1_000_000_000)
    log.fields.extend([_kv("event", v_str="cache.miss"), _kv("key", v_str="k1")])
    child = add(trace_id, child_id, "child", 1)
    child.references.add(trace_id=trace_id, span_id=root_id, ref_type=0)
    child.references.add(trace_id=trace64, span_id=other_id, ref_type=0)
    child.tags.extend([_kv("error", v_type=1, v_bool=True), _kv("span.kind", v_str="consumer")])
    other = add(trace64, other_id, "other-trace", 2)
    other.tags.append(_kv("http.status_code", v_type=2, v_int64=503))
    late = add(trace_id, os.urandom(8), "too late", 3)
    late.start_time.seconds = 2**62  # beyond DateTime64(9): refused with a reason
    with grpc.insecure_channel(f"127.0.0.1:{s.ingest_jaeger_grpc_port}") as channel:
        call = channel.unary_unary(
            f"/{SERVICE}/PostSpans",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message_class("PostSpansResponse").FromString,
        )
        _, info = call.with_call(request, timeout=30)
        trailers = dict(info.trailing_metadata() or ())
        assert trailers["jaeger-rejected-spans"] == "1; rejected spans: 1 time_out_of_range"
        with pytest.raises(grpc.RpcError) as bad:
            channel.unary_unary(f"/{SERVICE}/PostSpans")(b"\x0a\xff\xff", timeout=30)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    service = batch.process.service_name
    tid, tid64 = trace_id.hex(), trace64.hex()
    ms = 1_000_000
    duration = 1_500_123
    root_row = row(
        tid,
        root_id.hex(),
        "",
        "root",
        service,
        t0,
        t0 + duration,
        kind="Server",
        attrs={"s": "text", "b": "true", "i": str(-(2**63)), "f": "2.5", "x": "/wA="},
        events=[(t0 + 7, "cache.miss", {"key": "k1"})],
    )
    root_row.update(scope="my.lib", scope_version="1.2.3", trace_state="vendor=x")
    expected = [
        root_row,
        row(
            tid,
            child_id.hex(),
            root_id.hex(),
            "child",
            service,
            t0 + ms,
            t0 + ms + duration,
            kind="Consumer",
            status="Error",
            links=[(tid64, other_id.hex(), "", {"opentracing.ref_type": "child_of"})],
        ),
        row(
            tid64,
            other_id.hex(),
            "",
            "other-trace",
            service,
            t0 + 2 * ms,
            t0 + 2 * ms + duration,
            attrs={"http.status_code": "503"},
            status="Error",
        ),
    ]
    found = stored(s, {tid, tid64}, 3)
    assert_rows(found, expected)
    for record in found.values():
        assert record["resource"] == {
            "service.name": service,
            "host.name": "box-1",
            "region.id": "-9",
        }
    samples = scrape(s.ingest_http_port)
    rejected = metric(
        samples,
        "tracehouse_ingest_spans_rejected_total",
        protocol="jaeger_grpc",
        reason="time_out_of_range",
    )
    assert rejected == 1
    assert (
        metric(
            samples,
            "tracehouse_ingest_requests_total",
            protocol="jaeger_grpc",
            outcome="undecodable",
        )
        == 1
    )


# --- bad input: answered (HTTP) or counted (UDP), never silently taken ----------------------


def test_bad_jaeger_input_is_refused_and_counted(stack: LocalStack) -> None:
    s = stack.settings
    url = f"http://127.0.0.1:{s.ingest_jaeger_http_port}/api/traces"
    status, _, body = post(url, b"\x0c\x00\x01\x0b\x00\x01\x7f\xff\xff\xff", "application/x-thrift")
    assert status == 400 and b"truncated" in body
    status, _, _ = post(url, b"[]", "application/json")
    assert status == 415
    sent = {"invalid_thrift": 0, "too_large": 0}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for packet in (b"", b"\x82\x21\x01\x09emitBatch\x1c\xff", os.urandom(300)):
            udp.sendto(packet, ("127.0.0.1", s.ingest_jaeger_compact_port))
            sent["invalid_thrift"] += 1
        udp.sendto(bytes(65_001), ("127.0.0.1", s.ingest_jaeger_compact_port))
        sent["too_large"] += 1

    def counts() -> dict[str, float]:
        samples = scrape(s.ingest_http_port)
        return {
            outcome: metric(
                samples,
                "tracehouse_ingest_requests_total",
                protocol="jaeger_udp_compact",
                outcome=outcome,
            )
            for outcome in sent
        }

    assert wait_until(counts, lambda c: c == sent, timeout=10) == sent
    samples = scrape(s.ingest_http_port)
    assert (
        metric(
            samples,
            "tracehouse_ingest_requests_total",
            protocol="jaeger_thrift_http",
            outcome="invalid_thrift",
        )
        == 1
    )

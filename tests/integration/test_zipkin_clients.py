"""Real Zipkin clients against the whole pipeline: py_zipkin (PyPI) in each of its encodings and
zipkin-js (npm ``zipkin`` + ``zipkin-transport-http``) with its default v1 and its v2 encoder.

Each client is told to send one known two-service trace with fixed times; the test reads every
stored column of ``otel_traces`` and compares it with what the client was told to send. Both
clients use Zipkin's shared-span model (the callee joins or is handed the caller's context), so
the stored parent links also prove that trees stay whole.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from py_zipkin import Kind
from py_zipkin.encoding import Encoding
from py_zipkin.encoding.protobuf import zipkin_pb2
from py_zipkin.transport import SimpleHTTPTransport
from py_zipkin.util import ZipkinAttrs
from py_zipkin.zipkin import create_http_headers_for_new_span, zipkin_client_span, zipkin_span

from core.settings import Settings
from deploy.local.stack import LocalStack
from ingest.zipkin import shared_span_id
from tests.conftest import running_pipeline
from tests.integration.helpers import wait_until
from tests.integration.ingest_helpers import ch_rows, metric, post, scrape

REPO = Path(__file__).resolve().parents[2]
BASE_US = 1_700_000_000_000_000
BASE_S = BASE_US / 1_000_000  # py_zipkin takes float seconds: offsets used are binary-exact
COLUMNS = (
    "SpanId, ParentSpanId, Timestamp, TraceState, SpanName, SpanKind, ServiceName,"
    " ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode,"
    " StatusMessage, `Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`,"
    " TenantId"
)


@pytest.fixture(scope="module")
def stack(services: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_pipeline(services, tmp_path_factory.mktemp("zipkin-clients")) as s:
        yield s


def _rows(settings: Settings, trace_id: str, expected: int) -> dict[str, dict[str, Any]]:
    sql = f"SELECT {COLUMNS} FROM otel_traces WHERE TraceId = {{t:String}}"
    names = [c.strip().strip("`") for c in COLUMNS.split(",")]
    rows = wait_until(
        lambda: ch_rows(settings, sql, t=trace_id),
        lambda found: len(found) >= expected,
        timeout=60,
    )
    assert len(rows) == expected
    return {r[4] + "/" + r[5]: dict(zip(names, r, strict=True)) for r in rows}


def _ns(offset_us: int) -> int:
    return (BASE_US + offset_us) * 1000


def _row(
    span_id: str,
    parent: str,
    start_us: int,
    duration_us: int,
    service: str,
    resource: dict[str, str],
    attributes: dict[str, str],
    status: tuple[str, str] = ("Unset", ""),
    events: tuple[tuple[int, str], ...] = (),
) -> dict[str, Any]:
    """The stored row of a span the client was told to send (times as µs after BASE_US)."""
    return {
        "SpanId": span_id,
        "ParentSpanId": parent,
        "Timestamp_ns": _ns(start_us),
        "TraceState": "",
        "ServiceName": service,
        "ResourceAttributes": {"service.name": service, **resource},
        "ScopeName": "tracehouse.zipkin",
        "ScopeVersion": "",
        "SpanAttributes": attributes,
        "Duration": duration_us * 1000,
        "StatusCode": status[0],
        "StatusMessage": status[1],
        "Events.Timestamp_ns": [_ns(t) for t, _name in events],
        "Events.Name": [name for _t, name in events],
        "Events.Attributes": [{} for _e in events],
        "Links.TraceId": [],
        "TenantId": "",
    }


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("SpanName", "SpanKind", "Timestamp")}
    out["Timestamp_ns"] = _to_ns(row["Timestamp"])
    out["Events.Timestamp_ns"] = [_to_ns(t) for t in out.pop("Events.Timestamp")]
    return out


def _assert_columns(rows: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    """Every column of every span equals what the client was told to send."""
    assert sorted(rows) == sorted(expected)
    differences = [
        (span, column, got, expected[span][column])
        for span, row in rows.items()
        for column, got in _stored(row).items()
        if got != expected[span][column]
    ]
    assert differences == []


def _to_ns(value: Any) -> int:
    # clickhouse-connect returns naive datetimes (microseconds); our grid is microseconds too.
    from datetime import UTC

    return int(value.replace(tzinfo=UTC).timestamp() * 1_000_000) * 1000


def _attrs(span: zipkin_span) -> ZipkinAttrs:
    assert span.zipkin_attrs is not None
    return span.zipkin_attrs


def _span_id(span: zipkin_span) -> str:
    span_id = _attrs(span).span_id
    assert isinstance(span_id, str)
    return span_id


class RecordingTransport(SimpleHTTPTransport):
    """py_zipkin's HTTP transport, keeping a copy of every payload it posts."""

    def __init__(self, address: str, port: int) -> None:
        super().__init__(address, port)
        self.payloads: list[bytes] = []

    def send(self, payload: str | bytes) -> None:
        self.payloads.append(payload.encode() if isinstance(payload, str) else payload)
        super().send(payload)


def _sent_times(payloads: list[bytes], encoding: Encoding) -> dict[str, tuple[int, int]]:
    """(start µs, duration µs) by span id, as py_zipkin put them on the wire. py_zipkin times
    a local root span with its own clock (its timestamp/duration arguments apply to children
    only), so for those the test takes the client's values from what it sent."""
    times: dict[str, tuple[int, int]] = {}
    for payload in payloads:
        if encoding == Encoding.V2_PROTO3:
            spans = zipkin_pb2.ListOfSpans.FromString(payload).spans
            for p in spans:
                times[p.id.hex()] = (p.timestamp, p.duration)
            continue
        for span in json.loads(payload):
            if "timestamp" in span:
                times[span["id"]] = (span["timestamp"], span["duration"])
            else:  # v1 shared span: the server's own sr / ss annotations carry its times
                marks = {a["value"]: a["timestamp"] for a in span["annotations"]}
                times[span["id"]] = (marks["sr"], marks["ss"] - marks["sr"])
    return times


def _py_zipkin_trace(
    port: int, encoding: Encoding
) -> tuple[str, dict[str, str], dict[str, tuple[int, int]]]:
    """frontend root -> client span -> (B3 headers with a new span id) -> backend server,
    which py_zipkin reports as shared, -> a local child. Returns the trace id, the span ids
    and the times the spans were sent with."""
    transport = RecordingTransport("127.0.0.1", port)
    ids: dict[str, str] = {}
    errors: list[BaseException] = []

    def backend(headers: dict[str, str]) -> None:
        try:
            attrs = ZipkinAttrs(
                trace_id=headers["X-B3-TraceId"],
                span_id=headers["X-B3-SpanId"],
                parent_span_id=headers["X-B3-ParentSpanId"],
                flags=headers["X-B3-Flags"],
                is_sampled=headers["X-B3-Sampled"] == "1",
            )
            with zipkin_span(
                service_name="py-backend",
                span_name="get /price",
                zipkin_attrs=attrs,
                transport_handler=transport,
                encoding=encoding,
                kind=Kind.SERVER,
                host="10.0.0.2",
                port=8080,
                binary_annotations={"error": "sold out"},
            ) as server:
                ids["server"] = _span_id(server)
                with zipkin_span(
                    service_name="py-backend",
                    span_name="SELECT price",
                    host="10.0.0.2",
                    port=8080,
                    timestamp=BASE_S + 0.5,
                    duration=0.0625,
                    annotations={"cache.miss": BASE_S + 0.5625},
                ) as local:
                    ids["local"] = _span_id(local)
        except BaseException as exc:  # surfaced in the test thread
            errors.append(exc)

    with zipkin_span(
        service_name="py-frontend",
        span_name="GET /cart",
        transport_handler=transport,
        encoding=encoding,
        sample_rate=100.0,
        use_128bit_trace_id=True,
        kind=Kind.SERVER,
        host="10.0.0.1",
        port=80,
        binary_annotations={"http.path": "/cart"},
    ) as root:
        ids["root"] = _span_id(root)
        with zipkin_client_span(
            service_name="py-frontend",
            span_name="get /price",
            host="10.0.0.1",
            port=80,
            timestamp=BASE_S + 0.25,
            duration=0.5,
        ) as client:
            ids["client"] = _span_id(client)
            thread = threading.Thread(target=backend, args=(create_http_headers_for_new_span(),))
            thread.start()
            thread.join()
    assert not errors, errors
    return _attrs(root).trace_id, ids, _sent_times(transport.payloads, encoding)


Case = tuple[str, dict[str, dict[str, Any]]]  # trace id, expected row by "name/kind"


def _py_zipkin_case(port: int, encoding: Encoding) -> Case:
    trace_id, ids, sent = _py_zipkin_trace(port, encoding)
    # what the test told the client for children; the client's own clock for local roots
    assert sent[ids["client"]] == (BASE_US + 250_000, 500_000)
    assert sent[ids["local"]] == (BASE_US + 500_000, 62_500)
    root_at, root_took = sent[ids["root"]][0] - BASE_US, sent[ids["root"]][1]
    server_at, server_took = sent[ids["server"]][0] - BASE_US, sent[ids["server"]][1]
    server_id = shared_span_id(bytes.fromhex(ids["server"])).hex()
    front = {"host.ip": "10.0.0.1"}
    back = {"host.ip": "10.0.0.2"}
    expected = {
        "GET /cart/Server": _row(
            ids["root"],
            "",
            root_at,
            root_took,
            "py-frontend",
            front,
            {"http.path": "/cart", "network.local.port": "80"},
        ),
        "get /price/Client": _row(
            ids["client"],
            ids["root"],
            250_000,
            500_000,
            "py-frontend",
            front,
            {"network.local.port": "80"},
        ),
        # py_zipkin reports the callee shared on the fresh id the caller minted: stored under a
        # derived id, and (no client half has that id) re-parented to the client span.
        "get /price/Server": _row(
            server_id,
            ids["client"],
            server_at,
            server_took,
            "py-backend",
            back,
            {
                "zipkin.parent_id": ids["client"],
                "zipkin.original_span_id": ids["server"],
                "zipkin.shared": "true",
                "network.local.port": "8080",
            },
            ("Error", "sold out"),
        ),
        "SELECT price/Internal": _row(
            ids["local"],
            server_id,
            500_000,
            62_500,
            "py-backend",
            back,
            {"network.local.port": "8080"},
            events=((562_500, "cache.miss"),),
        ),
    }
    return trace_id, expected


def _node_client(endpoint: str, encoder: str, trace_id: str) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is installed by deploy/local/system-deps.sh"
    assert (REPO / "tests/clients/node_modules/zipkin-transport-http").is_dir(), "make setup"
    return subprocess.run(
        [
            node,
            str(REPO / "tests/clients/zipkin_js_send.js"),
            endpoint,
            encoder,
            trace_id,
            str(BASE_US),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _zipkin_js_case(port: int, path: str, encoder: str) -> Case:
    trace_id = uuid.uuid4().hex
    done = _node_client(f"http://127.0.0.1:{port}{path}", encoder, trace_id)
    assert done.returncode == 0, done.stderr
    call = "a000000000000002"
    server_id = shared_span_id(bytes.fromhex(call)).hex()
    expected = {
        "get /checkout/Server": _row(
            "a000000000000001", "", 0, 1000, "js-frontend", {}, {"http.path": "/checkout"}
        ),
        "get /stock/Client": _row(
            call,
            "a000000000000001",
            100,
            800,
            "js-frontend",
            {},
            {"peer.service": "js-backend", "network.peer.port": "8081"},
        ),
        # The backend joined the client's id (a shared span): its own derived id, under the
        # client span, and its local child under it rather than under the client.
        "get /stock/Server": _row(
            server_id,
            call,
            200,
            600,
            "js-backend",
            {},
            {
                "stock.sku": "A-17",
                "zipkin.parent_id": "a000000000000001",
                "zipkin.original_span_id": call,
                "zipkin.shared": "true",
            },
            ("Error", "out of stock"),
        ),
        "load stock/Internal": _row(
            "a000000000000003",
            server_id,
            300,
            200,
            "js-backend",
            {},
            {},
            events=((350, "cache miss"),),
        ),
    }
    return trace_id, expected


CASES = [
    "py_zipkin-V1_JSON",
    "py_zipkin-V2_JSON",
    "py_zipkin-V2_PROTO3",
    "zipkin-js-v1",
    "zipkin-js-v2",
]


@pytest.fixture(scope="module")
def sent(stack: LocalStack) -> dict[str, Case]:
    """Every client sends its trace up front, so the module waits for the pipeline once."""
    port = stack.settings.ingest_zipkin_port
    return {
        "py_zipkin-V1_JSON": _py_zipkin_case(port, Encoding.V1_JSON),
        "py_zipkin-V2_JSON": _py_zipkin_case(port, Encoding.V2_JSON),
        "py_zipkin-V2_PROTO3": _py_zipkin_case(port, Encoding.V2_PROTO3),
        # zipkin-js's HttpLogger: its default v1 encoder, and jsonEncoder JSON_V2
        "zipkin-js-v1": _zipkin_js_case(port, "/api/v1/spans", "v1"),
        "zipkin-js-v2": _zipkin_js_case(port, "/api/v2/spans", "v2"),
    }


@pytest.mark.parametrize("case", CASES)
def test_client_spans_are_stored_as_sent(
    stack: LocalStack, sent: dict[str, Case], case: str
) -> None:
    trace_id, expected = sent[case]
    _assert_columns(_rows(stack.settings, trace_id, len(expected)), expected)


def test_zipkin_js_default_v1_encoder_on_the_v2_endpoint_is_refused(stack: LocalStack) -> None:
    """The combination that used to be stored silently wrong (service names empty, kind
    Internal, tags lost) is now a 400 the client logs, naming the endpoint to use."""
    s = stack.settings
    before = metric(
        scrape(s.ingest_http_port),
        "tracehouse_ingest_requests_total",
        protocol="zipkin",
        outcome="zipkin_wrong_version",
    )
    url = f"http://127.0.0.1:{s.ingest_zipkin_port}/api/v2/spans"
    done = _node_client(url, "v1", uuid.uuid4().hex)
    assert done.returncode == 2
    assert "status:400" in done.stderr.replace(" ", "")
    status, _headers, body = post(url, b'[{"traceId":"1","id":"2","binaryAnnotations":[]}]', "")
    assert status == 400 and b"/api/v1/spans" in body
    after = metric(
        scrape(s.ingest_http_port),
        "tracehouse_ingest_requests_total",
        protocol="zipkin",
        outcome="zipkin_wrong_version",
    )
    assert after - before == 3  # two zipkin-js loggers, one raw post


def test_bodies_that_cannot_be_stored_as_sent_are_answered_and_counted(stack: LocalStack) -> None:
    s = stack.settings
    base = f"http://127.0.0.1:{s.ingest_zipkin_port}"
    before = scrape(s.ingest_http_port)
    good = zipkin_pb2.ListOfSpans(
        spans=[zipkin_pb2.Span(trace_id=b"\x01" * 16, id=b"\x02" * 8, name="ok", timestamp=1)]
    ).SerializeToString()
    bad_span = b"\x0a\x05\x2a\x03\xff\xfe\xfd"  # a span whose name is not UTF-8
    cases = [
        # (path, content type, body, status, answer fragment)
        ("/api/v2/spans", "application/x-protobuf", good + bad_span, 202, b'"rejectedSpans": 1'),
        ("/api/v2/spans", "application/x-protobuf", b"\x0a\xff", 400, b"ListOfSpans"),
        ("/api/v1/spans", "application/x-thrift", b"\x0c\x00", 415, b"thrift"),
        ("/api/v1/spans", "application/x-protobuf", good, 415, b"/api/v2/spans"),
        (
            "/api/v1/spans",
            "application/json",
            b'[{"traceId":"1","id":"2","kind":"CLIENT"}]',
            400,
            b"/api/v2/spans",
        ),
    ]
    for path, media, body, status, fragment in cases:
        got, _headers, answer = post(base + path, body, media)
        assert (got, fragment in answer) == (status, True), (path, media, answer)
    after = scrape(s.ingest_http_port)

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    requests = "tracehouse_ingest_requests_total"
    assert delta(requests, protocol="zipkin", outcome="partial") == 1
    assert delta(requests, protocol="zipkin", outcome="invalid_zipkin_proto") == 1
    assert delta(requests, protocol="zipkin", outcome="unsupported_media") == 2
    assert delta(requests, protocol="zipkin", outcome="zipkin_wrong_version") == 1
    rejected = "tracehouse_ingest_spans_rejected_total"
    assert delta(rejected, protocol="zipkin", reason="malformed_span") == 1

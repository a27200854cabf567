"""Bad requests get the documented answer, are counted on /metrics, and never cost other
clients their spans (ingest/README.md, "Response codes")."""

from __future__ import annotations

import gzip
import json
import signal
import socket
import time
import uuid

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from core.settings import Settings
from deploy.local.stack import LocalStack, http_ok
from ingest.grpc_receiver import SERVICE
from ingest.server import SHUTDOWN_GRACE_SECONDS
from tests.integration.ingest_helpers import metric, post, scrape, wait_for_trace_rows
from tracehouse.demo_traces import make_request

PROTOBUF = "application/x-protobuf"


def _good_request(traces: int, seed: int) -> tuple[bytes, list[str], int]:
    req = make_request(traces=traces, seed=seed)
    ids = sorted(
        {s.trace_id.hex() for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans}
    )
    return req.SerializeToString(), ids, traces * 5


def test_bad_inputs_are_answered_counted_and_isolated(pipeline: LocalStack) -> None:
    s = pipeline.settings
    url = f"http://127.0.0.1:{s.ingest_http_port}/v1/traces"
    good_body, good_ids, good_spans = _good_request(20, seed=5)

    # Truncated protobuf: 400 with a google.rpc.Status body.
    status, _, _ = post(url, good_body[: len(good_body) // 2 + 3], PROTOBUF)
    assert status == 400
    # Invalid JSON: 400 with a JSON status body.
    status, headers, body = post(url, b'{"resourceSpans": [', "application/json")
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert b'"code": 3' in body
    # Empty request: a valid, empty ExportTraceServiceRequest -> 200, nothing written.
    status, _, body = post(url, b"", PROTOBUF)
    assert status == 200 and body == b""
    # Unsupported media type.
    assert post(url, b"x", "text/plain")[0] == 415
    # Gzip bomb: 64 MiB of zeros in ~64 KiB, over the 16 MiB limit once inflated -> 413.
    bomb = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 200_000
    status, _, _ = post(url, bomb, PROTOBUF, {"Content-Encoding": "gzip"})
    assert status == 413

    # Zero and wrong-length ids plus a 10 MB attribute value, next to good spans in the same
    # request: partial success, only the bad spans rejected.
    mixed = trace_pb2.TracesData()
    ss = mixed.resource_spans.add().scope_spans.add()
    keep_tid = uuid.uuid4().bytes
    ss.spans.add(trace_id=keep_tid, span_id=b"\x01" * 8, name="kept-1")
    ss.spans.add(trace_id=keep_tid, span_id=b"\x02" * 8, name="kept-2")
    ss.spans.add(trace_id=bytes(16), span_id=b"\x03" * 8, name="zero trace")
    ss.spans.add(trace_id=keep_tid, span_id=bytes(8), name="zero span")
    ss.spans.add(trace_id=b"\x05" * 8, span_id=b"\x06" * 8, name="short trace")
    huge = ss.spans.add(trace_id=keep_tid, span_id=b"\x07" * 8, name="huge")
    huge.attributes.add(key="blob").value.string_value = "x" * (10 * 1024 * 1024)
    status, _, body = post(url, mixed.SerializeToString(), PROTOBUF)
    assert status == 200
    response = trace_service_pb2.ExportTraceServiceResponse.FromString(body)
    assert response.partial_success.rejected_spans == 4
    message = response.partial_success.error_message
    for reason in ("zero_trace_id", "zero_span_id", "invalid_trace_id_length", "span_too_large"):
        assert reason in message

    # gRPC: a truncated request is INVALID_ARGUMENT.
    with grpc.insecure_channel(f"127.0.0.1:{s.ingest_grpc_port}") as channel:
        export = channel.unary_unary(f"/{SERVICE}/Export")
        try:
            export(good_body[:101], timeout=10)
            raise AssertionError("truncated gRPC request was accepted")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT

    # Another client's spans are unaffected.
    assert post(url, good_body, PROTOBUF)[0] == 200
    rows = wait_for_trace_rows(s, good_ids, good_spans)
    assert len(rows) == good_spans
    kept = wait_for_trace_rows(s, [keep_tid.hex()], 2)
    assert sorted(r[4] for r in kept) == ["kept-1", "kept-2"]

    m = scrape(s.ingest_http_port)
    http = "otlp_http"
    for outcome, count in (
        ("undecodable", 1),
        ("invalid_json", 1),
        ("empty", 1),
        ("unsupported_media", 1),
        ("too_large", 1),
        ("partial", 1),
        ("ok", 1),
    ):
        assert metric(m, "tracehouse_ingest_requests_total", protocol=http, outcome=outcome) == (
            count
        ), outcome
    assert (
        metric(m, "tracehouse_ingest_requests_total", protocol="otlp_grpc", outcome="undecodable")
        == 1
    )
    for reason in ("zero_trace_id", "zero_span_id", "invalid_trace_id_length", "span_too_large"):
        assert (
            metric(m, "tracehouse_ingest_spans_rejected_total", protocol=http, reason=reason) == 1
        )
    received = metric(m, "tracehouse_ingest_spans_received_total", protocol=http)
    accepted = metric(m, "tracehouse_ingest_spans_accepted_total", protocol=http)
    assert accepted == good_spans + 2
    assert received == accepted + 4  # accounting identity: received = accepted + rejected


# -- spans storage cannot hold, malformed JSON, stalled clients (ingest/README.md, "Validation")


def _span_ids(data: trace_pb2.TracesData) -> list[str]:
    return [
        s.span_id.hex() for rs in data.resource_spans for ss in rs.scope_spans for s in ss.spans
    ]


def _streams_alive(stack: LocalStack) -> None:
    streams = [c for c in stack.children if c.name.startswith("streams")]
    assert streams and all(c.proc.poll() is None for c in streams), stack.dead()
    assert http_ok(f"http://127.0.0.1:{stack.settings.streams_metrics_port}/health")


def test_times_out_of_range_are_rejected_and_streams_survive(pipeline: LocalStack) -> None:
    """A span at 2^63 ns used to be answered 200/202 and then kill the streams worker with
    OverflowError. Now it is rejected per span over every protocol, next to good spans that
    are all stored, and the streams worker keeps running."""
    s = pipeline.settings
    now = time.time_ns()
    tid = uuid.uuid4().bytes

    # OTLP/HTTP protobuf: start, end and event times at/above 2^63 next to good spans; one
    # good span has an all-zero parent, which must be stored as a root.
    data = trace_pb2.TracesData()
    ss = data.resource_spans.add().scope_spans.add()
    good = dict(start_time_unix_nano=now, end_time_unix_nano=now + 1000)
    ss.spans.add(trace_id=tid, span_id=b"\x01" * 8, name="good-root", **good)
    ss.spans.add(
        trace_id=tid, span_id=b"\x02" * 8, parent_span_id=bytes(8), name="zero-parent", **good
    )
    ss.spans.add(trace_id=tid, span_id=b"\x03" * 8, name="start", start_time_unix_nano=2**63)
    ss.spans.add(trace_id=tid, span_id=b"\x04" * 8, name="end", end_time_unix_nano=2**64 - 1)
    ev = ss.spans.add(trace_id=tid, span_id=b"\x05" * 8, name="event", **good)
    ev.events.add(time_unix_nano=9_300_000_000_000_000_000, name="far future")
    status, _, body = post(
        f"http://127.0.0.1:{s.ingest_http_port}/v1/traces", data.SerializeToString(), PROTOBUF
    )
    assert status == 200
    partial = trace_service_pb2.ExportTraceServiceResponse.FromString(body).partial_success
    assert partial.rejected_spans == 3 and "3 time_out_of_range" in partial.error_message

    # OTLP/HTTP JSON, the literal: "startTimeUnixNano":"9300000000000000000".
    json_tid = uuid.uuid4().hex
    json_body = json.dumps(
        {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": json_tid,
                                    "spanId": "0000000000000011",
                                    "name": "json-good",
                                    "startTimeUnixNano": str(now),
                                    "endTimeUnixNano": str(now + 1000),
                                },
                                {
                                    "traceId": json_tid,
                                    "spanId": "0000000000000012",
                                    "name": "json-far",
                                    "startTimeUnixNano": "9300000000000000000",
                                },
                            ]
                        }
                    ]
                }
            ]
        }
    ).encode()
    status, _, body = post(
        f"http://127.0.0.1:{s.ingest_http_port}/v1/traces", json_body, "application/json"
    )
    assert status == 200
    assert json.loads(body)["partialSuccess"] == {
        "rejectedSpans": "1",
        "errorMessage": "rejected spans: 1 time_out_of_range",
    }

    # OTLP/gRPC.
    grpc_tid = uuid.uuid4().bytes
    grpc_data = trace_pb2.TracesData()
    gss = grpc_data.resource_spans.add().scope_spans.add()
    gss.spans.add(trace_id=grpc_tid, span_id=b"\x21" * 8, name="grpc-good", **good)
    gss.spans.add(trace_id=grpc_tid, span_id=b"\x22" * 8, name="grpc-far", end_time_unix_nano=2**63)
    with grpc.insecure_channel(f"127.0.0.1:{s.ingest_grpc_port}") as channel:
        export = channel.unary_unary(f"/{SERVICE}/Export")
        answer = trace_service_pb2.ExportTraceServiceResponse.FromString(
            export(grpc_data.SerializeToString(), timeout=30)
        )
    assert answer.partial_success.rejected_spans == 1

    # Zipkin: timestamp 9300000000000000 us = 9.3e18 ns > 2^63 - 1.
    zipkin_tid = uuid.uuid4().hex
    zipkin_good = {
        "traceId": zipkin_tid,
        "id": "0000000000000031",
        "name": "zipkin-good",
        "timestamp": now // 1000,
        "duration": 5,
        "localEndpoint": {"serviceName": "zipkin-svc"},
    }
    zipkin_far = {**zipkin_good, "id": "0000000000000032", "timestamp": 9300000000000000}
    status, _, body = post(
        f"http://127.0.0.1:{s.ingest_zipkin_port}/api/v2/spans",
        json.dumps([zipkin_good, zipkin_far]).encode(),
        "application/json",
    )
    assert status == 202
    assert json.loads(body) == {
        "rejectedSpans": 1,
        "errorMessage": "rejected spans: 1 time_out_of_range",
    }

    rows = wait_for_trace_rows(s, [tid.hex()], 2)
    by_name = {r[4]: r for r in rows}
    assert sorted(by_name) == ["good-root", "zero-parent"]
    assert by_name["zero-parent"][2] == ""  # all-zero parent stored as root
    assert [r[4] for r in wait_for_trace_rows(s, [json_tid], 1)] == ["json-good"]
    assert [r[4] for r in wait_for_trace_rows(s, [grpc_tid.hex()], 1)] == ["grpc-good"]
    assert [r[4] for r in wait_for_trace_rows(s, [zipkin_tid], 1)] == ["zipkin-good"]
    _streams_alive(pipeline)

    m = scrape(s.ingest_http_port)
    for protocol, count in (("otlp_http", 4), ("otlp_grpc", 1), ("zipkin", 1)):
        assert (
            metric(
                m,
                "tracehouse_ingest_spans_rejected_total",
                protocol=protocol,
                reason="time_out_of_range",
            )
            == count
        ), protocol


ZIPKIN_SPAN = {
    "id": "00000000000000a1",
    "name": "zipkin-span",
    "duration": 5,
    "localEndpoint": {"serviceName": "zipkin-svc"},
}


def test_malformed_json_is_a_counted_400_and_malformed_spans_are_rejected_alone(
    pipeline: LocalStack,
) -> None:
    """The issue's Zipkin and OTLP/JSON bodies that used to be uncounted 500s with a traceback
    are 400s with a reason on /metrics; a malformed span next to good ones rejects only itself."""
    s = pipeline.settings
    zipkin_url = f"http://127.0.0.1:{s.ingest_zipkin_port}/api/v2/spans"
    otlp_url = f"http://127.0.0.1:{s.ingest_http_port}/v1/traces"
    now_us = time.time_ns() // 1000
    base = {**ZIPKIN_SPAN, "traceId": uuid.uuid4().hex, "timestamp": now_us}

    def zipkin_json(*spans: dict[str, object]) -> bytes:
        return json.dumps(list(spans)).encode()

    surrogate = b'[{"traceId":"%s","id":"00000000000000a1","name":"\\ud800"}]' % (
        str(base["traceId"]).encode()
    )
    cases: list[tuple[bytes, str, str]] = [
        (zipkin_json({**base, "timestamp": -5}), "invalid_zipkin", "invalid_timestamp"),
        (zipkin_json({**base, "timestamp": 1e300}), "invalid_zipkin", "invalid_timestamp"),
        (
            zipkin_json({**base, "remoteEndpoint": {"port": 10**22}}),
            "invalid_zipkin",
            "invalid_port",
        ),
        (zipkin_json({**base, "annotations": 5}), "invalid_zipkin", "invalid_annotations"),
        (zipkin_json({**base, "tags": ["a"]}), "invalid_zipkin", "invalid_tags"),
        (surrogate, "invalid_zipkin", "invalid_utf8"),
        (b'[{"traceId":"ab","id":"01","timestamp":NaN}]', "invalid_json", ""),
        (b'[{"traceId":"ab","id":"01","timestamp":Infinity}]', "invalid_json", ""),
        (b"[" * 100_000 + b"]" * 100_000, "json_too_deep", ""),
        (b'["\xc3\x28"]', "invalid_json", ""),  # invalid UTF-8
    ]
    started = time.monotonic()
    for body, outcome, reason in cases:
        before = scrape(s.ingest_http_port)
        status, _, answer = post(zipkin_url, body, "application/json")
        assert status == 400, (body[:80], status, answer)
        after = scrape(s.ingest_http_port)
        name, labels = (
            "tracehouse_ingest_requests_total",
            {"protocol": "zipkin", "outcome": outcome},
        )
        assert metric(after, name, **labels) == metric(before, name, **labels) + 1, body[:80]
        if reason:
            assert reason.encode() in answer, answer
    assert time.monotonic() - started < 30

    # OTLP/JSON nested ~1000 deep used to die in json_format with RecursionError.
    deep_value = b'{"kvlistValue":{"values":[{"key":"k","value":' * 1000 + b"{}" + b"}]}}" * 1000
    deep = (
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"%s","spanId":"0102030405060708",'
        b'"attributes":[{"key":"a","value":%s}]}]}]}]}' % (uuid.uuid4().hex.encode(), deep_value)
    )
    status, _, answer = post(otlp_url, deep, "application/json")
    assert status == 400 and b"deeper than" in answer, answer

    # One malformed span per kind next to a good one: partial success, the good span stored.
    json_tid = uuid.uuid4().hex
    good = {"traceId": json_tid, "spanId": "00000000000000c1", "name": "json-good"}
    good["startTimeUnixNano"] = str(time.time_ns())
    bad_b64 = {**good, "traceId": "W47/95gDgQPSabYzgT/GDA==", "spanId": "00000000000000c2"}
    bad_attr = {
        **good,
        "spanId": "00000000000000c3",
        "attributes": [{"key": "a", "value": {"kvlistValue": 5}}],
    }
    request = {"resourceSpans": [{"scopeSpans": [{"spans": [good, bad_b64, bad_attr]}]}]}
    status, _, answer = post(otlp_url, json.dumps(request).encode(), "application/json")
    assert status == 200
    assert json.loads(answer)["partialSuccess"] == {
        "rejectedSpans": "2",
        "errorMessage": "rejected spans: 1 invalid_attribute, 1 trace_id_base64_not_hex",
    }
    zipkin_tid = uuid.uuid4().hex
    zipkin_good = {**ZIPKIN_SPAN, "traceId": zipkin_tid, "timestamp": now_us}
    zipkin_bad = {**zipkin_good, "id": "00000000000000a2", "annotations": 5}
    status, _, answer = post(zipkin_url, zipkin_json(zipkin_good, zipkin_bad), "application/json")
    assert status == 202
    assert json.loads(answer) == {
        "rejectedSpans": 1,
        "errorMessage": "rejected spans: 1 invalid_annotations",
    }
    assert [r[4] for r in wait_for_trace_rows(s, [json_tid], 1)] == ["json-good"]
    assert [r[4] for r in wait_for_trace_rows(s, [zipkin_tid], 1)] == ["zipkin-span"]
    _streams_alive(pipeline)

    m = scrape(s.ingest_http_port)
    for outcome, count in (("invalid_zipkin", 6), ("invalid_json", 3), ("json_too_deep", 1)):
        assert (
            metric(m, "tracehouse_ingest_requests_total", protocol="zipkin", outcome=outcome)
            == count
        ), outcome
    assert (
        metric(m, "tracehouse_ingest_requests_total", protocol="otlp_http", outcome="json_too_deep")
        == 1
    )
    for reason, count in (
        ("invalid_timestamp", 2),
        ("invalid_port", 1),
        ("invalid_annotations", 2),
        ("invalid_tags", 1),
        ("invalid_utf8", 1),
    ):
        assert (
            metric(m, "tracehouse_ingest_spans_rejected_total", protocol="zipkin", reason=reason)
            == count
        ), reason
    for reason in ("invalid_attribute", "trace_id_base64_not_hex"):
        assert (
            metric(m, "tracehouse_ingest_spans_rejected_total", protocol="otlp_http", reason=reason)
            == 1
        ), reason
    # No request anywhere ended as an unexpected error.
    for protocol in ("zipkin", "otlp_http"):
        for outcome in ("invalid_request", "internal_error"):
            assert (
                metric(m, "tracehouse_ingest_requests_total", protocol=protocol, outcome=outcome)
                == 0
            )


def test_stalled_clients_do_not_delay_shutdown(
    services: LocalStack, pipeline_settings: Settings
) -> None:
    """One client stalled mid-headers and others mid-body (HTTP, Zipkin) plus a half-open gRPC
    connection used to hold SIGTERM shutdown for 61 s (aiohttp's default 60 s grace); now
    ingest exits within its bounded grace period."""
    s = pipeline_settings
    stack = LocalStack(s, services.run_dir / f"stall-{s.clickhouse_database}", say=lambda _m: None)
    child = stack.start_component("ingest", f"http://127.0.0.1:{s.ingest_http_port}/health")
    sockets: list[socket.socket] = []
    try:
        stalls = [
            (s.ingest_http_port, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Ty"),
            (
                s.ingest_http_port,
                b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf"
                b"\r\nContent-Length: 100000\r\n\r\n" + b"\x0a" * 100,
            ),
            (
                s.ingest_zipkin_port,
                b"POST /api/v2/spans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nContent-Length: 100000\r\n\r\n[{",
            ),
            (s.ingest_grpc_port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n"),  # half an HTTP/2 preface
        ]
        for port, data in stalls:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(data)
            sockets.append(sock)
        time.sleep(1)  # let the server start reading every stalled request
        assert child.proc.poll() is None
        started = time.monotonic()
        child.proc.send_signal(signal.SIGTERM)
        code = child.proc.wait(timeout=60)
        took = time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()
        stack.stop()
    assert code == 0, child.log_path.read_text()[-2000:]
    print(f"ingest shutdown with stalled clients took {took:.1f} s")
    assert took < 2 * SHUTDOWN_GRACE_SECONDS + 4, f"shutdown took {took:.1f} s"
    assert "ingest stopped" in child.log_path.read_text()

"""Bad requests get the documented answer, are counted on /metrics, and never cost other
clients their spans (ingest/README.md, "Response codes")."""

from __future__ import annotations

import gzip
import uuid

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from deploy.local.stack import LocalStack
from ingest.grpc_receiver import SERVICE
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

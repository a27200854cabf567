import json

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.errors import BodyError
from ingest.zipkin import decode_request, decode_spans, shared_span_id
from streams.otlp_values import attributes_to_dict

CLIENT = {
    "traceId": "463ac35c9f6413ad48485a3953bb6124",
    "id": "a2fb4a1d1a96d312",
    "parentId": "0020000000000001",
    "name": "get /api",
    "kind": "CLIENT",
    "timestamp": 1472470996199000,
    "duration": 207000,
    "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1"},
    "remoteEndpoint": {"serviceName": "backend", "ipv4": "10.0.0.2", "port": 8080},
    "annotations": [{"timestamp": 1472470996238000, "value": "ws"}],
    "tags": {"http.method": "GET", "error": "connection reset"},
}
SERVER = {
    "traceId": "48485a3953bb6124",
    "id": "a2fb4a1d1a96d312",
    "name": "get /api",
    "kind": "SERVER",
    "shared": True,
    "timestamp": 1472470996250000,
    "duration": 100000,
    "localEndpoint": {"serviceName": "backend"},
    "tags": {"otel.status_code": "OK"},
}


def _spans(data: trace_pb2.TracesData) -> dict[str, tuple[trace_pb2.ResourceSpans, trace_pb2.Span]]:
    return {
        trace_pb2.Span.SpanKind.Name(s.kind): (rs, s)
        for rs in data.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    }


def test_mapping() -> None:
    spans = _spans(decode_spans(json.dumps([CLIENT, SERVER]).encode()))
    rs, client = spans["SPAN_KIND_CLIENT"]
    assert attributes_to_dict(rs.resource.attributes)["service.name"] == "frontend"
    assert client.trace_id.hex() == CLIENT["traceId"]
    assert (
        client.span_id.hex() == CLIENT["id"] and client.parent_span_id.hex() == "0020000000000001"
    )
    assert client.start_time_unix_nano == 1472470996199000000
    assert client.end_time_unix_nano - client.start_time_unix_nano == 207000000
    assert client.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert client.status.message == "connection reset"
    attrs = attributes_to_dict(client.attributes)
    assert attrs == {
        "http.method": "GET",
        "peer.service": "backend",
        "network.peer.address": "10.0.0.2",
        "network.peer.port": "8080",
    }
    assert [(e.name, e.time_unix_nano) for e in client.events] == [("ws", 1472470996238000000)]

    rs, server = spans["SPAN_KIND_SERVER"]
    assert attributes_to_dict(rs.resource.attributes)["service.name"] == "backend"
    # 64-bit trace id padded; shared span gets its own id with the client span as parent.
    assert server.trace_id.hex() == "0000000000000000" + str(SERVER["traceId"])
    assert server.parent_span_id.hex() == SERVER["id"]
    assert server.span_id == shared_span_id(bytes.fromhex(SERVER["id"]))
    assert server.span_id != client.span_id
    assert server.status.code == trace_pb2.Status.STATUS_CODE_OK
    assert attributes_to_dict(server.attributes)["zipkin.shared"] == "true"


def test_missing_kind_is_internal_and_short_ids_are_padded() -> None:
    [span] = [
        s
        for rs in decode_spans(b'[{"traceId":"abc","id":"1"}]').resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    assert span.kind == trace_pb2.Span.SPAN_KIND_INTERNAL
    assert span.trace_id == bytes.fromhex("abc".rjust(32, "0"))
    assert span.span_id == bytes.fromhex("0000000000000001")


def test_non_hex_id_rejects_only_that_span() -> None:
    bad = dict(CLIENT, traceId="xyz")
    decoded = decode_request(json.dumps([CLIENT, bad]).encode())
    assert dict(decoded.rejected) == {"invalid_trace_id_encoding": 1}
    assert sum(len(ss.spans) for rs in decoded.data.resource_spans for ss in rs.scope_spans) == 1


def test_all_spans_malformed_is_a_400_with_the_reasons() -> None:
    with pytest.raises(BodyError) as info:
        decode_spans(b'[{"traceId":"xyz","id":"1"}]')
    assert info.value.status == 400 and info.value.reason == "invalid_zipkin"
    assert dict(info.value.rejected) == {"invalid_trace_id_encoding": 1}
    assert "invalid_trace_id_encoding" in str(info.value)


@pytest.mark.parametrize("body", [b"{}", b"nope", b"[1]"])
def test_bad_bodies(body: bytes) -> None:
    with pytest.raises(BodyError):
        decode_spans(body)

"""Zipkin v1 JSON, v2 proto3 and the version check; shared spans as Zipkin links them.

Bodies come from py_zipkin's own encoders (the client library from PyPI), so the mapping is
checked against what a real Zipkin client sends, not against our reading of the format.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2
from py_zipkin import Kind
from py_zipkin.encoding import Encoding, get_encoder
from py_zipkin.encoding._helpers import Span, create_endpoint

from ingest import zipkin, zipkin_proto, zipkin_v1
from ingest.errors import BodyError
from ingest.zipkin import shared_span_id
from ingest.zipkin_receiver import decoder_for
from streams.otlp_values import attributes_to_dict
from streams.service_graph import ServiceGraph
from streams.span_views import SpanView, span_views
from streams.zipkin_links import relink_orphaned_shared_servers

TRACE = "463ac35c9f6413ad48485a3953bb6124"
DECODERS = {
    Encoding.V1_JSON: zipkin_v1.decode_request,
    Encoding.V2_JSON: zipkin.decode_request,
    Encoding.V2_PROTO3: zipkin_proto.decode_request,
}


def _encode(encoding: Encoding, spans: list[Span]) -> bytes:
    encoder = get_encoder(encoding)
    body = encoder.encode_queue([encoder.encode_span(s) for s in spans])
    return body.encode() if isinstance(body, str) else body


def _flat(data: trace_pb2.TracesData) -> list[tuple[dict[str, str], trace_pb2.Span]]:
    return [
        (attributes_to_dict(rs.resource.attributes), s)
        for rs in data.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]


def _server_span(**overrides: Any) -> Span:
    fields: dict[str, Any] = {
        "trace_id": TRACE,
        "name": "get /users",
        "parent_id": "0020000000000001",
        "span_id": "a2fb4a1d1a96d312",
        "kind": Kind.SERVER,
        "timestamp": 1472470996.199,
        "duration": 0.207,
        "local_endpoint": create_endpoint(8080, "users", "10.0.0.2"),
        "remote_endpoint": create_endpoint(0, "frontend", "10.0.0.1", use_defaults=False),
        "annotations": {"cache.miss": 1472470996.25},
        "tags": {"http.path": "/users", "error": "timeout"},
    }
    fields.update(overrides)
    return Span(**fields)


@pytest.mark.parametrize("encoding", list(DECODERS), ids=lambda e: e.name)
def test_every_encoding_of_py_zipkin_stores_the_same_span(encoding: Encoding) -> None:
    decoded = DECODERS[encoding](_encode(encoding, [_server_span()]))
    assert not decoded.rejected
    [(resource, span)] = _flat(decoded.data)
    assert resource == {"service.name": "users", "host.ip": "10.0.0.2"}
    assert span.trace_id.hex() == TRACE
    assert span.span_id.hex() == "a2fb4a1d1a96d312"
    assert span.parent_span_id.hex() == "0020000000000001"
    assert span.kind == trace_pb2.Span.SPAN_KIND_SERVER
    assert span.name == "get /users"
    assert span.start_time_unix_nano == 1472470996199000000
    assert span.end_time_unix_nano == 1472470996406000000
    assert span.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert span.status.message == "timeout"
    assert attributes_to_dict(span.attributes) == {
        "http.path": "/users",
        "peer.service": "frontend",
        "network.peer.address": "10.0.0.1",
        "network.local.port": "8080",
    }
    assert [(e.name, e.time_unix_nano) for e in span.events] == [
        ("cache.miss", 1472470996250000000)
    ]


def test_v1_span_with_both_halves_becomes_client_and_shared_server() -> None:
    v1 = {
        "traceId": TRACE,
        "id": "a2fb4a1d1a96d312",
        "parentId": "0020000000000001",
        "name": "get",
        "timestamp": 1000,
        "duration": 100,
        "annotations": [
            {"timestamp": 1000, "value": "cs", "endpoint": {"serviceName": "front"}},
            {"timestamp": 1010, "value": "sr", "endpoint": {"serviceName": "back"}},
            {"timestamp": 1080, "value": "ss", "endpoint": {"serviceName": "back"}},
            {"timestamp": 1100, "value": "cr", "endpoint": {"serviceName": "front"}},
            {"timestamp": 1050, "value": "db.done", "endpoint": {"serviceName": "back"}},
        ],
        "binaryAnnotations": [
            {"key": "sa", "value": True, "endpoint": {"serviceName": "back", "port": 80}},
            {"key": "ca", "value": True, "endpoint": {"serviceName": "front", "ipv4": "1.2.3.4"}},
            {"key": "http.status", "value": 200, "endpoint": {"serviceName": "back"}},
            {"key": "retried", "value": False, "endpoint": {"serviceName": "front"}},
            {"key": "lc", "value": "httpclient"},
        ],
    }
    decoded = zipkin_v1.decode_request(json.dumps([v1]).encode())
    spans = {res["service.name"]: s for res, s in _flat(decoded.data)}
    client, server = spans["front"], spans["back"]
    assert client.kind == trace_pb2.Span.SPAN_KIND_CLIENT
    assert (client.start_time_unix_nano, client.end_time_unix_nano) == (1_000_000, 1_100_000)
    assert attributes_to_dict(client.attributes) == {
        "retried": "false",
        "lc": "httpclient",
        "peer.service": "back",
        "network.peer.port": "80",
    }
    assert server.kind == trace_pb2.Span.SPAN_KIND_SERVER
    assert (server.start_time_unix_nano, server.end_time_unix_nano) == (1_010_000, 1_080_000)
    assert server.span_id == shared_span_id(client.span_id)
    assert server.parent_span_id == client.span_id
    attrs = attributes_to_dict(server.attributes)
    assert attrs["http.status"] == "200" and attrs["peer.service"] == "front"
    assert attrs["zipkin.original_span_id"] == "a2fb4a1d1a96d312"
    assert [e.name for e in server.events] == ["db.done"]


def test_v1_lone_spans_take_kind_from_address_annotations() -> None:
    db_call = {
        "traceId": TRACE,
        "id": "0000000000000002",
        "name": "query",
        "timestamp": 5,
        "duration": 2,
        "binaryAnnotations": [
            {"key": "sa", "value": True, "endpoint": {"serviceName": "mysql"}},
            {"key": "lc", "value": "jdbc", "endpoint": {"serviceName": "users"}},
        ],
    }
    [(resource, span)] = _flat(zipkin_v1.decode_request(json.dumps([db_call]).encode()).data)
    assert resource["service.name"] == "users"
    assert span.kind == trace_pb2.Span.SPAN_KIND_CLIENT
    assert attributes_to_dict(span.attributes)["peer.service"] == "mysql"


@pytest.mark.parametrize(
    ("decode", "span", "message"),
    [
        (zipkin.decode_request, {"traceId": "1", "id": "2", "binaryAnnotations": []}, "/api/v1"),
        (
            zipkin.decode_request,
            {
                "traceId": "1",
                "id": "2",
                "annotations": [{"timestamp": 1, "value": "x", "endpoint": {}}],
            },
            "/api/v1",
        ),
        (zipkin_v1.decode_request, {"traceId": "1", "id": "2", "kind": "CLIENT"}, "/api/v2"),
        (zipkin_v1.decode_request, {"traceId": "1", "id": "2", "localEndpoint": {}}, "/api/v2"),
    ],
)
def test_a_body_of_the_other_version_is_a_400_naming_the_endpoint(
    decode: Any, span: dict[str, Any], message: str
) -> None:
    with pytest.raises(BodyError) as info:
        decode(json.dumps([{"traceId": "1", "id": "3"}, span]).encode())
    assert info.value.status == 400 and info.value.reason == "zipkin_wrong_version"
    assert message in str(info.value)


def test_mixed_versions_and_ambiguous_spans() -> None:
    mixed = [{"traceId": "1", "id": "2", "kind": "CLIENT"}, {"binaryAnnotations": []}]
    for decode in (zipkin.decode_request, zipkin_v1.decode_request):
        with pytest.raises(BodyError) as info:
            decode(json.dumps(mixed).encode())
        assert info.value.reason == "zipkin_mixed_versions"
        # ids, name and times only read the same in both models: accepted by both
        plain = decode(b'[{"traceId": "1", "id": "2", "name": "n", "timestamp": 3}]')
        assert [s.name for _r, s in _flat(plain.data)] == ["n"]


def test_unknown_kind_is_refused_not_stored_as_internal() -> None:
    decoded = zipkin.decode_request(
        b'[{"traceId":"1","id":"2","kind":"SERVR"},{"traceId":"1","id":"3"}]'
    )
    assert dict(decoded.rejected) == {"invalid_kind": 1}


def test_proto_refuses_bad_spans_alone_and_bad_framing_whole() -> None:
    good = _encode(Encoding.V2_PROTO3, [_server_span()])
    # a span whose name is not UTF-8, framed correctly: refused alone
    bad_span = b"\x0a\x05\x2a\x03\xff\xfe\xfd"
    short_id = b"\x0a\x0e\x0a\x02\x01\x02\x1a\x08" + b"\x01" * 8
    decoded = zipkin_proto.decode_request(good + bad_span + short_id)
    assert dict(decoded.rejected) == {"malformed_span": 1, "invalid_trace_id_length": 1}
    assert len(_flat(decoded.data)) == 1
    for body in (good[:-3], b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\x0f"):
        with pytest.raises(BodyError) as info:
            zipkin_proto.decode_request(body)
        assert info.value.status == 400
    assert not _flat(zipkin_proto.decode_request(b"").data)


def _call_tree(topology: str, calls: int = 4) -> list[dict[str, Any]]:
    """A frontend root calling ``backend`` ``calls`` times through a client span; each server
    call has a local child. ``classic``: the server half reuses the client's span id (Zipkin's
    default, ``shared``); ``own-ids``: B3 with a new id per hop; ``py_zipkin``: a new id per
    hop that py_zipkin still marks ``shared`` (its server joined an incoming context)."""
    root = {
        "traceId": TRACE,
        "id": "00000000000000aa",
        "name": "root",
        "kind": "SERVER",
        "timestamp": 1,
        "duration": 1000,
        "localEndpoint": {"serviceName": "frontend"},
    }
    spans: list[dict[str, Any]] = [root]
    for i in range(calls):
        client_id = f"{0x100 + i:016x}"
        server_id = client_id if topology == "classic" else f"{0x200 + i:016x}"
        spans.append(
            {
                "traceId": TRACE,
                "id": client_id,
                "parentId": root["id"],
                "name": "get",
                "kind": "CLIENT",
                "timestamp": 10,
                "duration": 100,
                "localEndpoint": {"serviceName": "frontend"},
            }
        )
        server = {
            "traceId": TRACE,
            "id": server_id,
            "name": "get",
            "kind": "SERVER",
            "parentId": root["id"] if topology == "classic" else client_id,
            "timestamp": 20,
            "duration": 50,
            "localEndpoint": {"serviceName": "backend"},
        }
        if topology != "own-ids":
            server["shared"] = True
        spans.append(server)
        spans.append(
            {
                "traceId": TRACE,
                "id": f"{0x300 + i:016x}",
                "parentId": server_id,
                "name": "load",
                "timestamp": 25,
                "duration": 10,
                "localEndpoint": {"serviceName": "backend"},
            }
        )
    return spans


@pytest.mark.parametrize("topology", ["classic", "own-ids", "py_zipkin"])
def test_shared_spans_make_whole_trees_and_one_edge_per_call(topology: str) -> None:
    spans = _call_tree(topology)
    # The callee and the caller report separately, as two processes do; the server first.
    frontend = [s for s in spans if s["localEndpoint"]["serviceName"] == "frontend"]
    backend = [s for s in spans if s["localEndpoint"]["serviceName"] == "backend"]
    records: list[SpanView] = []
    graph = ServiceGraph()
    for part in (backend, frontend):
        views = span_views(zipkin.decode_request(json.dumps(part).encode()).data)
        graph.add(views, now=0.0)
        records += views
    # What streams does when it decides the trace (partition_processor._decide).
    for old, new in relink_orphaned_shared_servers(records):
        graph.relink(records[0].trace_id, old, new)
    by_id = {r.span_id: r for r in records}
    assert len(by_id) == len(records) == 13  # no two spans share an id in storage
    for r in records:
        if r.name == "root":
            continue
        parent = by_id[r.parent_span_id]  # every parent exists: no subtree is cut off
        if r.kind == 2:  # each server hangs under its caller's client span
            assert (parent.kind, parent.service_name) == (3, "frontend")
        if r.name == "load":  # each server's children hang under that server
            assert (parent.kind, parent.service_name) == (2, "backend")
    edges = graph.drain("t", 0, 1)["edges"]
    assert [(e["client_service"], e["server_service"], e["connection_type"]) for e in edges] == [
        ("frontend", "backend", "")
    ]
    assert edges[0]["calls"] == 4  # 4 calls -> 4, not 8


def test_relink_leaves_spans_with_a_present_parent_alone() -> None:
    records = span_views(zipkin.decode_request(json.dumps(_call_tree("classic")).encode()).data)
    before = [r.parent_span_id for r in records]
    assert relink_orphaned_shared_servers(records) == []
    assert [r.parent_span_id for r in records] == before


@pytest.mark.parametrize(
    ("core", "kind", "times"),
    [
        ({"ms": 10, "ws": 15}, trace_pb2.Span.SPAN_KIND_PRODUCER, (10_000, 15_000)),
        ({"wr": 20, "mr": 26}, trace_pb2.Span.SPAN_KIND_CONSUMER, (20_000, 26_000)),
        ({"mr": 30}, trace_pb2.Span.SPAN_KIND_CONSUMER, (30_000, 30_000)),
    ],
)
def test_v1_messaging_spans(core: dict[str, int], kind: int, times: tuple[int, int]) -> None:
    endpoint = {"serviceName": "queue-user"}
    v1 = {
        "traceId": TRACE,
        "id": "0000000000000009",
        "name": "send",
        "annotations": [
            {"timestamp": ts, "value": value, "endpoint": endpoint} for value, ts in core.items()
        ],
        "binaryAnnotations": [{"key": "ma", "value": True, "endpoint": {"serviceName": "kafka"}}],
    }
    [(_res, span)] = _flat(zipkin_v1.decode_request(json.dumps([v1]).encode()).data)
    assert span.kind == kind
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == times
    assert not span.events  # the core annotations became the kind and times
    assert attributes_to_dict(span.attributes) == {"peer.service": "kafka"}


@pytest.mark.parametrize(
    ("version", "media", "decoder", "why"),
    [
        (1, "application/json", zipkin_v1.decode_request, ""),
        (1, "", zipkin_v1.decode_request, ""),
        (2, "application/json", zipkin.decode_request, ""),
        (2, "application/x-protobuf", zipkin_proto.decode_request, ""),
        (1, "application/x-protobuf", None, "/api/v2/spans"),
        (1, "application/x-thrift", None, "thrift is not accepted"),
        (2, "application/x-thrift", None, "thrift is not accepted"),
        (2, "text/xml", None, "JSON or protobuf"),
    ],
)
def test_each_endpoint_takes_its_formats_and_names_them_otherwise(
    version: int, media: str, decoder: Any, why: str
) -> None:
    found, reason = decoder_for(version, media)
    assert found is decoder
    assert why in reason


def test_debug_flag_and_local_port_are_kept() -> None:
    v2 = {
        "traceId": "1",
        "id": "2",
        "debug": True,
        "localEndpoint": {"serviceName": "a", "port": 9},
    }
    v1 = {"traceId": "1", "id": "3", "debug": True}
    for decoded in (
        zipkin.decode_request(json.dumps([v2]).encode()),
        zipkin_v1.decode_request(json.dumps([v1]).encode()),
    ):
        [(_res, span)] = _flat(decoded.data)
        assert attributes_to_dict(span.attributes)["zipkin.debug"] == "true"
    [(_res, span)] = _flat(zipkin.decode_request(json.dumps([v2]).encode()).data)
    assert attributes_to_dict(span.attributes)["network.local.port"] == "9"


def test_v1_span_with_too_many_annotations_is_refused_alone() -> None:
    huge = {
        "traceId": TRACE,
        "id": "0000000000000001",
        "annotations": [{"timestamp": 1, "value": "x"}] * (zipkin_v1.MAX_V1_FIELDS + 1),
    }
    fine = {
        "traceId": TRACE,
        "id": "0000000000000002",
        "annotations": [{"timestamp": 1, "value": "x", "endpoint": {"serviceName": "a"}}],
    }
    decoded = zipkin_v1.decode_request(json.dumps([huge, fine]).encode())
    assert dict(decoded.rejected) == {"invalid_annotations": 1}
    assert [s.span_id.hex() for _r, s in _flat(decoded.data)] == ["0000000000000002"]


def test_a_request_over_the_span_bound_is_a_413_before_any_span_work() -> None:
    n = zipkin.MAX_SPANS_PER_REQUEST + 1
    bodies = [
        (zipkin.decode_request, b"[" + b",".join([b"{}"] * n) + b"]"),
        (zipkin_v1.decode_request, b"[" + b",".join([b"{}"] * n) + b"]"),
        (zipkin_proto.decode_request, b"\x0a\x00" * n),
    ]
    for decode, body in bodies:
        with pytest.raises(BodyError) as info:
            decode(body)
        assert (info.value.status, info.value.reason) == (413, "too_many_spans")
    # exactly at the bound: decoded (validation then refuses these id-less spans one by one)
    decoded = zipkin_proto.decode_request(b"\x0a\x00" * zipkin.MAX_SPANS_PER_REQUEST)
    assert len(_flat(decoded.data)) == zipkin.MAX_SPANS_PER_REQUEST

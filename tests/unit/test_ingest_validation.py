"""Per-span validation and malformed-input handling of ingest (ingest/README.md, "Span
rejection reasons"): times storage cannot hold, all-zero parents, malformed Zipkin and
OTLP/JSON spans, deep JSON, stalled bodies and decoder bugs are answered and counted, and
never cost the good spans of the same request."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.proto.trace.v1 import trace_pb2
from prometheus_client import REGISTRY

from ingest import http_receiver, metrics
from ingest.admission import AdmissionConfig, SpanAdmission
from ingest.decoded import Decoded
from ingest.errors import MAX_JSON_DEPTH, BodyError, nesting_exceeds, parse_json_body
from ingest.http_receiver import build_app
from ingest.kafka_publisher import PublishError
from ingest.otlp_json import decode_request as decode_otlp_json
from ingest.otlp_split import span_problem, split_by_partition
from ingest.zipkin import decode_request as decode_zipkin
from ingest.zipkin_receiver import build_zipkin_app
from schemas.span_limits import MAX_TIME_UNIX_NANO
from tests.recording_publisher import RecordingPublisher

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"
ZIPKIN_GOOD: dict[str, Any] = {
    "traceId": "463ac35c9f6413ad48485a3953bb6124",
    "id": "a2fb4a1d1a96d312",
    "name": "get",
    "timestamp": 1472470996199000,
    "duration": 207000,
    "localEndpoint": {"serviceName": "frontend"},
}


def _spans(data: trace_pb2.TracesData) -> list[trace_pb2.Span]:
    return [s for rs in data.resource_spans for ss in rs.scope_spans for s in ss.spans]


def _one_span_data(**fields: Any) -> tuple[trace_pb2.TracesData, trace_pb2.Span]:
    data = trace_pb2.TracesData()
    span = (
        data.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="s", **fields)
    )
    return data, span


# -- times and parents (otlp_split) ------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"start_time_unix_nano": 2**63},
        {"end_time_unix_nano": 2**63},
        {"start_time_unix_nano": 2**64 - 1, "end_time_unix_nano": 2**64 - 1},
        {"start_time_unix_nano": 9_300_000_000_000_000_000},
    ],
)
def test_span_time_at_or_above_2_63_is_rejected(fields: dict[str, int]) -> None:
    data, span = _one_span_data(**fields)
    assert span_problem(span) == "time_out_of_range"
    result = split_by_partition(data, 4)
    assert result.accepted == 0 and dict(result.rejected) == {"time_out_of_range": 1}


def test_event_time_out_of_range_is_rejected_and_max_time_is_kept() -> None:
    data = trace_pb2.TracesData()
    ss = data.resource_spans.add().scope_spans.add()
    edge = ss.spans.add(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        start_time_unix_nano=MAX_TIME_UNIX_NANO,
        end_time_unix_nano=MAX_TIME_UNIX_NANO,
    )
    edge.events.add(time_unix_nano=MAX_TIME_UNIX_NANO, name="last representable")
    bad = ss.spans.add(trace_id=b"\x01" * 16, span_id=b"\x03" * 8)
    bad.events.add(time_unix_nano=1)
    bad.events.add(time_unix_nano=2**63)
    result = split_by_partition(data, 2)
    assert result.accepted == 1 and dict(result.rejected) == {"time_out_of_range": 1}
    [td] = result.by_partition.values()
    assert [s.span_id for s in _spans(td)] == [b"\x02" * 8]


def test_all_zero_parent_becomes_root() -> None:
    data, _ = _one_span_data(parent_span_id=bytes(8))
    result = split_by_partition(data, 4)
    [td] = result.by_partition.values()
    [span] = _spans(td)
    assert span.parent_span_id == b"" and result.accepted == 1


# -- JSON guard ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, False),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), True),
        (b"[" * 100_000 + b"]" * 100_000, True),
        (b"[" * 100_000, True),
        (b'["' + b"[" * 500 + b'"]', False),  # brackets inside a string do not nest
        (b'["\\"' + b"[" * 500 + b'"]', False),  # nor after an escaped quote
        (b'["\\\\"' + b"[" * 500 + b'"]', True),  # an escaped backslash ends the string
        (b'{"a":' * 101 + b"1" + b"}" * 101, True),
        (b"]" * 500 + b"[" * 5, False),  # unbalanced but shallow: json.loads says why
    ],
)
def test_nesting_exceeds(body: bytes, deep: bool) -> None:
    assert nesting_exceeds(body) is deep


def test_100k_deep_json_is_a_quick_400() -> None:
    started = time.perf_counter()
    for decode in (decode_zipkin, decode_otlp_json):
        with pytest.raises(BodyError) as info:
            decode(b"[" * 100_000 + b"]" * 100_000)
        assert info.value.status == 400 and info.value.reason == "json_too_deep"
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize("body", [b"[NaN]", b"[Infinity]", b"[-Infinity]", b"\xff\xfe[", b"[1"])
def test_non_json_is_invalid_json(body: bytes) -> None:
    with pytest.raises(BodyError) as info:
        parse_json_body(body)
    assert info.value.reason == "invalid_json"


def _kvlist(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(depth):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


def test_otlp_json_nested_1000_deep_is_a_400_not_recursion_error() -> None:
    # Written by hand: json.dumps itself cannot encode 1000 levels.
    value = b'{"kvlistValue":{"values":[{"key":"k","value":' * 1000 + b"{}" + b"}]}}" * 1000
    body = (
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"%s","spanId":"%s",'
        b'"attributes":[{"key":"a","value":%s}]}]}]}]}' % (TRACE.encode(), SPAN.encode(), value)
    )
    with pytest.raises(BodyError) as info:
        decode_otlp_json(body)
    assert info.value.reason == "json_too_deep"


def test_otlp_json_deepest_accepted_nesting_still_decodes_and_reserializes() -> None:
    # 7 levels down to a span + 4 per kvlist level: the deepest that fits MAX_JSON_DEPTH.
    depth = (MAX_JSON_DEPTH - 7 - 4) // 4
    span = {"traceId": TRACE, "spanId": SPAN, "attributes": [{"key": "a", "value": _kvlist(depth)}]}
    decoded = decode_otlp_json(_otlp_json(span))
    assert not decoded.rejected
    # What ingest writes to Kafka must decode again (protobuf's own depth limit is 100).
    again = trace_pb2.TracesData.FromString(decoded.data.SerializeToString())
    assert len(_spans(again)) == 1


# -- Zipkin ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"timestamp": -5}, "invalid_timestamp"),
        ({"timestamp": 1e300}, "invalid_timestamp"),
        ({"timestamp": 1.5}, "invalid_timestamp"),
        ({"timestamp": True}, "invalid_timestamp"),
        ({"timestamp": "soon"}, "invalid_timestamp"),
        ({"timestamp": 2**63}, "invalid_timestamp"),
        ({"timestamp": 9_300_000_000_000_000}, "time_out_of_range"),
        ({"duration": -1}, "invalid_duration"),
        ({"timestamp": MAX_TIME_UNIX_NANO // 1000, "duration": 10}, "time_out_of_range"),
        ({"remoteEndpoint": {"port": 10**22}}, "invalid_port"),
        ({"remoteEndpoint": {"port": 70000}}, "invalid_port"),
        ({"localEndpoint": {"serviceName": "x", "port": -1}}, "invalid_port"),
        ({"remoteEndpoint": "db"}, "invalid_endpoint"),
        ({"localEndpoint": {"serviceName": 5}}, "invalid_endpoint"),
        ({"annotations": 5}, "invalid_annotations"),
        ({"annotations": [5]}, "invalid_annotations"),
        ({"annotations": [{"timestamp": 1, "value": {}}]}, "invalid_annotations"),
        ({"annotations": [{"timestamp": 2**62, "value": "x"}]}, "time_out_of_range"),
        ({"tags": ["a", "b"]}, "invalid_tags"),
        ({"tags": {"a": {"nested": 1}}}, "invalid_tags"),
        ({"tags": {"a": None}}, "invalid_tags"),
        ({"name": "\ud800"}, "invalid_utf8"),
        ({"tags": {"\udc80": "v"}}, "invalid_utf8"),
        ({"localEndpoint": {"serviceName": "\ud800"}}, "invalid_utf8"),
        ({"name": 5}, "malformed_span"),
        ({"kind": ["CLIENT"]}, "invalid_kind"),
        ({"kind": "SERVR"}, "invalid_kind"),
        ({"traceId": 5}, "invalid_trace_id_encoding"),
        ({"traceId": "g" * 32}, "invalid_trace_id_encoding"),
        ({"id": "xyz"}, "invalid_span_id_encoding"),
        ({"parentId": "not hex"}, "invalid_parent_span_id_encoding"),
    ],
)
def test_zipkin_malformed_span_is_rejected_alone_with_a_reason(
    change: dict[str, Any], reason: str
) -> None:
    bad = {**ZIPKIN_GOOD, "id": "00000000000000b0", **change}
    body = json.dumps([ZIPKIN_GOOD, bad]).encode()
    decoded = decode_zipkin(body)
    assert dict(decoded.rejected) == {reason: 1}
    assert [s.span_id.hex() for s in _spans(decoded.data)] == [ZIPKIN_GOOD["id"]]
    if reason == "time_out_of_range":
        return  # validation, not malformation: alone it is a partial success, not a 400
    with pytest.raises(BodyError) as info:
        decode_zipkin(json.dumps([bad]).encode())
    assert info.value.status == 400 and dict(info.value.rejected) == {reason: 1}


def test_zipkin_ids_of_every_length() -> None:
    for length in range(0, 41):
        z = {**ZIPKIN_GOOD, "traceId": "a" * length, "id": "b" * length}
        try:
            decoded = decode_zipkin(json.dumps([z]).encode())
        except BodyError as exc:
            pytest.fail(f"length {length}: {exc}")
        result = split_by_partition(decoded.data, 4)
        assert result.accepted + result.rejected_total == 1
        assert result.accepted == (1 <= length <= 16), length


def test_zipkin_zero_parent_is_root() -> None:
    decoded = decode_zipkin(json.dumps([{**ZIPKIN_GOOD, "parentId": "0" * 16}]).encode())
    result = split_by_partition(decoded.data, 4)
    [td] = result.by_partition.values()
    assert _spans(td)[0].parent_span_id == b""


# -- OTLP/JSON ---------------------------------------------------------------------------


def _otlp_json(*spans: Any, resource: Any = None, scope: Any = None) -> bytes:
    rs: dict[str, Any] = {"scopeSpans": [{"spans": list(spans)}]}
    if resource is not None:
        rs["resource"] = resource
    if scope is not None:
        rs["scopeSpans"][0]["scope"] = scope
    return json.dumps({"resourceSpans": [rs]}).encode()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"attributes": [{"key": "a", "value": {"kvlistValue": 5}}]}, "invalid_attribute"),
        ({"attributes": [{"key": "a", "value": {"intValue": "x"}}]}, "invalid_attribute"),
        ({"attributes": 5}, "invalid_attribute"),
        ({"events": [{"timeUnixNano": -1}]}, "invalid_event"),
        ({"links": [{"traceId": "zz"}]}, "invalid_link"),
        ({"links": [5]}, "invalid_link"),
        ({"startTimeUnixNano": "-1"}, "invalid_timestamp"),
        ({"endTimeUnixNano": 1e300}, "invalid_timestamp"),
        ({"startTimeUnixNano": 1.5}, "invalid_timestamp"),
        ({"startTimeUnixNano": "18446744073709551616"}, "invalid_timestamp"),
        ({"name": "\ud800"}, "invalid_utf8"),
        ({"name": 5}, "malformed_span"),
        ({"droppedAttributesCount": -1}, "malformed_span"),
        ({"traceId": 5}, "invalid_trace_id_encoding"),
        ({"traceId": "W47/95gDgQPSabYzgT/GDA=="}, "trace_id_base64_not_hex"),
        ({"spanId": "7uGbfsPBsXQ="}, "span_id_base64_not_hex"),
        ({"parentSpanId": "abc"}, "invalid_parent_span_id_encoding"),
    ],
)
def test_otlp_json_malformed_span_is_rejected_alone(change: dict[str, Any], reason: str) -> None:
    good = {"traceId": TRACE, "spanId": SPAN}
    decoded = decode_otlp_json(_otlp_json(good, {**good, **change}))
    assert dict(decoded.rejected) == {reason: 1}
    assert len(_spans(decoded.data)) == 1


def test_otlp_json_uint64_times_above_2_63_reach_validation() -> None:
    span = {"traceId": TRACE, "spanId": SPAN, "startTimeUnixNano": "9300000000000000000"}
    decoded = decode_otlp_json(_otlp_json(span))
    assert not decoded.rejected
    assert dict(split_by_partition(decoded.data, 4).rejected) == {"time_out_of_range": 1}


def test_otlp_json_bad_resource_or_scope_rejects_its_spans() -> None:
    good = {"traceId": TRACE, "spanId": SPAN}
    bad_resource = json.loads(_otlp_json(good, good, resource={"attributes": 5}))
    bad_scope = json.loads(_otlp_json(good, scope={"name": ["x"]}))
    fine = json.loads(_otlp_json(good))
    doc = {
        "resourceSpans": bad_resource["resourceSpans"]
        + bad_scope["resourceSpans"]
        + fine["resourceSpans"]
    }
    decoded = decode_otlp_json(json.dumps(doc).encode())
    assert dict(decoded.rejected) == {"invalid_resource": 2, "invalid_scope": 1}
    assert len(_spans(decoded.data)) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"resourceSpans": 5}',
        b'{"resourceSpans": [5]}',
        b'{"resourceSpans": [{"scopeSpans": {}}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": "x"}]}]}',
    ],
)
def test_otlp_json_structure_hiding_the_spans_is_a_400(body: bytes) -> None:
    with pytest.raises(BodyError) as info:
        decode_otlp_json(body)
    assert info.value.status == 400 and info.value.reason == "invalid_otlp_json"


# -- receivers: responses and counts --------------------------------------------------------


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _exporter(publisher: RecordingPublisher) -> SpanAdmission:
    return SpanAdmission(publisher, AdmissionConfig(topic="t", partitions=4))  # type: ignore[arg-type]


def test_zipkin_receiver_answers_and_counts_malformed_bodies() -> None:
    app = build_zipkin_app(_exporter(RecordingPublisher()), 1 << 20)

    async def go() -> None:
        async with TestClient(TestServer(app)) as client:
            before = _sample(
                "tracehouse_ingest_requests_total", protocol="zipkin", outcome="invalid_zipkin"
            )
            bad = {**ZIPKIN_GOOD, "timestamp": -1}
            resp = await client.post("/api/v2/spans", data=json.dumps([bad]))
            assert resp.status == 400 and "invalid_timestamp" in await resp.text()
            assert (
                _sample(
                    "tracehouse_ingest_requests_total", protocol="zipkin", outcome="invalid_zipkin"
                )
                == before + 1
            )
            rejected = _sample(
                "tracehouse_ingest_spans_rejected_total",
                protocol="zipkin",
                reason="invalid_timestamp",
            )
            assert rejected >= 1
            resp = await client.post("/api/v2/spans", data=b"[" * 100_000 + b"]" * 100_000)
            assert resp.status == 400
            out_of_range = {**ZIPKIN_GOOD, "id": "00000000000000b0", "timestamp": 9.3e15}
            resp = await client.post("/api/v2/spans", data=json.dumps([ZIPKIN_GOOD, out_of_range]))
            assert resp.status == 202
            assert await resp.json() == {
                "rejectedSpans": 1,
                "errorMessage": "rejected spans: 1 time_out_of_range",
            }

    asyncio.run(go())


def test_otlp_json_partial_success_names_the_malformed_span() -> None:
    publisher = RecordingPublisher()
    app = build_app(_exporter(publisher), 1 << 20)
    good = {"traceId": TRACE, "spanId": SPAN, "parentSpanId": "0" * 16}
    bad = {**good, "spanId": "0102030405060708", "attributes": [{"key": "a", "value": 5}]}

    async def go() -> None:
        async with TestClient(TestServer(app)) as client:
            resp = await client.post(
                "/v1/traces",
                data=_otlp_json(good, bad),
                headers={"Content-Type": "application/json"},
            )
            assert resp.status == 200
            assert await resp.json() == {
                "partialSuccess": {
                    "rejectedSpans": "1",
                    "errorMessage": "rejected spans: 1 invalid_attribute",
                }
            }

    asyncio.run(go())
    [value] = publisher.values
    [span] = _spans(trace_pb2.TracesData.FromString(value))
    assert span.span_id.hex() == SPAN and span.parent_span_id == b""


def test_decoder_bug_is_a_counted_400(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_body: bytes) -> Decoded:
        raise KeyError("bug")

    monkeypatch.setattr(http_receiver, "decode_protobuf", broken)
    app = build_app(_exporter(RecordingPublisher()), 1 << 20)
    labels = {"protocol": "otlp_http", "outcome": "invalid_request"}
    before = _sample("tracehouse_ingest_requests_total", **labels)

    async def go() -> None:
        async with TestClient(TestServer(app)) as client:
            resp = await client.post(
                "/v1/traces", data=b"", headers={"Content-Type": "application/x-protobuf"}
            )
            assert resp.status == 400

    asyncio.run(go())
    assert _sample("tracehouse_ingest_requests_total", **labels) == before + 1


def test_stalled_body_is_a_408(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_receiver, "BODY_IDLE_TIMEOUT_SECONDS", 0.3)
    app = build_app(_exporter(RecordingPublisher()), 1 << 20)
    labels = {"protocol": "otlp_http", "outcome": "read_timeout"}
    before = _sample("tracehouse_ingest_requests_total", **labels)

    async def go() -> None:
        async with TestServer(app) as server:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(
                b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                b"Content-Length: 1000\r\n\r\n" + b"\x0a" * 10
            )
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 5)
            assert status.startswith(b"HTTP/1.1 408"), status
            writer.close()

    asyncio.run(go())
    assert _sample("tracehouse_ingest_requests_total", **labels) == before + 1
    assert metrics.IN_FLIGHT._value.get() == 0


def test_kafka_failure_still_counts_decoder_rejections() -> None:
    class Failing(RecordingPublisher):
        def publish(
            self, topic: str, value: bytes, key: bytes | None, partition: int | None
        ) -> asyncio.Future[None]:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            fut.set_exception(PublishError("down", retryable=True))
            return fut

    exporter = _exporter(Failing())
    data = decode_otlp_json(_otlp_json({"traceId": TRACE, "spanId": SPAN}, 5))
    labels = {"protocol": "unit_validation", "reason": "malformed_span"}

    async def go() -> None:
        with pytest.raises(PublishError):
            await exporter.export(data.data, "unit_validation", "", data.rejected)

    asyncio.run(go())
    assert _sample("tracehouse_ingest_spans_rejected_total", **labels) == 1
    assert _sample("tracehouse_ingest_spans_received_total", protocol="unit_validation") == 2

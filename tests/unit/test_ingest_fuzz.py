"""Property-based tests of ingest's decoders and validation (hypothesis).

Whatever a client sends — OTLP protobuf with extreme values, OTLP/JSON or Zipkin JSON with
well-formed structure but hostile leaves, arbitrary JSON, arbitrary bytes — the decoders raise
nothing but ``BodyError``, every span is either accepted or rejected with a reason
(``accepted + rejected == received``), and what is accepted is storable: times inside
``DateTime64(9)``, 16-byte trace ids, 8-byte span ids, parents empty or 8 non-zero bytes, and
the Kafka payload decodes again. ``TRACEHOUSE_FUZZ_EXAMPLES`` raises the example count for a
longer run (e.g. ``TRACEHOUSE_FUZZ_EXAMPLES=5000 pytest tests/unit/test_ingest_fuzz.py``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.admission import AdmissionConfig, SpanAdmission
from ingest.decoded import Decoded, span_count
from ingest.errors import BodyError
from ingest.http_receiver import decode_protobuf
from ingest.otlp_json import decode_request as decode_otlp_json
from ingest.otlp_split import bounded_chunks, split_by_partition
from ingest.zipkin import decode_request as decode_zipkin
from ingest.zipkin_proto import decode_request as decode_zipkin_proto
from ingest.zipkin_v1 import decode_request as decode_zipkin_v1
from schemas.span_limits import MAX_TIME_UNIX_NANO
from tests.otlp_strategies import any_values_from
from tests.recording_publisher import RecordingPublisher

EXAMPLES = int(os.environ.get("TRACEHOUSE_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- shared leaves -------------------------------------------------------------------------

EDGE_TIMES = [
    0,
    1,
    MAX_TIME_UNIX_NANO,
    MAX_TIME_UNIX_NANO + 1,
    2**64 - 1,
    9_300_000_000_000_000_000,
]
uint64_times = st.one_of(st.sampled_from(EDGE_TIMES), st.integers(0, 2**64 - 1))
ids = st.one_of(
    st.binary(min_size=0, max_size=40),
    st.sampled_from([bytes(16), bytes(8), b"\x01" * 16, b"\x01" * 8]),
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=8, max_size=8),
)
strings = st.one_of(st.text(max_size=20), st.just(""), st.just(200_000).map(lambda n: "x" * n))
# Lone surrogates are legal in Python str / JSON escapes but not in protobuf strings.
json_strings = st.one_of(strings, st.sampled_from(["\ud800", "a\udc80b", "\x00", "é"]))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    json_strings,
)
any_json = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)


def _check_accepted(data: trace_pb2.TracesData) -> None:
    for rs in data.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                assert len(span.trace_id) == 16 and span.trace_id != bytes(16)
                assert len(span.span_id) == 8 and span.span_id != bytes(8)
                assert len(span.parent_span_id) in (0, 8) and span.parent_span_id != bytes(8)
                assert span.start_time_unix_nano <= MAX_TIME_UNIX_NANO
                assert span.end_time_unix_nano <= MAX_TIME_UNIX_NANO
                for event in span.events:
                    assert event.time_unix_nano <= MAX_TIME_UNIX_NANO


def _validate(decoded: Decoded, received: int | None) -> None:
    """Split (and size-bound) what a decoder produced; check accounting and storability."""
    in_data = span_count(decoded.data)
    if received is not None:
        assert in_data + sum(decoded.rejected.values()) == received
    result = split_by_partition(decoded.data, 4)
    assert result.accepted + result.rejected_total == in_data
    assert all(reason for reason in result.rejected)
    chunked = 0
    too_large = 0
    for p, td in result.by_partition.items():
        _check_accepted(td)
        chunks, big = bounded_chunks(td, 100_000, result.counts[p])
        too_large += len(big)
        for chunk in chunks:
            again = trace_pb2.TracesData.FromString(chunk.payload)  # what streams will read
            assert span_count(again) == chunk.spans
            _check_accepted(again)
            chunked += chunk.spans
    assert chunked + too_large == result.accepted


# -- OTLP protobuf -------------------------------------------------------------------------

any_values = any_values_from(strings, max_leaves=10)
attributes = st.lists(
    st.builds(lambda k, v: common_pb2.KeyValue(key=k, value=v), strings, any_values), max_size=6
)


@st.composite
def otlp_spans(draw: st.DrawFn) -> trace_pb2.Span:
    span = trace_pb2.Span(
        trace_id=draw(ids),
        span_id=draw(ids),
        parent_span_id=draw(st.one_of(st.just(b""), ids)),
        name=draw(strings),
        kind=draw(st.integers(0, 6)),  # type: ignore[arg-type]
        start_time_unix_nano=draw(uint64_times),
        end_time_unix_nano=draw(uint64_times),
        attributes=draw(attributes),
    )
    for t, name in draw(st.lists(st.tuples(uint64_times, strings), max_size=3)):
        span.events.add(time_unix_nano=t, name=name)
    for tid, sid in draw(st.lists(st.tuples(ids, ids), max_size=2)):
        span.links.add(trace_id=tid, span_id=sid)
    return span


@st.composite
def traces_data(draw: st.DrawFn) -> trace_pb2.TracesData:
    data = trace_pb2.TracesData()
    for _ in range(draw(st.integers(0, 3))):
        rs = data.resource_spans.add()
        rs.resource.attributes.extend(draw(attributes))
        for _ in range(draw(st.integers(0, 2))):
            ss = rs.scope_spans.add()
            ss.scope.name = draw(strings)
            for span in draw(st.lists(otlp_spans(), max_size=5)):
                ss.spans.append(span)
                if draw(st.booleans()):
                    ss.spans.append(span)  # duplicated span
    return data


@FUZZ
@given(traces_data())
def test_otlp_protobuf_every_span_accepted_or_rejected(data: trace_pb2.TracesData) -> None:
    received = span_count(data)
    decoded = decode_protobuf(data.SerializeToString())
    _validate(decoded, received)
    # The whole exporter path too: outcome accounting and what reaches "Kafka".
    publisher = RecordingPublisher()
    exporter = SpanAdmission(
        publisher,  # type: ignore[arg-type]
        AdmissionConfig(topic="t", partitions=3, max_message_bytes=150_000),
    )
    outcome = asyncio.run(exporter.export(decoded.data, "fuzz_otlp"))
    assert outcome.accepted + outcome.rejected == received
    published = 0
    for value in publisher.values:
        again = trace_pb2.TracesData.FromString(value)
        _check_accepted(again)
        published += span_count(again)
    assert published == outcome.accepted


@FUZZ
@given(st.binary(max_size=300))
def test_otlp_protobuf_arbitrary_bytes(body: bytes) -> None:
    try:
        decoded = decode_protobuf(body)
    except BodyError as exc:
        assert exc.status == 400
        return
    _validate(decoded, None)


# -- OTLP/JSON -----------------------------------------------------------------------------


def _hex_or_hostile(raw: bytes) -> st.SearchStrategy[Any]:
    return st.sampled_from(
        [raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode(), "", None, 5, "zz", "abc"]
    )


json_times: st.SearchStrategy[Any] = st.one_of(
    uint64_times,
    uint64_times.map(str),
    st.sampled_from([-1, "-1", 1e300, 1.5, "1.5", 2**64, str(2**64), True, None, "", "x", []]),
)
json_any_value = st.recursive(
    st.one_of(
        st.builds(lambda s: {"stringValue": s}, json_strings),
        st.builds(lambda i: {"intValue": i}, st.one_of(st.integers(), st.integers().map(str))),
        st.builds(lambda b: {"boolValue": b}, st.booleans()),
        st.builds(lambda f: {"doubleValue": f}, st.floats(allow_nan=False)),
        st.sampled_from(
            [{}, 5, "x", {"intValue": "nope"}, {"kvlistValue": 5}, {"bytesValue": "?"}]
        ),
    ),
    lambda children: st.one_of(
        st.builds(lambda vs: {"arrayValue": {"values": vs}}, st.lists(children, max_size=3)),
        st.builds(
            lambda kvs: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in kvs]}},
            st.lists(st.tuples(json_strings, children), max_size=3),
        ),
    ),
    max_leaves=8,
)
json_attributes = st.one_of(
    st.lists(
        st.builds(lambda k, v: {"key": k, "value": v}, json_strings, json_any_value), max_size=4
    ),
    st.sampled_from([5, "x", {}]),
)


@st.composite
def json_spans(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(any_json)  # not even an object, sometimes
    span: dict[str, Any] = {
        "traceId": draw(ids.flatmap(_hex_or_hostile)),
        "spanId": draw(ids.flatmap(_hex_or_hostile)),
        "name": draw(st.one_of(json_strings, json_scalars)),
        "startTimeUnixNano": draw(json_times),
        "endTimeUnixNano": draw(json_times),
        "kind": draw(st.one_of(st.integers(-5, 10), st.sampled_from(["SPAN_KIND_SERVER", "x"]))),
        "attributes": draw(json_attributes),
    }
    if draw(st.booleans()):
        span["parentSpanId"] = draw(ids.flatmap(_hex_or_hostile))
    if draw(st.booleans()):
        span["events"] = [
            {"timeUnixNano": t, "name": n}
            for t, n in draw(st.lists(st.tuples(json_times, json_strings), max_size=3))
        ]
    if draw(st.booleans()):
        span["links"] = [
            {"traceId": t, "spanId": s}
            for t, s in draw(
                st.lists(
                    st.tuples(ids.flatmap(_hex_or_hostile), ids.flatmap(_hex_or_hostile)),
                    max_size=2,
                )
            )
        ]
    if draw(st.booleans()):
        span[draw(st.text(max_size=6))] = draw(any_json)  # unknown (or clashing) field
    return span


@st.composite
def otlp_json_requests(draw: st.DrawFn) -> tuple[Any, int]:
    count = 0
    resource_spans: list[Any] = []
    for _ in range(draw(st.integers(0, 3))):
        scope_spans: list[Any] = []
        for _ in range(draw(st.integers(0, 2))):
            spans: list[Any] = draw(st.lists(json_spans(), max_size=5))
            if draw(st.booleans()) and spans:
                spans.append(spans[0])  # duplicated span
            count += len(spans)
            scope_spans.append({"scope": {"name": draw(json_strings)}, "spans": spans})
        rs: dict[str, Any] = {"scopeSpans": scope_spans}
        if draw(st.booleans()):
            rs["resource"] = {"attributes": draw(json_attributes)}
        resource_spans.append(rs)
    return {"resourceSpans": resource_spans}, count


def _decode_counting(decode: Any, body: bytes, received: int | None) -> None:
    try:
        decoded = decode(body)
    except BodyError as exc:
        assert exc.status == 400 and exc.reason
        if received is not None and exc.rejected:
            assert sum(exc.rejected.values()) == received
        return
    _validate(decoded, received)


@FUZZ
@given(otlp_json_requests())
def test_otlp_json_structured_with_hostile_leaves(request: tuple[Any, int]) -> None:
    doc, received = request
    _decode_counting(decode_otlp_json, json.dumps(doc).encode(), received)


@FUZZ
@given(any_json)
def test_otlp_json_arbitrary_json(doc: Any) -> None:
    _decode_counting(decode_otlp_json, json.dumps(doc).encode(), None)
    _decode_counting(decode_otlp_json, json.dumps({"resourceSpans": doc}).encode(), None)


@FUZZ
@given(st.binary(max_size=300))
def test_json_decoders_arbitrary_bytes(body: bytes) -> None:
    _decode_counting(decode_otlp_json, body, None)
    _decode_counting(decode_zipkin, body, None)


# -- Zipkin --------------------------------------------------------------------------------

zipkin_micros = st.one_of(
    st.integers(0, 2**63 - 1),
    st.sampled_from(
        [0, 1472470996199000, 9_300_000_000_000_000, -1, 2**63, 1e300, 1.5, 1e15, True, "12", "x"]
    ),
    st.none(),
)
zipkin_ports = st.one_of(
    st.integers(-10, 70_000), st.sampled_from([10**22, "80", 8080.0, None, True, "x"])
)
zipkin_endpoint = st.one_of(
    st.none(),
    st.sampled_from([5, "db", []]),
    st.fixed_dictionaries(
        {},
        optional={
            "serviceName": st.one_of(json_strings, st.integers()),
            "ipv4": json_strings,
            "port": zipkin_ports,
        },
    ),
)


def _zipkin_id(width: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.binary(min_size=0, max_size=20).map(lambda b: b.hex()[: width * 4 + 8]),
        st.sampled_from(["0" * width * 2, "1", "xyz", "", None, 5, "f" * 40]),
    )


@st.composite
def zipkin_spans(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(any_json)
    span: dict[str, Any] = {
        "traceId": draw(_zipkin_id(16)),
        "id": draw(_zipkin_id(8)),
        "timestamp": draw(zipkin_micros),
        "duration": draw(zipkin_micros),
        "name": draw(st.one_of(json_strings, json_scalars)),
        "kind": draw(st.one_of(st.sampled_from(["CLIENT", "SERVER", "x", None, 5]))),
        "shared": draw(st.one_of(st.booleans(), st.none())),
        "localEndpoint": draw(zipkin_endpoint),
        "remoteEndpoint": draw(zipkin_endpoint),
        "tags": draw(
            st.one_of(
                st.dictionaries(json_strings, json_scalars, max_size=4),
                st.sampled_from([["a"], 5, {"a": {"b": 1}}, {"a": [1]}]),
            )
        ),
        "annotations": draw(
            st.one_of(
                st.lists(
                    st.fixed_dictionaries({"timestamp": zipkin_micros, "value": json_scalars}),
                    max_size=3,
                ),
                st.sampled_from([5, "x", [5], [{}]]),
            )
        ),
    }
    if draw(st.booleans()):
        span["parentId"] = draw(_zipkin_id(8))
    return span


@FUZZ
@given(st.lists(zipkin_spans(), max_size=8))
def test_zipkin_structured_with_hostile_leaves(spans: list[Any]) -> None:
    if spans and isinstance(spans[0], dict):
        spans.append(spans[0])  # duplicated span
    _decode_counting(decode_zipkin, json.dumps(spans).encode(), len(spans))


@FUZZ
@given(any_json)
def test_zipkin_arbitrary_json(doc: Any) -> None:
    _decode_counting(decode_zipkin, json.dumps(doc).encode(), None)
    _decode_counting(decode_zipkin, json.dumps([doc]).encode(), 1)


# -- Zipkin v1 JSON and v2 proto3 ------------------------------------------------------------

zipkin_v1_endpoint = st.one_of(st.none(), zipkin_endpoint)


@st.composite
def zipkin_v1_spans(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(any_json)
    core = st.sampled_from(["cs", "cr", "sr", "ss", "ms", "mr", "ws", "custom", "cs"])
    span: dict[str, Any] = {
        "traceId": draw(_zipkin_id(16)),
        "id": draw(_zipkin_id(8)),
        "name": draw(st.one_of(json_strings, json_scalars)),
        "timestamp": draw(zipkin_micros),
        "duration": draw(zipkin_micros),
        "annotations": draw(
            st.one_of(
                st.lists(
                    st.fixed_dictionaries(
                        {"timestamp": zipkin_micros, "value": st.one_of(core, json_scalars)},
                        optional={"endpoint": zipkin_v1_endpoint},
                    ),
                    max_size=6,
                ),
                st.sampled_from([5, "x", [5], [{}], None]),
            )
        ),
        "binaryAnnotations": draw(
            st.one_of(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "key": st.one_of(
                                st.sampled_from(["ca", "sa", "ma", "lc"]), json_scalars
                            ),
                            "value": st.one_of(json_scalars, st.just(True), st.just([1])),
                        },
                        optional={"endpoint": zipkin_v1_endpoint},
                    ),
                    max_size=4,
                ),
                st.sampled_from([5, [5], [{}], None]),
            )
        ),
    }
    if draw(st.booleans()):
        span["parentId"] = draw(_zipkin_id(8))
    return span


def _v1_counting(spans: list[Any]) -> None:
    # A v1 span holding both RPC halves becomes two spans: count against the translation.
    try:
        decoded = decode_zipkin_v1(json.dumps(spans).encode())
    except BodyError as exc:
        assert exc.status == 400 and exc.reason
        return
    _validate(decoded, None)


@FUZZ
@given(st.lists(zipkin_v1_spans(), max_size=8))
def test_zipkin_v1_structured_with_hostile_leaves(spans: list[Any]) -> None:
    if spans and isinstance(spans[0], dict):
        spans.append(spans[0])  # duplicated span
    _v1_counting(spans)


@FUZZ
@given(any_json)
def test_zipkin_v1_arbitrary_json(doc: Any) -> None:
    _decode_counting(decode_zipkin_v1, json.dumps(doc).encode(), None)
    _v1_counting([doc])


def _proto_field(number: int, payload: bytes) -> bytes:
    def varint(n: int) -> bytes:
        out = b""
        while True:
            out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return out

    return varint(number << 3 | 2) + varint(len(payload)) + payload


@st.composite
def zipkin_proto_span(draw: st.DrawFn) -> bytes:
    """A Span message assembled field by field, with hostile lengths, values and repeats."""
    fields = [
        (1, st.binary(max_size=20)),  # trace_id
        (2, st.binary(max_size=10)),  # parent_id
        (3, st.binary(max_size=10)),  # id
        (5, st.binary(max_size=8)),  # name, may be invalid UTF-8
        (8, st.binary(max_size=24)),  # local endpoint: arbitrary nested bytes
        (10, st.binary(max_size=16)),  # annotation
        (11, st.binary(max_size=16)),  # tag entry
    ]
    body = b""
    for number, strategy in draw(st.lists(st.sampled_from(fields), max_size=10)):
        body += _proto_field(number, draw(strategy))
    scalars = st.sampled_from(
        [b"\x20\x02", b"\x20\x07", b"\x31" + b"\xff" * 8, b"\x38\x01", b"\x68\x01", b"\x20"]
    )
    body += b"".join(draw(st.lists(scalars, max_size=3)))
    return body


@FUZZ
@given(st.lists(zipkin_proto_span(), max_size=6), st.binary(max_size=4))
def test_zipkin_proto_structured_with_hostile_spans(spans: list[bytes], tail: bytes) -> None:
    body = b"".join(_proto_field(1, s) for s in spans)
    _decode_counting(decode_zipkin_proto, body, len(spans))
    _decode_counting(decode_zipkin_proto, body + body, 2 * len(spans))  # duplicated spans
    _decode_counting(decode_zipkin_proto, body + tail, None)


@FUZZ
@given(st.binary(max_size=300))
def test_zipkin_proto_arbitrary_bytes(body: bytes) -> None:
    _decode_counting(decode_zipkin_proto, body, None)


def test_zipkin_proto_deep_nesting_and_huge_counts() -> None:
    nested = b"\x00"
    for _ in range(200):  # unknown group-free nesting inside the local endpoint field
        nested = _proto_field(8, nested)
    _decode_counting(decode_zipkin_proto, _proto_field(1, nested), 1)
    many = _proto_field(1, _proto_field(3, b"\x01" * 8) + _proto_field(1, b"\x02" * 16)) * 20_000
    decoded = decode_zipkin_proto(many)
    assert span_count(decoded.data) == 20_000

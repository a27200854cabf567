"""The Jaeger Thrift decoder against the reference encoder, and under attack (hypothesis).

Reference bodies are written by Apache Thrift's own Python library (``thrift`` on PyPI) with
the Thrift classes ``jaeger-client`` ships for ``jaeger.thrift`` / ``agent.thrift`` — the code
real Python clients send with — in both the binary and the compact protocol. Our decoder must
read back exactly what was written. Hostile input (random bytes, every truncation, flipped
bytes, lengths claiming gigabytes, 100k-deep nesting, fields of the wrong type) may only ever
end in a ``BodyError`` or a per-span rejection with a reason: no other exception, no large
allocation, no recursion error.
"""

from __future__ import annotations

import os
import struct
import time
import tracemalloc
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jaeger_client.thrift_gen.agent import Agent
from jaeger_client.thrift_gen.jaeger import ttypes as J
from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.Thrift import TMessageType
from thrift.transport import TTransport

from ingest.decoded import Decoded, span_count
from ingest.errors import BodyError
from ingest.jaeger_decode import decode_agent_packet, decode_thrift_batch
from ingest.jaeger_otlp import batches_to_otlp
from ingest.jaeger_thrift import read_batch
from ingest.thrift_wire import ThriftError
from schemas.span_limits import MAX_TIME_UNIX_NANO

EXAMPLES = int(os.environ.get("TRACEHOUSE_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROTOCOLS = {
    "binary": TBinaryProtocol.TBinaryProtocol,
    "compact": TCompactProtocol.TCompactProtocol,
}

I64 = st.integers(-(2**63), 2**63 - 1)
MAX_MICROS = MAX_TIME_UNIX_NANO // 1000
# Tag keys that the translation leaves alone (special keys have their own tests below).
KEYS = st.text("abcdefgh.", min_size=1, max_size=6)


def encode(obj: Any, protocol: str) -> bytes:
    buf = TTransport.TMemoryBuffer()
    obj.write(PROTOCOLS[protocol](buf))
    return bytes(buf.getvalue())


def agent_message(method: str, args: Any, protocol: str) -> bytes:
    """An agent UDP packet, written as jaeger-client's generated ``Agent.Client`` writes it
    (that client needs a tornado transport, so its three calls are made here directly)."""
    buf = TTransport.TMemoryBuffer()
    oprot = PROTOCOLS[protocol](buf)
    oprot.writeMessageBegin(method, TMessageType.ONEWAY, 1)
    args.write(oprot)
    oprot.writeMessageEnd()
    return bytes(buf.getvalue())


def emit_batch(batch: Any, protocol: str) -> bytes:
    return agent_message("emitBatch", Agent.emitBatch_args(batch=batch), protocol)


def decode(body: bytes, protocol: str) -> Decoded:
    return batches_to_otlp([read_batch(body, compact=protocol == "compact")])


# --- reference round trip ------------------------------------------------------------------


@st.composite
def tags(draw: st.DrawFn, max_size: int = 5) -> list[Any]:
    out = []
    for key in draw(st.lists(KEYS, max_size=max_size, unique=True)):
        kind = draw(st.sampled_from(["string", "double", "bool", "long", "binary"]))
        if kind == "string":
            out.append(J.Tag(key=key, vType=J.TagType.STRING, vStr=draw(st.text(max_size=20))))
        elif kind == "double":
            value = draw(st.floats(allow_nan=False))
            out.append(J.Tag(key=key, vType=J.TagType.DOUBLE, vDouble=value))
        elif kind == "bool":
            out.append(J.Tag(key=key, vType=J.TagType.BOOL, vBool=draw(st.booleans())))
        elif kind == "long":
            out.append(J.Tag(key=key, vType=J.TagType.LONG, vLong=draw(I64)))
        else:
            # jaeger-client's generated code writes binary through writeString (a str).
            out.append(J.Tag(key=key, vType=J.TagType.BINARY, vBinary=draw(st.text(max_size=9))))
    return out


@st.composite
def spans(draw: st.DrawFn) -> Any:
    start = draw(st.integers(0, MAX_MICROS - 10**9))
    return J.Span(
        traceIdLow=draw(I64.filter(bool)),
        traceIdHigh=draw(I64),
        spanId=draw(I64.filter(bool)),
        parentSpanId=draw(I64),
        operationName=draw(st.text(max_size=30)),
        references=draw(
            st.lists(
                st.builds(
                    J.SpanRef, refType=st.just(1), traceIdLow=I64, traceIdHigh=I64, spanId=I64
                ),
                max_size=3,
            )
        ),
        flags=draw(st.integers(0, 3)),
        startTime=start,
        duration=draw(st.integers(0, 10**9)),
        tags=draw(tags()),
        logs=draw(
            st.lists(
                st.builds(J.Log, timestamp=st.integers(0, MAX_MICROS), fields=tags(3)),
                max_size=3,
            )
        ),
    )


def any_value(kv: Any) -> tuple[str, Any]:
    which = kv.value.WhichOneof("value")
    return kv.key, (which, getattr(kv.value, which))


def expected_value(tag: Any) -> tuple[str, Any]:
    kinds = {
        J.TagType.STRING: ("string_value", tag.vStr),
        J.TagType.DOUBLE: ("double_value", tag.vDouble),
        J.TagType.BOOL: ("bool_value", tag.vBool),
        J.TagType.LONG: ("int_value", tag.vLong),
        J.TagType.BINARY: ("bytes_value", (tag.vBinary or "").encode()),
    }
    return tag.key, kinds[tag.vType]


def u64(value: int) -> bytes:
    return struct.pack(">q", value)


@FUZZ
@given(
    st.lists(spans(), min_size=1, max_size=4),
    st.text(max_size=12),
    tags(),
    st.sampled_from(sorted(PROTOCOLS)),
)
def test_reference_encoded_batches_decode_exactly(
    jspans: list[Any], service: str, process_tags: list[Any], protocol: str
) -> None:
    batch = J.Batch(process=J.Process(serviceName=service, tags=process_tags), spans=jspans)
    for decoded in (
        decode(encode(batch, protocol), protocol),
        decode_agent_packet(emit_batch(batch, protocol), protocol == "compact"),
    ):
        assert not decoded.rejected
        (rs,) = decoded.data.resource_spans
        resource = dict(any_value(kv) for kv in rs.resource.attributes)
        want = dict(expected_value(t) for t in process_tags)
        if service:
            want = {"service.name": ("string_value", service), **want}
        assert resource == want
        got = [span for ss in rs.scope_spans for span in ss.spans]
        assert len(got) == len(jspans)
        for js, span in zip(jspans, got, strict=True):
            assert span.trace_id == u64(js.traceIdHigh) + u64(js.traceIdLow)
            assert span.span_id == u64(js.spanId)
            first_ref = js.references[0].spanId if js.references else 0
            same_trace = [
                r
                for r in js.references
                if (r.traceIdHigh, r.traceIdLow) == (js.traceIdHigh, js.traceIdLow)
            ]
            parent = js.parentSpanId or (same_trace[0].spanId if same_trace else 0)
            assert span.parent_span_id == (u64(parent) if parent else b""), first_ref
            assert span.name == js.operationName
            assert span.start_time_unix_nano == js.startTime * 1000
            assert span.end_time_unix_nano == (js.startTime + js.duration) * 1000
            assert span.flags == js.flags & 1
            assert [any_value(kv) for kv in span.attributes] == [expected_value(t) for t in js.tags]
            assert [
                (e.time_unix_nano, [any_value(kv) for kv in e.attributes]) for e in span.events
            ] == [
                (log.timestamp * 1000, [expected_value(t) for t in log.fields]) for log in js.logs
            ]
            # Every FOLLOWS_FROM reference is a link, even the one that became the parent.
            assert [(link.trace_id, link.span_id) for link in span.links] == [
                (u64(r.traceIdHigh) + u64(r.traceIdLow), u64(r.spanId)) for r in js.references
            ]


# --- hostile input -------------------------------------------------------------------------


def only_body_errors(call: Any) -> Decoded | None:
    try:
        decoded = call()
    except BodyError as exc:
        assert exc.status == 400 and exc.reason in ("invalid_thrift", "invalid_jaeger")
        return None
    assert isinstance(decoded, Decoded)
    for ss in (ss for rs in decoded.data.resource_spans for ss in rs.scope_spans):
        for span in ss.spans:
            assert span.start_time_unix_nano <= MAX_TIME_UNIX_NANO
            assert span.end_time_unix_nano <= MAX_TIME_UNIX_NANO
    return decoded


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(body: bytes) -> None:
    only_body_errors(lambda: decode_thrift_batch(body))
    for compact in (True, False):
        only_body_errors(lambda: decode_agent_packet(body, compact))  # noqa: B023


SAMPLE = J.Batch(
    process=J.Process(serviceName="svc", tags=[J.Tag(key="k", vType=J.TagType.LONG, vLong=5)]),
    spans=[
        J.Span(
            traceIdLow=1,
            traceIdHigh=2,
            spanId=3,
            parentSpanId=4,
            operationName="op",
            references=[J.SpanRef(refType=1, traceIdLow=1, traceIdHigh=2, spanId=9)],
            flags=1,
            startTime=1_700_000_000_000_000,
            duration=5,
            tags=[J.Tag(key="t", vType=J.TagType.DOUBLE, vDouble=1.5)],
            logs=[J.Log(timestamp=1_700_000_000_000_001, fields=[J.Tag(key="e", vType=0)])],
        )
    ],
)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_every_truncation_is_refused(protocol: str) -> None:
    compact = protocol == "compact"
    packet = emit_batch(SAMPLE, protocol)
    assert span_count(decode_agent_packet(packet, compact).data) == 1
    for cut in range(len(packet)):
        with pytest.raises(BodyError) as err:
            decode_agent_packet(packet[:cut], compact)
        assert err.value.reason == "invalid_thrift"
    body = encode(SAMPLE, "binary")
    assert span_count(decode_thrift_batch(body).data) == 1
    for cut in range(len(body)):
        with pytest.raises(BodyError):
            decode_thrift_batch(body[:cut])


@FUZZ
@given(st.data(), st.sampled_from(sorted(PROTOCOLS)))
def test_flipped_bytes_never_crash(data: st.DataObject, protocol: str) -> None:
    packet = bytearray(emit_batch(SAMPLE, protocol))
    for _ in range(data.draw(st.integers(1, 4))):
        packet[data.draw(st.integers(0, len(packet) - 1))] = data.draw(st.integers(0, 255))
    decoded = only_body_errors(lambda: decode_agent_packet(bytes(packet), protocol == "compact"))
    if decoded is not None:
        assert span_count(decoded.data) + sum(decoded.rejected.values()) <= 1


def test_huge_lengths_are_refused_without_allocating() -> None:
    # Batch { 2: list<struct> of 2^31-1 spans } and { 1: Process { 1: string of 2^31-1 } }.
    claims = [
        b"\x0f\x00\x02\x0c\x7f\xff\xff\xff",
        b"\x0c\x00\x01\x0b\x00\x01\x7f\xff\xff\xff",
        b"\x0c\x00\x01\x0f\x00\x02\x0c\x7f\xff\xff\xff",
    ]
    tracemalloc.start()
    try:
        for body in claims:
            with pytest.raises(BodyError) as err:
                decode_thrift_batch(body + b"\x00" * 64)
            assert "truncated" in str(err.value)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize("compact", [False, True])
def test_deep_nesting_is_refused_without_recursion_error(compact: bool) -> None:
    depth = 100_000
    if compact:
        # emitBatch, args struct, field 2 (unknown): list<list<...>> of one element each.
        head = b"\x82\x21\x01\x09emitBatch" + b"\x29" + b"\x19" * depth
    else:
        head = b"\x80\x01\x00\x04\x00\x00\x00\x09emitBatch\x00\x00\x00\x01" + b"\x0f\x00\x02"
        head += b"\x0f\x00\x00\x00\x01" * depth
    with pytest.raises(BodyError) as err:
        decode_agent_packet(head, compact)
    assert "too_deep" in str(err.value)


def test_other_agent_methods_and_trailing_bytes_are_refused() -> None:
    zipkin = agent_message("emitZipkinBatch", Agent.emitZipkinBatch_args(spans=[]), "compact")
    with pytest.raises(BodyError, match="unsupported_method"):
        decode_agent_packet(zipkin, True)
    with pytest.raises(BodyError, match="trailing_bytes"):
        decode_thrift_batch(encode(SAMPLE, "binary") + b"\x00")


# --- per-span rejections -------------------------------------------------------------------


def good_span(**changes: Any) -> Any:
    span = J.Span(
        traceIdLow=1,
        traceIdHigh=0,
        spanId=2,
        parentSpanId=0,
        operationName="op",
        flags=1,
        startTime=1_700_000_000_000_000,
        duration=10,
    )
    for key, value in changes.items():
        setattr(span, key, value)
    return span


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (good_span(startTime=-1), "time_out_of_range"),
        (good_span(startTime=MAX_MICROS, duration=1), "time_out_of_range"),
        (good_span(duration=-5), "invalid_duration"),
        (good_span(logs=[J.Log(timestamp=MAX_MICROS + 1, fields=[])]), "time_out_of_range"),
        (good_span(tags=[J.Tag(key="k", vType=9, vStr="x")]), "invalid_tag"),
        (good_span(tags=[J.Tag(key=None, vType=0, vStr="x")]), "invalid_tag"),
        (good_span(traceIdLow=0), "zero_trace_id"),
        (good_span(spanId=0), "zero_span_id"),
    ],
)
@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_bad_span_is_rejected_alone_with_its_reason(bad: Any, reason: str, protocol: str) -> None:
    batch = J.Batch(process=J.Process(serviceName="svc"), spans=[good_span(), bad])
    decoded = decode(encode(batch, protocol), protocol)
    if reason.startswith("zero_"):  # validation's reasons: found later, by the admission core
        assert span_count(decoded.data) == 2
        return
    assert span_count(decoded.data) == 1 and decoded.rejected == Counter({reason: 1})
    only_bad = J.Batch(process=J.Process(serviceName="svc"), spans=[bad])
    body = encode(only_bad, "binary")
    if reason == "time_out_of_range":  # storage's limit, not malformation: a partial success
        assert decode_thrift_batch(body).rejected == Counter({reason: 1})
    else:
        with pytest.raises(BodyError) as err:
            decode_thrift_batch(body)
        assert err.value.reason == "invalid_jaeger" and err.value.rejected == Counter({reason: 1})


def _binary_span(fields: bytes) -> bytes:
    """Batch{process{svc}, spans[1 span with these raw fields]} in the binary protocol."""
    process = b"\x0c\x00\x01" + b"\x0b\x00\x01\x00\x00\x00\x03svc" + b"\x00"
    return process + b"\x0f\x00\x02\x0c\x00\x00\x00\x01" + fields + b"\x00" + b"\x00"


REQUIRED = (
    b"\x0a\x00\x01" + u64(1)
    + b"\x0a\x00\x02" + u64(0)
    + b"\x0a\x00\x03" + u64(2)
    + b"\x0a\x00\x04" + u64(0)
    + b"\x0b\x00\x05\x00\x00\x00\x02op"
    + b"\x08\x00\x07\x00\x00\x00\x01"
    + b"\x0a\x00\x08" + u64(1_700_000_000_000_000)
    + b"\x0a\x00\x09" + u64(1)
)  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (b"", None),
        (b"\x0b\x00\x63\x00\x00\x00\x01z", None),  # unknown field 99: skipped
        (b"\x0a\x00\x03" + u64(5), "malformed_span"),  # spanId twice
        (b"\x0b\x00\x0a\x00\x00\x00\x01z", "malformed_span"),  # tags as a string
        (b"\x0f\x00\x0a\x0b\x00\x00\x00\x01\x00\x00\x00\x01z", "malformed_span"),  # list<string>
    ],
)
def test_fields_of_the_wrong_type_reject_the_span(extra: bytes, reason: str | None) -> None:
    decoded = decode(_binary_span(REQUIRED + extra), "binary")
    if reason is None:
        assert span_count(decoded.data) == 1 and not decoded.rejected
    else:
        assert decoded.rejected == Counter({reason: 1})


def test_missing_required_field_and_bad_utf8_reject_the_span() -> None:
    # The unknown field 99 keeps the span as long as a valid one (see the next test).
    padding = b"\x0b\x00\x63\x00\x00\x00\x10" + bytes(16)
    no_start = REQUIRED.replace(b"\x0a\x00\x08" + u64(1_700_000_000_000_000), padding)
    assert decode(_binary_span(no_start), "binary").rejected == Counter({"malformed_span": 1})
    bad_name = REQUIRED.replace(b"\x00\x00\x00\x02op", b"\x00\x00\x00\x02\xff\xfe")
    assert decode(_binary_span(bad_name), "binary").rejected == Counter({"invalid_utf8": 1})


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_more_elements_than_valid_ones_fit_is_refused_at_once(protocol: str) -> None:
    # 100,000 empty structs (a STOP byte each) claimed as spans, or as one span's tags: each
    # fits the bytes, but no valid span or tag is one byte long. Refused before the loop.
    empties = bytes(100_000)
    if protocol == "binary":
        spans = b"\x0f\x00\x02\x0c" + struct.pack(">i", 100_000) + empties + b"\x00"
        tags = (
            b"\x0f\x00\x02\x0c\x00\x00\x00\x01"
            + b"\x0f\x00\x0a\x0c"
            + struct.pack(">i", 100_000)
            + empties
            + b"\x00\x00"
        )
    else:
        count = bytes([0x80 | (100_000 & 0x7F), 0x80 | (100_000 >> 7 & 0x7F), 100_000 >> 14])
        spans = b"\x29\xfc" + count + empties + b"\x00"
        tags = b"\x29\x1c" + b"\xa9\xfc" + count + empties + b"\x00\x00"
    for body in (spans, tags):
        started = time.perf_counter()
        with pytest.raises(ThriftError) as err:
            read_batch(body, compact=protocol == "compact")
        assert err.value.reason == "implausible_count"
        assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_tags_with_every_value_field_use_the_one_of_their_type(protocol: str) -> None:
    # Node's jaeger-client writes all five value fields, the unused ones with defaults.
    def tag(key: str, vtype: int) -> Any:
        return J.Tag(key=key, vType=vtype, vStr="s", vDouble=2.5, vBool=True, vLong=7, vBinary="b")

    kinds = [J.TagType.STRING, J.TagType.DOUBLE, J.TagType.BOOL, J.TagType.LONG, J.TagType.BINARY]
    span = good_span(tags=[tag(f"k{t}", t) for t in kinds])
    batch = J.Batch(process=J.Process(serviceName="svc"), spans=[span])
    decoded = decode(encode(batch, protocol), protocol)
    assert not decoded.rejected
    (out,) = decoded.data.resource_spans[0].scope_spans[0].spans
    assert [any_value(kv) for kv in out.attributes] == [
        ("k0", ("string_value", "s")),
        ("k1", ("double_value", 2.5)),
        ("k2", ("bool_value", True)),
        ("k3", ("int_value", 7)),
        ("k4", ("bytes_value", b"b")),
    ]

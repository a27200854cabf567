"""Jaeger -> OTLP mapping rules (the OTel Collector jaeger receiver's), and the gRPC
``PostSpans`` decoder under hostile input."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.decoded import span_count
from ingest.errors import BodyError
from ingest.jaeger_batch import (
    BINARY,
    BOOL,
    CHILD_OF,
    FOLLOWS_FROM,
    LONG,
    STRING,
    Batch,
    Log,
    Process,
    Span,
    SpanRef,
    Tag,
)
from ingest.jaeger_decode import decode_post_spans
from ingest.jaeger_otlp import batches_to_otlp
from ingest.jaeger_proto import message_class
from schemas.span_limits import MAX_TIME_UNIX_NANO

TRACE = bytes(range(1, 17))
OTHER_TRACE = bytes(range(2, 18))
SPAN, PARENT, REF = b"\x01" * 8, b"\x02" * 8, b"\x03" * 8
K = trace_pb2.Span
S = trace_pb2.Status


def translate(*spans: Span, process: Process | None = None) -> list[trace_pb2.Span]:
    decoded = batches_to_otlp([Batch(process or Process("svc"), list(spans))])
    return [s for rs in decoded.data.resource_spans for ss in rs.scope_spans for s in ss.spans]


def span(*tags: Tag, **changes: Any) -> Span:
    base = Span(
        trace_id=TRACE,
        span_id=SPAN,
        operation_name="op",
        start_unix_nano=10,
        end_unix_nano=20,
        tags=list(tags),
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def attrs(s: trace_pb2.Span) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in s.attributes}


def s_(key: str, value: str) -> Tag:
    return Tag(key, STRING, value)


@pytest.mark.parametrize(
    ("tags", "kind", "code", "message", "left"),
    [
        ([], K.SPAN_KIND_UNSPECIFIED, S.STATUS_CODE_UNSET, "", {}),
        ([s_("span.kind", "server")], K.SPAN_KIND_SERVER, S.STATUS_CODE_UNSET, "", {}),
        ([s_("span.kind", "weird")], K.SPAN_KIND_UNSPECIFIED, S.STATUS_CODE_UNSET, "", {}),
        (
            [Tag("error", BOOL, True), s_("otel.status_description", "boom")],
            K.SPAN_KIND_UNSPECIFIED,
            S.STATUS_CODE_ERROR,
            "boom",
            {},
        ),
        # error=true wins over otel.status_code=OK, which is removed all the same.
        (
            [Tag("error", BOOL, True), s_("otel.status_code", "OK")],
            K.SPAN_KIND_UNSPECIFIED,
            S.STATUS_CODE_ERROR,
            "",
            {},
        ),
        # error=false is just an attribute; a string "true" is not the error flag.
        (
            [Tag("error", BOOL, False)],
            K.SPAN_KIND_UNSPECIFIED,
            S.STATUS_CODE_UNSET,
            "",
            {"error": False},
        ),
        (
            [s_("error", "true")],
            K.SPAN_KIND_UNSPECIFIED,
            S.STATUS_CODE_UNSET,
            "",
            {"error": "true"},
        ),
        (
            [s_("otel.status_code", "ok"), s_("otel.status_description", "fine")],
            K.SPAN_KIND_UNSPECIFIED,
            S.STATUS_CODE_OK,
            "fine",
            {},
        ),
        (
            [s_("span.kind", "server"), Tag("http.status_code", LONG, 404)],
            K.SPAN_KIND_SERVER,
            S.STATUS_CODE_UNSET,
            "",
            {"http.status_code": 404},
        ),
        (
            [
                s_("span.kind", "client"),
                s_("http.status_code", "404"),
                s_("http.status_message", "nf"),
            ],
            K.SPAN_KIND_CLIENT,
            S.STATUS_CODE_ERROR,
            "nf",
            {"http.status_code": "404", "http.status_message": "nf"},
        ),
        (
            [Tag("http.status_code", LONG, 503)],
            K.SPAN_KIND_UNSPECIFIED,
            S.STATUS_CODE_ERROR,
            "",
            {"http.status_code": 503},
        ),
    ],
)
def test_kind_and_status_from_tags(
    tags: list[Tag], kind: int, code: int, message: str, left: dict[str, Any]
) -> None:
    (out,) = translate(span(*tags))
    assert (out.kind, out.status.code, out.status.message, attrs(out)) == (
        kind,
        code,
        message,
        left,
    )


def test_parent_and_links_from_references() -> None:
    refs = [
        SpanRef(CHILD_OF, OTHER_TRACE, REF),  # another trace: never the parent
        SpanRef(FOLLOWS_FROM, TRACE, REF),
        SpanRef(CHILD_OF, TRACE, PARENT),
    ]
    (out,) = translate(span(references=refs))
    assert out.parent_span_id == PARENT
    assert [(link.trace_id, link.span_id, attrs(link)) for link in out.links] == [
        (OTHER_TRACE, REF, {"opentracing.ref_type": "child_of"}),
        (TRACE, REF, {"opentracing.ref_type": "follows_from"}),
    ]
    # Without CHILD_OF into the trace, the first FOLLOWS_FROM is the parent (and stays a link).
    (only_follows,) = translate(span(references=refs[:2]))
    assert only_follows.parent_span_id == REF and len(only_follows.links) == 2
    # An explicit parentSpanId wins over references.
    (explicit,) = translate(span(references=refs, parent_span_id=REF))
    assert explicit.parent_span_id == REF and len(explicit.links) == 3


def test_resource_scope_trace_state_flags_and_events() -> None:
    process = Process(
        "svc",
        [s_("hostname", "h1"), s_("jaeger.version", "Go-2.30.0"), Tag("n", LONG, 1)],
    )
    out = batches_to_otlp(
        [
            Batch(
                process,
                [
                    span(
                        s_("otel.scope.name", "lib"),
                        s_("otel.scope.version", "1.0"),
                        s_("w3c.tracestate", "a=b"),
                        Tag("dup", LONG, 1),
                        Tag("dup", BINARY, b"\x00"),
                        flags=3,
                        logs=[
                            Log(5, [s_("event", "retry"), Tag("n", LONG, 2)]),
                            Log(6, [Tag("event", LONG, 7)]),
                        ],
                    ),
                    span(span_id=PARENT),
                ],
            )
        ]
    ).data
    (rs,) = out.resource_spans
    assert attrs(rs.resource) == {
        "service.name": "svc",
        "n": 1,
        "host.name": "h1",
        "opencensus.exporterversion": "Jaeger-Go-2.30.0",
    }
    scoped, plain = rs.scope_spans
    assert (scoped.scope.name, scoped.scope.version, plain.scope.name) == ("lib", "1.0", "")
    (first,) = scoped.spans
    assert first.trace_state == "a=b" and first.flags == 1
    assert attrs(first) == {"dup": b"\x00"}  # repeated key: the last wins
    assert [(e.time_unix_nano, e.name, attrs(e)) for e in first.events] == [
        (5, "retry", {"n": 2}),
        (6, "", {"event": 7}),  # a non-string event field stays an attribute
    ]


def test_spans_with_their_own_process_get_their_own_resource() -> None:
    own = Process("other", [s_("k", "v")])
    decoded = batches_to_otlp([Batch(Process("svc"), [span(), span(process=own), span()])])
    services = [attrs(rs.resource)["service.name"] for rs in decoded.data.resource_spans]
    assert services == ["svc", "other"]
    assert [len(rs.scope_spans[0].spans) for rs in decoded.data.resource_spans] == [2, 1]


def test_bad_process_rejects_every_span_of_its_batch() -> None:
    decoded = batches_to_otlp([Batch(Process("svc"), [span(), span()], "invalid_process")])
    assert span_count(decoded.data) == 0 and decoded.rejected == Counter({"invalid_process": 2})


# --- gRPC PostSpans ------------------------------------------------------------------------

PostSpansRequest = message_class("PostSpansRequest")


def request(**span_fields: Any) -> Any:
    req = PostSpansRequest()
    req.batch.process.service_name = "svc"
    good = req.batch.spans.add(trace_id=TRACE, span_id=SPAN, operation_name="ok")
    good.start_time.seconds = 1_700_000_000
    bad = req.batch.spans.add(trace_id=TRACE, span_id=PARENT, operation_name="bad")
    bad.start_time.seconds = 1_700_000_000
    for path, value in span_fields.items():
        target = bad
        *parents, leaf = path.split(".")
        for name in parents:
            target = getattr(target, name)
        if isinstance(value, list):
            getattr(target, leaf).extend(value)
        else:
            setattr(target, leaf, value)
    return req


KV = message_class("KeyValue")
REF_CLS = message_class("SpanRef")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"tags": [KV(key="k", v_type=9)]}, "invalid_tag"),
        ({"start_time.nanos": -1}, "invalid_timestamp"),
        ({"start_time.seconds": -1}, "time_out_of_range"),
        ({"start_time.seconds": MAX_TIME_UNIX_NANO // 10**9 + 1}, "time_out_of_range"),
        ({"duration.seconds": -1}, "invalid_duration"),
        ({"duration.nanos": 10**9}, "invalid_duration"),
        ({"references": [REF_CLS(trace_id=TRACE, span_id=b"\x01")]}, "invalid_link"),
        ({"references": [REF_CLS(trace_id=TRACE, span_id=SPAN, ref_type=5)]}, "invalid_link"),
    ],
)
def test_post_spans_rejects_a_bad_span_alone(fields: dict[str, Any], reason: str) -> None:
    decoded = decode_post_spans(request(**fields).SerializeToString())
    assert span_count(decoded.data) == 1 and decoded.rejected == Counter({reason: 1})


def test_post_spans_tag_types_and_nanosecond_times() -> None:
    tags = [
        KV(key="s", v_str="x"),
        KV(key="b", v_type=1, v_bool=True),
        KV(key="i", v_type=2, v_int64=-5),
        KV(key="f", v_type=3, v_float64=0.5),
        KV(key="x", v_type=4, v_binary=b"\x00\xff"),
    ]
    req = request(tags=tags, **{"start_time.nanos": 7, "duration.nanos": 11})
    decoded = decode_post_spans(req.SerializeToString())
    bad = next(s for s in decoded.data.resource_spans[0].scope_spans[0].spans if s.name == "bad")
    assert attrs(bad) == {"s": "x", "b": True, "i": -5, "f": 0.5, "x": b"\x00\xff"}
    start = 1_700_000_000 * 10**9 + 7
    assert (bad.start_time_unix_nano, bad.end_time_unix_nano) == (start, start + 11)


FUZZ = settings(
    max_examples=int(os.environ.get("TRACEHOUSE_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(st.binary(max_size=1000))
def test_post_spans_arbitrary_bytes_never_crash(raw: bytes) -> None:
    try:
        decoded = decode_post_spans(raw)
    except BodyError as exc:
        assert exc.reason in ("undecodable", "invalid_jaeger")
        return
    for rs in decoded.data.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                assert s.end_time_unix_nano <= MAX_TIME_UNIX_NANO


def test_post_spans_deep_unknown_nesting_is_opaque() -> None:
    # An unknown field (15 of Batch) holding 10,000 levels of nested messages: protobuf keeps
    # unknown fields as opaque bytes and never recurses into them, so this costs nothing.
    inner = b""
    for _ in range(10_000):
        inner = b"\x7a" + _varint(len(inner)) + inner
    raw = b"\x0a" + _varint(len(inner)) + inner
    assert span_count(decode_post_spans(raw).data) == 0


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_post_spans_of_empty_spans_is_refused_at_once() -> None:
    raw = b"\x0a\xe0\x5d" + b"\x0a\x00" * 6_000  # a 12,000-byte Batch of 6,000 empty spans
    with pytest.raises(BodyError) as err:
        decode_post_spans(raw)
    assert err.value.reason == "invalid_jaeger" and "6000 spans" in str(err.value)

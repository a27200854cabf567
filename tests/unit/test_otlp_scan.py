"""The compiled OTLP pass against the protobuf path it accelerates (ADR 0015).

The pass (``streams/_otlp_scan.pyx``) is an accelerator only: for every payload it either
returns views equal, field by field and in order, to what the protobuf path
(``TracesData.FromString`` + :func:`streams.span_views.span_views`) gives, with the same
rendered text (hex ids, attribute text, events, links) and so the same ``span_batch`` bytes,
or it returns None and the protobuf path decides. It must never raise. Hypothesis builds
messages with values at every limit; byte mutations of valid messages cover the wire
malformations (truncations, wrong wire types, overlong varints, groups, bad UTF-8).
``TRACEHOUSE_FUZZ_EXAMPLES`` raises the example counts.
"""

from __future__ import annotations

import os
import struct
from typing import Any, cast

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.rpc_status import varint
from schemas import avro_codec
from schemas.span_batch_v3 import VERSION
from streams import otlp_scan
from streams.adjusted_count import adjusted_count
from streams.packed_batch import pack_views
from streams.span_views import (
    Rejected,
    SpanView,
    attributes_of,
    first_attribute,
    rendered,
    span_views,
    wire_size,
)
from tests.otlp_strategies import one_defect_among, spans, traces_data, valid_spans

pytestmark = pytest.mark.skipif(
    not otlp_scan.ENABLED, reason="compiled OTLP scan not built (make setup builds it)"
)

EXAMPLES = int(os.environ.get("TRACEHOUSE_FUZZ_EXAMPLES", "150"))
PROPS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

FIELDS = (
    "tenant_id", "trace_id", "span_id", "parent_span_id", "trace_state", "name", "kind",
    "service_name", "start_time_unix_nano", "end_time_unix_nano", "status_code",
    "resource_attributes",
)  # fmt: skip


def protobuf_views(payload: bytes) -> tuple[list[SpanView], list[Rejected]] | None:
    """The protobuf path, as the partition processor runs it; None when it refuses the
    message whole."""
    try:
        data = trace_pb2.TracesData.FromString(payload)
    except (DecodeError, RecursionError):
        return None
    rejected: list[Rejected] = []
    try:
        return span_views(data, rejected=rejected), rejected
    except (DecodeError, RecursionError, ValueError):
        return None


def assert_same(payload: bytes) -> list[SpanView] | None:
    """The property itself: scan's answer is None or the protobuf path's, and never raises.
    Its lazy views (tail sampling) are refused for exactly the same messages and, once
    rendered, equal to the rendered ones."""
    fast = otlp_scan.scan_views(payload)
    slow = protobuf_views(payload)
    lazy = otlp_scan.scan_views(payload, lazy=True)
    assert (lazy is None) == (fast is None), "the lazy pass checks a message differently"
    if fast is None:
        return None
    assert lazy is not None
    assert_lazy_renders_the_same(lazy, fast)
    assert slow is not None, "scan accepted a message the protobuf path refuses"
    views, rejected = slow
    assert not rejected, "scan accepted a message with spans the protobuf path rejects"
    assert len(fast) == len(views)
    for a, b in zip(fast, views, strict=True):
        for f in FIELDS:
            assert getattr(a, f) == getattr(b, f), f
        assert a.span is None and a.scope is None
        assert a.attributes == attributes_of(b)
        assert a.rendered == rendered(b)
    if fast:
        # What the sink receives is byte for byte the same.
        assert avro_codec.encode("span_batch", pack_views(fast), VERSION) == avro_codec.encode(
            "span_batch", pack_views(views), VERSION
        )
    return fast


def assert_lazy_renders_the_same(lazy: list[SpanView], fast: list[SpanView]) -> None:
    assert len(lazy) == len(fast)
    for a, b in zip(lazy, fast, strict=True):
        for f in FIELDS:
            assert getattr(a, f) == getattr(b, f), f
        assert a.attributes is None and a.rendered is None and a.raw is not None
        assert b.raw is None and b.raw_scope is None
    if lazy:
        packed = avro_codec.encode("span_batch", pack_views(lazy), VERSION)
        assert packed == avro_codec.encode("span_batch", pack_views(fast), VERSION)
    for a, b in zip(lazy, fast, strict=True):
        assert a.attributes == b.attributes
        assert a.rendered == b.rendered


# -- the schema the pass knows -------------------------------------------------------------

_WIRE = {
    FieldDescriptor.TYPE_MESSAGE: 2,
    FieldDescriptor.TYPE_STRING: 2,
    FieldDescriptor.TYPE_BYTES: 2,
    FieldDescriptor.TYPE_FIXED64: 1,
    FieldDescriptor.TYPE_DOUBLE: 1,
    FieldDescriptor.TYPE_FIXED32: 5,
}


def test_known_fields_are_the_installed_schema() -> None:
    """A field added by an opentelemetry-proto upgrade must be taught to the pass (or make it
    fall back) before the pin moves."""
    from streams import _otlp_scan  # type: ignore[attr-defined]

    messages: dict[str, Any] = {
        "TracesData": trace_pb2.TracesData,
        "ResourceSpans": trace_pb2.ResourceSpans,
        "ScopeSpans": trace_pb2.ScopeSpans,
        "Span": trace_pb2.Span,
        "Event": trace_pb2.Span.Event,
        "Link": trace_pb2.Span.Link,
        "Status": trace_pb2.Status,
        "Resource": resource_pb2.Resource,
        "InstrumentationScope": common_pb2.InstrumentationScope,
        "KeyValue": common_pb2.KeyValue,
    }
    for name, message in messages.items():
        declared = {f.number: _WIRE.get(f.type, 0) for f in message.DESCRIPTOR.fields}
        assert _otlp_scan.KNOWN_FIELDS[name] == declared, name


# -- generated messages (tests/otlp_strategies.py) -------------------------------------------


@PROPS
@given(traces_data(spans))
def test_any_message_gives_the_protobuf_views_or_falls_back(data: trace_pb2.TracesData) -> None:
    assert_same(data.SerializeToString())


@PROPS
@given(traces_data(valid_spans))
def test_storable_messages_take_the_fast_path(data: trace_pb2.TracesData) -> None:
    """Not a test that cannot fail: a message of storable spans must not fall back, or the
    fast path would silently be the slow one."""
    payload = data.SerializeToString()
    views = assert_same(payload)
    assert views is not None
    assert len(views) == sum(len(ss.spans) for rs in data.resource_spans for ss in rs.scope_spans)


@PROPS
@given(one_defect_among())
def test_one_refused_span_leaves_the_message_to_the_protobuf_path(
    data: trace_pb2.TracesData,
) -> None:
    payload = data.SerializeToString()
    assert otlp_scan.scan_views(payload) is None
    slow = protobuf_views(payload)
    assert slow is not None and len(slow[1]) == 1


@PROPS
@given(
    traces_data(valid_spans),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 10_000),
)
def test_mutated_bytes_never_raise_and_never_disagree(
    data: trace_pb2.TracesData, flips: list[tuple[int, int]], cut: int
) -> None:
    payload = bytearray(data.SerializeToString())
    if not payload:
        return
    for at, value in flips:
        payload[at % len(payload)] = value
    assert_same(bytes(payload))
    assert_same(bytes(payload[: cut % (len(payload) + 1)]))


@PROPS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    assert_same(payload)


# -- the shapes the pass refuses on purpose ------------------------------------------------


def _key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def _len(field: int, body: bytes) -> bytes:
    return _key(field, 2) + varint(len(body)) + body


def _one_span(span: bytes, resource: bytes = b"", scope: bytes = b"") -> bytes:
    scope_spans = (_len(1, scope) if scope else b"") + _len(2, span)
    resource_spans = (_len(1, resource) if resource else b"") + _len(2, scope_spans)
    return _len(1, resource_spans)


GOOD_SPAN = trace_pb2.Span(
    trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="op", start_time_unix_nano=5,
    end_time_unix_nano=9, status=trace_pb2.Status(code=cast(Any, 2), message="boom"),
).SerializeToString()  # fmt: skip
RESOURCE = resource_pb2.Resource(
    attributes=[
        common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value="s"))
    ]
).SerializeToString()


def test_fields_in_any_order_are_read_like_protobuf_reads_them() -> None:
    """Resource after the scope spans, scope after the spans, span fields reversed: all legal
    protobuf, all read the same."""
    scope = common_pb2.InstrumentationScope(name="lib", version="1").SerializeToString()
    span = _len(1, b"\x01" * 16) + _len(2, b"\x02" * 8) + _len(5, b"op")
    reversed_span = _len(5, b"op") + _len(2, b"\x02" * 8) + _len(1, b"\x01" * 16)
    for body in (span, reversed_span):
        scope_spans = _len(2, body) + _len(1, scope)
        resource_spans = _len(2, scope_spans) + _len(1, RESOURCE)
        views = assert_same(_len(1, resource_spans))
        assert views is not None and views[0].service_name == "s"
        assert views[0].rendered is not None and views[0].rendered[3:5] == ("lib", "1")


def test_unknown_fields_are_skipped_as_protobuf_skips_them() -> None:
    extra = _key(99, 0) + varint(2**63) + _key(98, 1) + b"\x00" * 8 + _key(97, 5) + b"\x00" * 4
    extra += _len(96, b"\xff\xfe")  # not UTF-8: unknown fields are not strings
    views = assert_same(_one_span(GOOD_SPAN + extra, RESOURCE) + extra)
    assert views is not None and len(views) == 1


@pytest.mark.parametrize(
    ("why", "payload"),
    [
        ("status twice: protobuf merges", _one_span(GOOD_SPAN + _len(15, b"\x18\x01"))),
        ("name not UTF-8", _one_span(GOOD_SPAN + _len(5, b"\xff"))),
        ("surrogate in UTF-8", _one_span(GOOD_SPAN + _len(5, b"\xed\xa0\x80"))),
        ("wrong wire type on a known field", _one_span(GOOD_SPAN + _key(7, 0) + b"\x01")),
        ("a group", _one_span(GOOD_SPAN + _key(50, 3) + _key(50, 4))),
        ("time past DateTime64", _one_span(GOOD_SPAN + _key(8, 1) + struct.pack("<Q", 2**63))),
        ("event time past DateTime64", _one_span(
            GOOD_SPAN + _len(11, _key(1, 1) + struct.pack("<Q", 2**64 - 1)))),
        ("short trace id", _one_span(GOOD_SPAN + _len(1, b"\x01" * 15))),
        ("zero span id", _one_span(GOOD_SPAN + _len(2, bytes(8)))),
        ("parent of 4 bytes", _one_span(GOOD_SPAN + _len(4, b"\x01" * 4))),
        ("overlong varint", _one_span(GOOD_SPAN + _key(6, 0) + b"\xff" * 10 + b"\x01")),
        ("length past the end", _len(1, b"") [:-1] + b"\x05"),
        ("entity refs on the resource", _one_span(GOOD_SPAN, RESOURCE + _len(3, b""))),
        ("KeyValue value twice", _one_span(
            GOOD_SPAN + _len(9, _len(1, b"k") + _len(2, b"\x08\x01") + _len(2, b"\x18\x02")))),
    ],
)  # fmt: skip
def test_what_the_pass_leaves_to_protobuf(why: str, payload: bytes) -> None:
    assert otlp_scan.scan_views(payload) is None, why
    assert_same(payload)


def test_every_attribute_type_renders_through_the_shared_rendering() -> None:
    values = [
        common_pb2.AnyValue(double_value=1.5e-7),
        common_pb2.AnyValue(double_value=float("nan")),
        common_pb2.AnyValue(bytes_value=b"\x00\xff"),
        common_pb2.AnyValue(int_value=-(2**63)),
        common_pb2.AnyValue(bool_value=True),
        common_pb2.AnyValue(
            array_value=common_pb2.ArrayValue(values=[common_pb2.AnyValue(int_value=1)])
        ),
        common_pb2.AnyValue(),
    ]
    span = trace_pb2.Span.FromString(GOOD_SPAN)
    for i, v in enumerate(values):
        span.attributes.add(key=f"k{i}", value=v)
    span.attributes.add(key="k0", value=common_pb2.AnyValue(string_value="later wins"))
    views = assert_same(_one_span(span.SerializeToString(), RESOURCE))
    assert views is not None
    assert views[0].attributes == {
        "k0": "later wins", "k1": "NaN", "k2": "AP8=", "k3": str(-(2**63)), "k4": "true",
        "k5": "[1]", "k6": "",
    }  # fmt: skip


def test_a_zero_parent_is_no_parent_and_events_and_links_are_rendered() -> None:
    span = trace_pb2.Span.FromString(GOOD_SPAN)
    span.parent_span_id = bytes(8)
    span.events.add(time_unix_nano=7, name="exception").attributes.add(
        key="exception.type", value=common_pb2.AnyValue(string_value="ValueError")
    )
    span.links.add(trace_id=b"\xab" * 16, span_id=b"\xcd" * 8, trace_state="a=b")
    views = assert_same(_one_span(span.SerializeToString(), RESOURCE))
    assert views is not None
    view = views[0]
    assert view.parent_span_id == b"" and view.rendered is not None
    assert list(view.rendered[6]) == [(7, "exception", {"exception.type": "ValueError"})]
    assert list(view.rendered[7]) == [("ab" * 16, "cd" * 8, "a=b", {})]


def test_the_text_cache_never_returns_another_text() -> None:
    """Short texts come from a direct-mapped cache (``_cached_text``): thousands of distinct
    keys and values force collisions in its 4,096 slots, non-ASCII texts bypass it, and every
    text must still be the one on the wire."""
    span = trace_pb2.Span.FromString(GOOD_SPAN)
    for i in range(12_000):
        text = f"k{i}" if i % 3 else f"ké{i}"
        span.attributes.add(key=text, value=common_pb2.AnyValue(string_value=text[::-1]))
    payload = _one_span(span.SerializeToString(), RESOURCE)
    for _ in range(2):  # the second pass reads through a warm cache
        views = assert_same(payload)
        assert views is not None and views[0].attributes is not None
        assert len(views[0].attributes) == 12_000


def test_a_parent_relinked_after_the_pass_is_the_one_packed() -> None:
    """Zipkin shared server halves whose client half never came are re-parented at decision
    time (streams.zipkin_links), after the pass rendered the view: the packed parent must be
    the new one (the rendered text holds nothing that can change after the pass)."""
    from sinks.packed_spans import columns_from_packed
    from streams.zipkin_links import relink_orphaned_shared_servers

    span = trace_pb2.Span.FromString(GOOD_SPAN)
    span.kind = trace_pb2.Span.SPAN_KIND_SERVER
    span.parent_span_id = b"\x0a" * 8  # the missing client half
    span.attributes.add(key="zipkin.parent_id", value=common_pb2.AnyValue(string_value="0b" * 8))
    views = assert_same(_one_span(span.SerializeToString(), RESOURCE))
    assert views is not None
    assert relink_orphaned_shared_servers(views) == [(b"\x0a" * 8, b"\x0b" * 8)]
    columns = columns_from_packed(pack_views(views))
    assert columns["parent_span_id"].to_pylist() == ["0b" * 8]


@PROPS
@given(traces_data(valid_spans))
def test_each_accessor_renders_a_lazy_view_alone(data: trace_pb2.TracesData) -> None:
    """RED, the graph, policies and the dead-letter path ask single lazy views for what they
    need; each answer is the rendered view's, whichever is asked first."""
    payload = data.SerializeToString()
    fast = otlp_scan.scan_views(payload)
    assert fast is not None
    askers = (
        lambda v: attributes_of(v),
        lambda v: rendered(v),
        lambda v: wire_size(v),
        lambda v: first_attribute(v, ("peer.service", "db.system")),
        lambda v: adjusted_count(v),
    )
    for ask in askers:
        lazy = otlp_scan.scan_views(payload, lazy=True)
        assert lazy is not None
        for a, b in zip(lazy, fast, strict=True):
            assert ask(a) == ask(b)
            if a.rendered is not None:
                assert a.rendered == b.rendered and a.attributes == b.attributes

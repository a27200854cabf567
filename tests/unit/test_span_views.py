"""SpanView: every field is the protobuf span's (or its resource's), a misspelled field cannot be
written, and the two ways of reading attributes agree, whatever the span holds."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from schemas.span_limits import MAX_TIME_UNIX_NANO
from streams.span_views import SpanView, attributes_of, first_attribute, span_views

ids16 = st.binary(min_size=16, max_size=16).filter(any)
ids8 = st.binary(min_size=8, max_size=8).filter(any)
times = st.integers(0, MAX_TIME_UNIX_NANO)
values = st.one_of(
    st.builds(lambda s: common_pb2.AnyValue(string_value=s), st.text(max_size=8)),
    st.builds(lambda i: common_pb2.AnyValue(int_value=i), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda b: common_pb2.AnyValue(bool_value=b), st.booleans()),
    st.builds(lambda d: common_pb2.AnyValue(double_value=d), st.floats(allow_nan=False)),
    st.builds(lambda b: common_pb2.AnyValue(bytes_value=b), st.binary(max_size=4)),
    st.just(common_pb2.AnyValue()),
)
# Few distinct keys, so duplicates (which OTLP forbids but senders produce) are common.
attributes = st.lists(st.tuples(st.sampled_from(["a", "b", "peer.service", ""]), values))


def _data(
    span: trace_pb2.Span, resource: dict[str, str], scope_name: str
) -> trace_pb2.TracesData:
    data = trace_pb2.TracesData()
    rs = data.resource_spans.add()
    for k, v in resource.items():
        rs.resource.attributes.add(key=k, value=common_pb2.AnyValue(string_value=v))
    ss = rs.scope_spans.add()
    ss.scope.name = scope_name
    ss.spans.add().CopyFrom(span)
    return data


@given(
    trace_id=ids16,
    span_id=ids8,
    parent=st.one_of(st.just(b""), st.just(bytes(8)), ids8),
    name=st.text(max_size=20),
    trace_state=st.text(max_size=20),
    kind=st.integers(0, 2**31 - 1),  # unknown kinds are kept as their number
    status=st.integers(0, 2**31 - 1),
    start=times,
    end=times,
    service=st.one_of(st.none(), st.text(max_size=8)),
    tenant=st.one_of(st.none(), st.text(max_size=8)),
    scope_name=st.text(max_size=8),
)
def test_every_field_is_the_spans(
    trace_id: bytes,
    span_id: bytes,
    parent: bytes,
    name: str,
    trace_state: str,
    kind: int,
    status: int,
    start: int,
    end: int,
    service: str | None,
    tenant: str | None,
    scope_name: str,
) -> None:
    span = trace_pb2.Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        trace_state=trace_state,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=start,
        end_time_unix_nano=end,
    )
    span.status.code = status  # type: ignore[assignment]
    resource = {"service.name": service, "tracehouse.tenant": tenant}
    present = {k: v for k, v in resource.items() if v is not None}
    [view] = span_views(_data(span, present, scope_name), tenant_id="fallback")
    assert isinstance(view, SpanView)
    assert (view.trace_id, view.span_id) == (trace_id, span_id)
    assert view.parent_span_id == (b"" if parent == bytes(8) else parent)
    assert (view.name, view.trace_state, view.kind, view.status_code) == (
        name, trace_state, kind, status
    )  # fmt: skip
    assert (view.start_time_unix_nano, view.end_time_unix_nano) == (start, end)
    assert view.service_name == (service if service is not None else "")
    assert view.tenant_id == (tenant if tenant is not None else "fallback")
    assert view.resource_attributes == present
    assert view.span == span and view.scope is not None and view.scope.name == scope_name
    assert view.attributes is None  # converted only when asked for


def test_a_misspelled_field_cannot_be_written() -> None:
    [view] = span_views(_data(trace_pb2.Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8), {}, ""))
    assert not hasattr(view, "__dict__")
    with pytest.raises(AttributeError):
        view.servce_name = "x"  # type: ignore[attr-defined]
    assert {f.name for f in dataclasses.fields(SpanView)} >= {"span", "scope", "attributes"}


@given(attrs=attributes, keys=st.lists(st.sampled_from(["a", "b", "peer.service", "zz"])))
def test_first_attribute_agrees_with_attributes_of(
    attrs: list[tuple[str, common_pb2.AnyValue]], keys: list[str]
) -> None:
    span = trace_pb2.Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    for k, v in attrs:
        span.attributes.add(key=k, value=v)
    [lazy] = span_views(_data(span, {}, ""))
    [converted] = span_views(_data(span, {}, ""))
    all_attrs = attributes_of(converted)
    assert converted.attributes is all_attrs  # cached in the view
    want = next((all_attrs[k] for k in keys if k in all_attrs), "")
    # Without the cache (scans the protobuf) and with it: the same answer.
    assert first_attribute(lazy, tuple(keys)) == want
    assert lazy.attributes is None
    assert first_attribute(converted, tuple(keys)) == want

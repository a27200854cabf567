"""The compiled span-batch packer (``streams/_pack_columns.pyx``, ADR 0019) against the Python
packer it accelerates (``streams.packed_batch._columns`` + ``_pack``).

For every list of views the streams worker can hold (rendered views of the compiled pass, lazy
views once materialized, protobuf views, views re-parented after the pass) both must give the
same record, byte for byte; for a value no column can hold (an integer past its width, text
that is not UTF-8, a value of the wrong type) both must raise, so the encoder isolates the
same span (``streams/span_batch_messages.py``). The packer in use must be the compiled one
wherever ``make setup`` built it, or every keep-all span would silently take the slow path.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.trace.v1 import trace_pb2

from schemas import avro_codec
from schemas.span_batch_v3 import VERSION
from streams import otlp_scan, packed_batch
from streams.span_batch_messages import encode_span_batches
from streams.span_views import SpanView, span_views
from tests.otlp_strategies import traces_data, valid_spans

compiled = pytest.importorskip("streams._pack_columns")
pytestmark = pytest.mark.skipif(
    not otlp_scan.ENABLED, reason="compiled OTLP scan not built (make setup builds it)"
)

PROPS = settings(
    max_examples=int(os.environ.get("TRACEHOUSE_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def reference(views: list[Any]) -> dict[str, Any]:
    return packed_batch._pack(packed_batch._columns(views))


def fast(views: list[Any]) -> dict[str, Any]:
    otlp_scan.materialize(views)
    return compiled.pack(list(views), packed_batch.rendered, packed_batch.attributes_of)


def framed(views: list[Any]) -> bytes:
    """The compiled walk's own framing, without fastavro."""
    return packed_batch.encode_views(views)


def framed_reference(views: list[Any]) -> bytes:
    return avro_codec.encode("span_batch", reference(views), VERSION)


def outcome(pack: Any, views: list[Any]) -> tuple[str, Any]:
    """What a packer does with ``views``: its record, or the kind of error it raises."""
    try:
        return "record", pack(views)
    except (OverflowError, UnicodeEncodeError, TypeError, ValueError) as exc:
        return "refused", type(exc)


def all_kinds_of_views(data: trace_pb2.TracesData) -> list[list[Any]]:
    """The views of one message as each path makes them: rendered, lazy, protobuf."""
    payload = data.SerializeToString()
    out: list[list[Any]] = []
    for lazy in (False, True):
        views = otlp_scan.scan_views(payload, lazy=lazy)
        assert views is not None, "a storable message fell back"
        out.append(views)
    out.append(span_views(trace_pb2.TracesData.FromString(payload)))
    return out


def test_the_compiled_packer_is_the_one_in_use() -> None:
    assert tuple(packed_batch.LAYOUT.items()) == compiled.COLUMNS
    assert packed_batch._COMPILED is compiled


@PROPS
@given(traces_data(valid_spans))
def test_every_kind_of_view_packs_to_the_same_bytes(data: trace_pb2.TracesData) -> None:
    for views in all_kinds_of_views(data):
        expected = reference(views)
        assert fast(views) == expected
        message = framed(views)
        assert message == framed_reference(views)
        # What the sink reads back (fastavro, the writer schema) is the record itself.
        assert avro_codec.decode_as_written("span_batch", message)[1] == expected


@PROPS
@given(traces_data(valid_spans), st.data())
def test_a_re_parented_span_packs_its_new_parent(
    data: trace_pb2.TracesData, draw: st.DataObject
) -> None:
    for views in all_kinds_of_views(data):
        for view in views:
            view.parent_span_id = draw.draw(st.sampled_from([b"", b"\x00\xff" * 4, b"\xab" * 8]))
        assert fast(views) == reference(views)


# Values at and past every column's limit, set on a view after the pass made it.
INT32 = st.integers(-(2**31) - 1, 2**31)
EXTREME_INTS = st.one_of(
    st.sampled_from([-(2**63) - 1, -(2**63), -1, 0, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64]),
    st.integers(-(2**70), 2**70),
)
EXTREME_TEXTS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["\ud800", "a\udc80b", "\x00", "\U0001f600", "é" * 100]),
)
MUTATIONS = {
    "kind": INT32,
    "status_code": INT32,
    "start_time_unix_nano": EXTREME_INTS,
    "end_time_unix_nano": EXTREME_INTS,
    "name": EXTREME_TEXTS,
    "service_name": EXTREME_TEXTS,
    "tenant_id": EXTREME_TEXTS,
    "trace_state": st.one_of(EXTREME_TEXTS, st.just(b"not text"), st.none()),
    "attributes": st.one_of(
        st.dictionaries(EXTREME_TEXTS, EXTREME_TEXTS, max_size=3),
        st.just({"k": 1}),
        st.just({2: "v"}),
    ),
}


@PROPS
@given(traces_data(valid_spans), st.data())
def test_values_no_column_holds_are_refused_by_both(
    data: trace_pb2.TracesData, draw: st.DataObject
) -> None:
    payload = data.SerializeToString()
    views = otlp_scan.scan_views(payload)
    assert views is not None
    if not views:
        return
    at = draw.draw(st.integers(0, len(views) - 1))
    field = draw.draw(st.sampled_from(sorted(MUTATIONS)))
    setattr(views[at], field, draw.draw(MUTATIONS[field]))
    expected = outcome(reference, views)
    assert outcome(fast, views) == expected
    assert outcome(framed, views) == outcome(framed_reference, views)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("start_time_unix_nano", 2**63, OverflowError),
        ("end_time_unix_nano", -(2**63) - 1, OverflowError),
        ("kind", 2**31, OverflowError),
        ("name", "\ud800", UnicodeEncodeError),
        ("service_name", None, TypeError),
    ],
)
def test_named_limits_raise_what_the_reference_raises(
    field: str, value: Any, error: type[Exception]
) -> None:
    views = scanned_example()
    setattr(views[1], field, value)
    with pytest.raises(error):
        reference(views)
    with pytest.raises(error):
        fast(views)
    with pytest.raises(error):
        framed(views)


def test_one_unpackable_span_is_isolated_and_the_others_are_sent() -> None:
    views = scanned_example()
    views[1].start_time_unix_nano = 2**63
    out = encode_span_batches(views)
    assert [reason for reason, _ in out.refused] == ["encode_error"]
    assert out.refused[0][1] == [views[1]]
    sent = sum(avro_codec.decode("span_batch", p)["span_count"] for p in out.payloads)
    assert sent == len(views) - 1


@dataclasses.dataclass(eq=False)
class DictView:
    """A view class without slots: read by attribute, to the same bytes."""

    tenant_id: str
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    trace_state: str
    name: str
    kind: int
    service_name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    status_code: int
    resource_attributes: dict[str, str]
    span: Any
    scope: Any
    attributes: dict[str, str] | None = None
    adjusted: float = 0.0
    rendered: Any = None
    raw: bytes | None = None
    raw_scope: tuple[str, str] | None = None


def test_a_view_of_another_class_is_read_by_attribute() -> None:
    views = scanned_example()
    others: list[Any] = [
        DictView(**{f.name: getattr(v, f.name) for f in dataclasses.fields(SpanView)})
        for v in views
    ]
    assert fast(others) == reference(views) == fast(views)


def test_resources_go_once_each_in_first_seen_order() -> None:
    views = scanned_example()
    shared, other = views[0].resource_attributes, {"service.name": "other", "z": "1"}
    for i, view in enumerate(views):
        view.resource_attributes = other if i % 2 else shared
    record = fast(views)
    assert record == reference(views)
    lengths = record["resource_attribute_lengths"]
    assert len(lengths) == 2 * 4  # two resources, int32 each
    index = record["resource_index"]
    assert [int.from_bytes(index[i : i + 4], "little") for i in range(0, len(index), 4)] == [
        i % 2 for i in range(len(views))
    ]


def scanned_example() -> list[SpanView]:
    """Four rendered views of one message, with attributes, an event and a link."""
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.resource.v1 import resource_pb2

    def kv(k: str, v: str) -> common_pb2.KeyValue:
        return common_pb2.KeyValue(key=k, value=common_pb2.AnyValue(string_value=v))

    spans = [
        trace_pb2.Span(
            trace_id=bytes([1]) * 16,
            span_id=bytes([i + 1]) * 8,
            parent_span_id=b"" if i == 0 else bytes([1]) * 8,
            name=f"op-{i}",
            kind=trace_pb2.Span.SPAN_KIND_SERVER,
            start_time_unix_nano=1_000 + i,
            end_time_unix_nano=2_000 + i,
            attributes=[kv("http.route", f"/r/{i}"), kv("é", "日本")],
            events=[
                trace_pb2.Span.Event(time_unix_nano=1_500, name="ev", attributes=[kv("a", "b")])
            ],
            links=[trace_pb2.Span.Link(trace_id=bytes([2]) * 16, span_id=bytes([3]) * 8)],
        )
        for i in range(4)
    ]
    data = trace_pb2.TracesData(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource_pb2.Resource(attributes=[kv("service.name", "svc")]),
                scope_spans=[trace_pb2.ScopeSpans(spans=spans)],
            )
        ]
    )
    views = otlp_scan.scan_views(data.SerializeToString())
    assert views is not None and len(views) == 4
    return views

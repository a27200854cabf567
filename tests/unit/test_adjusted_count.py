"""Adjusted counts: RED and the service graph stay true while SDKs sample before sending."""

from __future__ import annotations

import os
import random
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from core.consistent_sampling import encode_threshold, keep_span, ratio_threshold
from streams.adjusted_count import (
    MAX_ADJUSTED_COUNT,
    adjusted_count,
    from_jaeger_tags,
    from_threshold,
)
from streams.red_metrics import RedAggregator
from streams.service_graph import ServiceGraph
from streams.span_views import SpanView, attributes_of
from tests.span_view_factory import span_view
from tracehouse.span_specs import any_value


def view(trace_state: str = "", parent: bytes = b"", span: Any = None, **extra: Any) -> SpanView:
    fields: dict[str, Any] = {
        "trace_id": os.urandom(16),
        "span_id": os.urandom(8),
        "name": "GET /",
        "service_name": "svc",
        "end_time_unix_nano": 2_000_000,
        **extra,
    }
    v = span_view(parent_span_id=parent, trace_state=trace_state, **fields)
    return replace(v, span=span) if span is not None else v


def jaeger_root(kind: str, param: Any) -> trace_pb2.Span:
    span = trace_pb2.Span()
    span.attributes.append(
        common_pb2.KeyValue(key="sampler.type", value=common_pb2.AnyValue(string_value=kind))
    )
    value = common_pb2.AnyValue()
    if isinstance(param, float):
        value.double_value = param
    elif isinstance(param, int):
        value.int_value = param
    else:
        value.string_value = str(param)
    span.attributes.append(common_pb2.KeyValue(key="sampler.param", value=value))
    return span


def test_sources_and_their_order() -> None:
    th = encode_threshold(ratio_threshold(0.25))
    assert adjusted_count(view(f"ot=th:{th}")) == 4.0
    assert adjusted_count(view(f"vendor=x,ot=rv:abcdef01234567;th:{th}")) == 4.0
    assert adjusted_count(view("ot=th:0")) == 1.0
    assert adjusted_count(view(span=jaeger_root("probabilistic", 0.1))) == 10.0
    assert adjusted_count(view(span=jaeger_root("lowerbound", 0.5))) == 2.0
    assert adjusted_count(view(span=jaeger_root("ratelimiting", 5.0))) == 1.0
    assert adjusted_count(view(span=jaeger_root("const", 1))) == 1.0
    # Children do not carry Jaeger's sampler tags; a child that somehow does is not weighted.
    assert adjusted_count(view(parent=b"\x01" * 8, span=jaeger_root("probabilistic", 0.1))) == 1.0
    # The threshold wins over tags.
    assert adjusted_count(view(f"ot=th:{th}", span=jaeger_root("probabilistic", 0.1))) == 4.0
    for bad in ("ot=th:", "ot=th:zz", "ot=th:123456789abcdef0", "ot=th:ffffffffffffff0", "ot=th"):
        assert adjusted_count(view(bad)) == 1.0, bad
    for kind, param in [
        ("probabilistic", 0.0),
        ("probabilistic", 2.0),
        ("probabilistic", "nan"),
        ("probabilistic", "x"),
    ]:
        assert adjusted_count(view(span=jaeger_root(kind, param))) == 1.0


@settings(max_examples=500, deadline=None)
@given(
    st.text(max_size=60),
    st.lists(
        st.tuples(
            st.sampled_from(["sampler.type", "sampler.param", "x"]),
            st.one_of(st.text(max_size=10), st.floats(), st.integers(), st.booleans(), st.none()),
        )
    ),
)
def test_any_input_gives_a_bounded_weight(trace_state: str, pairs: list[tuple[str, Any]]) -> None:
    for weight in (from_threshold(trace_state), from_jaeger_tags(pairs)):
        assert weight is None or 1.0 <= weight <= MAX_ADJUSTED_COUNT
    assert 1.0 <= adjusted_count(view(trace_state)) <= MAX_ADJUSTED_COUNT


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["sampler.type", "sampler.param", "x"]),
            st.one_of(
                st.sampled_from(["probabilistic", "lowerbound", "const", "0.25", "1e-7"]),
                st.floats(),
                st.integers(-(2**63), 2**63 - 1),
                st.booleans(),
                st.none(),
            ),
        ),
        max_size=5,
    )
)
def test_a_root_weighs_the_same_from_rendered_or_raw_attributes(
    pairs: list[tuple[str, Any]],
) -> None:
    """adjusted_count reads the rendered attribute strings when something already rendered
    them, the protobuf values otherwise; both must give the same weight, and it is kept."""
    span = trace_pb2.Span()
    for key, value in pairs:
        typed = common_pb2.AnyValue() if value is None else any_value(value)
        span.attributes.append(common_pb2.KeyValue(key=key, value=typed))
    raw, rendered = view(span=span), view(span=span)
    attributes_of(rendered)
    assert rendered.attributes is not None
    assert adjusted_count(raw) == adjusted_count(rendered)
    assert raw.adjusted == adjusted_count(raw)  # kept for the next asker


def test_red_calls_stay_within_5_percent_while_sdks_sample_consistently() -> None:
    rng = random.Random(5)
    ratio = 0.05
    threshold = ratio_threshold(ratio)
    true_calls = {"GET /busy": 300_000, "GET /rare": 3_000}
    red = RedAggregator()
    kept = {op: 0 for op in true_calls}
    for op, n in true_calls.items():
        for _ in range(n):
            trace_id = rng.randbytes(16)
            keep, state = keep_span(trace_id, "", threshold)
            if keep:
                kept[op] += 1
                # the 1-in-100 rare op is sampled at 100 % by its own SDK (no threshold).
                red.add([view(state or "", name=op)] if op == "GET /busy" else [])
        if op == "GET /rare":
            red.add([view("", name=op) for _ in range(n)])
    rows = {r["span_name"]: r for r in red.drain("p0", 0, 1)["series"]}
    assert abs(rows["GET /busy"]["calls"] - 300_000) <= 0.05 * 300_000, (
        rows["GET /busy"]["calls"],
        kept,
    )
    assert rows["GET /rare"]["calls"] == 3_000
    assert sum(rows["GET /busy"]["bucket_counts"]) == rows["GET /busy"]["calls"]


def test_service_graph_edges_are_weighted() -> None:
    graph = ServiceGraph()
    th = encode_threshold(ratio_threshold(0.1))
    for _ in range(50):
        trace = os.urandom(16)
        client = view(f"ot=th:{th}", trace_id=trace, kind=3, service_name="frontend")
        server = view(
            f"ot=th:{th}", parent=client.span_id, trace_id=trace, kind=2, service_name="cart"
        )
        graph.add([client, server], 0.0)
    (edge,) = graph.drain("p0", 0, 1)["edges"]
    assert edge["calls"] == 500

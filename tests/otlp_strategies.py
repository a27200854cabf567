"""Hypothesis strategies for OTLP trace messages with values at every limit.

Shared by the tests that hold a compiled pass equal to the protobuf path it accelerates
(``tests/unit/test_otlp_scan.py``, ``tests/unit/test_otlp_split_bytes.py``): ids of every
length including all zeros, times past ``DateTime64(9)``, every AnyValue shape nested, texts
with NULs, astral characters and 3,000-character values, events and links.
"""

from __future__ import annotations

from typing import Any, cast

from hypothesis import strategies as st
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from schemas.span_limits import MAX_TIME_UNIX_NANO

EDGE_TIMES = [0, 1, MAX_TIME_UNIX_NANO, MAX_TIME_UNIX_NANO + 1, 2**64 - 1]
times = st.one_of(st.sampled_from(EDGE_TIMES), st.integers(0, 2**64 - 1))
ids = st.one_of(
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=8, max_size=8),
    st.sampled_from([b"", bytes(16), bytes(8), b"\x01" * 16, b"\x01" * 8]),
    st.binary(max_size=20),
)
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "é", "\x00", "日本", "\U0001f600", "a=b", "x" * 3000]),
)


def any_values_from(text: Any, max_leaves: int, max_bytes: int = 16) -> Any:
    """AnyValues of every kind, arrays and maps nested, with strings (values and map keys)
    drawn from ``text``."""
    return st.recursive(
        st.one_of(
            st.builds(lambda s: common_pb2.AnyValue(string_value=s), text),
            st.builds(lambda b: common_pb2.AnyValue(bool_value=b), st.booleans()),
            st.builds(lambda i: common_pb2.AnyValue(int_value=i), st.integers(-(2**63), 2**63 - 1)),
            st.builds(lambda d: common_pb2.AnyValue(double_value=d), st.floats()),
            st.builds(lambda b: common_pb2.AnyValue(bytes_value=b), st.binary(max_size=max_bytes)),
            st.just(common_pb2.AnyValue()),
        ),
        lambda children: st.one_of(
            st.builds(
                lambda xs: common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=xs)),
                st.lists(children, max_size=3),
            ),
            st.builds(
                lambda kvs: common_pb2.AnyValue(
                    kvlist_value=common_pb2.KeyValueList(
                        values=[common_pb2.KeyValue(key=k, value=v) for k, v in kvs]
                    )
                ),
                st.lists(st.tuples(text, children), max_size=3),
            ),
        ),
        max_leaves=max_leaves,
    )


any_values = any_values_from(texts, max_leaves=6, max_bytes=10)
key_values = st.lists(
    st.builds(
        lambda k, v: common_pb2.KeyValue(key=k, value=v),
        st.one_of(texts, st.sampled_from(["service.name", "tracehouse.tenant", "sampler.type"])),
        any_values,
    ),
    max_size=5,
)
events = st.builds(
    lambda t, n, a: trace_pb2.Span.Event(time_unix_nano=t, name=n, attributes=a),
    times,
    texts,
    key_values,
)
links = st.builds(
    lambda t, s, st_, a: trace_pb2.Span.Link(trace_id=t, span_id=s, trace_state=st_, attributes=a),
    ids,
    ids,
    texts,
    key_values,
)
spans = st.builds(
    lambda tid, sid, parent, name, kind, start, end, attrs, evs, lks, code, msg, state: (
        trace_pb2.Span(
            trace_id=tid, span_id=sid, parent_span_id=parent, name=name,
            kind=cast(Any, kind),
            start_time_unix_nano=start, end_time_unix_nano=end, attributes=attrs,
            events=evs, links=lks, status=trace_pb2.Status(code=cast(Any, code), message=msg),
            trace_state=state, flags=0x301,
        )
    ),
    ids, ids, ids, texts, st.integers(-(2**31), 2**31 - 1), times, times, key_values,
    st.lists(events, max_size=2), st.lists(links, max_size=2), st.integers(0, 2), texts,
    st.sampled_from(["", "ot=th:8", "rojo=00f067aa0ba902b7"]),
)  # fmt: skip
valid_spans = st.builds(
    lambda tid, sid, parent, name, start, dur, attrs: trace_pb2.Span(
        trace_id=tid, span_id=sid, parent_span_id=parent, name=name,
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=start, end_time_unix_nano=start + dur, attributes=attrs,
    ),
    st.binary(min_size=16, max_size=16).filter(any),
    st.binary(min_size=8, max_size=8).filter(any),
    st.sampled_from([b"", bytes(8), b"\x07" * 8]),
    texts,
    st.integers(0, 2**62),
    st.integers(0, 2**40),
    key_values,
)  # fmt: skip


def traces_data(span_strategy: Any) -> Any:
    scope_spans = st.builds(
        lambda name, version, attrs, ss: trace_pb2.ScopeSpans(
            scope=common_pb2.InstrumentationScope(name=name, version=version, attributes=attrs),
            spans=ss,
        ),
        texts,
        texts,
        key_values,
        st.lists(span_strategy, max_size=4),
    )
    resource_spans = st.builds(
        lambda attrs, ss, url: trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=attrs), scope_spans=ss, schema_url=url
        ),
        key_values,
        st.lists(scope_spans, max_size=3),
        texts,
    )
    return st.builds(
        lambda rs: trace_pb2.TracesData(resource_spans=rs), st.lists(resource_spans, max_size=3)
    )


def _with_defect(span: trace_pb2.Span, defect: str, value: int) -> trace_pb2.Span:
    out = trace_pb2.Span()
    out.CopyFrom(span)
    big = MAX_TIME_UNIX_NANO + 1 + value
    if defect == "start":
        out.start_time_unix_nano = big
    elif defect == "end":
        out.end_time_unix_nano = big
    elif defect == "event":
        out.events.add(time_unix_nano=big)
    elif defect == "zero_trace":
        out.trace_id = bytes(16)
    elif defect == "zero_span":
        out.span_id = bytes(8)
    elif defect == "short_trace":
        out.trace_id = out.trace_id[: value % 16]
    elif defect == "long_span":
        out.span_id = out.span_id + b"\x01"
    else:
        out.parent_span_id = b"\x01" * (1 + value % 7)
    return out


# A storable span with exactly one thing storage refuses: a request holding one must be
# refused span by span, whatever else it holds.
DEFECTS = ("start", "end", "event", "zero_trace", "zero_span", "short_trace", "long_span", "parent")
defective_spans = st.builds(
    _with_defect, valid_spans, st.sampled_from(DEFECTS), st.integers(0, 2**63 - 2)
)


def one_defect_among(valid: Any = valid_spans) -> Any:
    """A TracesData of storable spans with one defective span put in somewhere."""
    return st.builds(
        lambda good, bad, at: trace_pb2.TracesData(
            resource_spans=[
                trace_pb2.ResourceSpans(
                    resource=resource_pb2.Resource(),
                    scope_spans=[trace_pb2.ScopeSpans(spans=[*good[:at], bad, *good[at:]])],
                )
            ]
        ),
        st.lists(valid, max_size=5),
        defective_spans,
        st.integers(0, 5),
    )

"""Raw-topic encodings a producer may choose, and traces that arrive on the wrong partition.

The processor is driven without a broker, with the decoders the CLI hands the worker
(``tracehouse.raw_decoders``); the payloads are produced by the OTLP/JSON encoder of the tests
(written from the OTLP spec) and by py_zipkin, not by our own decoders' inverse.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_zipkin import Kind
from py_zipkin.encoding import Encoding, get_encoder
from py_zipkin.encoding._helpers import Span, create_endpoint

from core import settings as core_settings
from core.partitioning import PARTITIONERS
from streams import counters as c
from streams.counters import CounterSet
from streams.partition_processor import (
    ROUTE_CHECKS_PER_MESSAGE,
    AggregationOptions,
    PartitionProcessor,
    Routing,
)
from streams.raw_encodings import ENCODINGS, RawEncodings, header_value
from streams.sampling_config import parse_config
from tracehouse.raw_decoders import raw_decoders
from tracehouse.span_specs import SpanSpec, payload, sid, tid

ENCODED = RawEncodings("otlp_proto", raw_decoders())


def _proc(routing: Routing | None = None, default: str = "otlp_proto") -> PartitionProcessor:
    cfg = parse_config({"decision_wait": 1})
    return PartitionProcessor(
        "raw/0",
        cfg,
        cfg.policies,
        AggregationOptions(red_window_seconds=1),
        CounterSet(),
        encodings=RawEncodings(default, raw_decoders()),
        routing=routing,
    )


def _otlp_json(trace: bytes, span: bytes) -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                    },
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": trace.hex(),
                                    "spanId": span.hex(),
                                    "name": "op",
                                    "kind": 2,
                                    "startTimeUnixNano": "1000",
                                    "endTimeUnixNano": "2000",
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    ).encode()


def _zipkin(encoding: Encoding, trace: bytes) -> bytes:
    span = Span(
        trace_id=trace.hex(),
        name="get",
        parent_id=None,
        span_id=sid(7).hex(),
        kind=Kind.SERVER,
        timestamp=1.0,
        duration=0.5,
        local_endpoint=create_endpoint(80, "zsvc", "10.0.0.1"),
    )
    encoder = get_encoder(encoding)
    body = encoder.encode_queue([encoder.encode_span(span)])
    return body.encode() if isinstance(body, str) else body


def test_settings_offer_exactly_the_known_encodings() -> None:
    assert core_settings.RAW_ENCODINGS == ENCODINGS
    assert set(ENCODED.decoders) == set(ENCODINGS)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("otlp_proto", payload([SpanSpec(tid(1), sid(1), "svc")])),
        ("otlp_json", _otlp_json(tid(1), sid(1))),
        ("zipkin_json", _zipkin(Encoding.V2_JSON, tid(1))),
        ("zipkin_proto", _zipkin(Encoding.V2_PROTO3, tid(1))),
    ],
    ids=["otlp_proto", "otlp_json", "zipkin_json", "zipkin_proto"],
)
def test_each_encoding_by_header_and_by_topic_default(encoding: str, body: bytes) -> None:
    for proc, header in ((_proc(), encoding), (_proc(default=encoding), None)):
        assert proc.process(0, body, 100.0, header) is None
        assert proc.pending.get(c.SPANS_RECEIVED) == 1
        out = proc.tick(102.0)
        assert [r.trace_id for r in out.sampled] == [tid(1)]


@pytest.mark.parametrize(
    ("header", "body", "reason"),
    [
        ("otlp_proto", b"\xff\xff", "malformed"),
        ("otlp_json", b"{not json", "malformed_otlp_json"),
        ("otlp_json", payload([SpanSpec(tid(1), sid(1), "svc")]), "malformed_otlp_json"),
        ("zipkin_json", b'{"a": 1}', "malformed_zipkin_json"),
        ("zipkin_proto", b"\x0a\xff", "malformed_zipkin_proto"),
        ("jaeger_thrift", b"", "unknown_encoding"),
        ("", b"\xff\xff", "malformed"),  # an empty header means the topic's default
    ],
    ids=[
        "proto",
        "json-syntax",
        "json-given-proto",
        "zipkin-object",
        "zipkin-proto-truncated",
        "unknown",
        "empty-header",
    ],
)
def test_a_message_that_does_not_decode_is_counted_and_dead_lettered(
    header: str, body: bytes, reason: str
) -> None:
    proc = _proc()
    detail = proc.process(0, body, 100.0, header)
    assert detail  # the worker sends the message to the DLQ with this text
    assert proc.pending.get(c.MESSAGES_REJECTED, reason) == 1


def test_spans_refused_while_decoding_are_counted_and_the_message_dead_lettered() -> None:
    good = json.loads(_otlp_json(tid(1), sid(1)))
    spans = good["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "spanId": "not hex"})
    proc = _proc()
    body = json.dumps(good).encode()
    assert proc.process(0, body, 100.0, "otlp_json") is None
    assert proc.pending.get(c.SPANS_RECEIVED) == 2
    assert proc.pending.get(c.SPANS_REJECTED, "invalid_span_id_encoding") == 1
    [letter] = proc.dead_letters
    assert (letter.reason, letter.payload, letter.spans) == ("invalid_span_id_encoding", body, 1)


@pytest.mark.parametrize(
    ("headers", "value"),
    [
        ([("encoding", b"otlp_json")], "otlp_json"),
        ({"Encoding": b" zipkin_json "}, "zipkin_json"),
        ([(b"other", b"x")], None),
        (None, None),
        ([("encoding", b"\xff" * 500)], "\ufffd" * 64),
    ],
)
def test_header_value(headers: Any, value: str | None) -> None:
    assert header_value(headers) == value


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from((*ENCODINGS, "", "bogus")),
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=20,
        ).map(lambda doc: json.dumps(doc).encode()),
    ),
)
def test_no_message_crashes_the_processor(encoding: str, body: bytes) -> None:
    proc = _proc()
    detail = proc.process(0, body, 100.0, encoding)
    counted = proc.pending.drain()
    if detail is None:  # decoded: every span is received (and maybe refused by reason)
        refused = sum(n for (name, _r), n in counted.items() if name == c.SPANS_REJECTED)
        assert counted.get((c.SPANS_RECEIVED, ""), 0) >= refused
    else:
        assert sum(n for (name, _r), n in counted.items() if name == c.MESSAGES_REJECTED) == 1


@pytest.mark.parametrize("partitioner", sorted(PARTITIONERS))
def test_traces_on_a_partition_their_partitioner_does_not_pick_are_counted(
    partitioner: str,
) -> None:
    partitions = 4
    partition_of = PARTITIONERS[partitioner]
    proc = _proc(Routing(0, lambda trace: partition_of(trace, partitions)))
    traces = [tid(n) for n in range(1, 41)]
    misplaced = sum(partition_of(t, partitions) != 0 for t in traces)
    assert 0 < misplaced < len(traces)
    for offset, trace in enumerate(traces):
        proc.process(offset, payload([SpanSpec(trace, sid(1), "svc")]), 100.0)
        # a second span of the same trace on the same partition counts the trace once
        proc.process(offset + 100, payload([SpanSpec(trace, sid(2), "svc")]), 100.0)
    assert proc.pending.get(c.TRACES_MISROUTED) == misplaced
    unchecked = _proc(None)
    unchecked.process(0, payload([SpanSpec(tid(1), sid(1), "svc")]), 100.0)
    assert unchecked.pending.get(c.TRACES_MISROUTED) == 0


def test_route_checks_per_message_are_bounded() -> None:
    """A message of many traces all on the wrong partition counts at most the checked ones:
    a lower bound that still shows the wrong partitioner; one-trace messages count exactly."""
    proc = _proc(Routing(0, lambda trace: 1))  # every trace belongs elsewhere
    many = [SpanSpec(tid(n), sid(1), "svc") for n in range(1, 51)]
    proc.process(0, payload(many), 100.0)
    assert proc.pending.get(c.TRACES_MISROUTED) == ROUTE_CHECKS_PER_MESSAGE


def test_a_partition_that_saw_only_undecodable_messages_still_publishes_their_count() -> None:
    proc = _proc()
    assert proc.process(0, b"\xff\xff", 100.0) is not None
    out = proc.tick(102.0)  # the window (1 s) closed: pending counts go out with the state
    assert out.counters.get((c.MESSAGES_REJECTED, "malformed")) == 1
    assert out.aggregates_through == 0  # and the message's offset becomes committable

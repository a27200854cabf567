"""Kept spans packed as they are decided (``streams/kept_packer.py``, ADR 0021) against the
per-list encoder the tick used before (``encode_span_batches``).

Whatever groups the views arrive in and whatever the limits, the messages must carry the same
rows in the same order, each within ``max_spans`` and ``max_bytes``; a span no message can
carry is refused with the reason the per-list encoder gives, alone, and the others are sent.
An open batch takes a group all or nothing. A keep-all processor given the byte limit packs on
arrival and sends exactly the rows it sent before, with the same counters.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.trace.v1 import trace_pb2

from schemas import avro_codec
from sinks.decoding import decode_message
from streams import counters as c
from streams import otlp_scan, packed_batch
from streams.counters import CounterSet
from streams.kept_packer import KeptPacker
from streams.kept_spans import encode_kept
from streams.partition_processor import AggregationOptions, PartitionProcessor, TickOutput
from streams.sampling_config import parse_config
from streams.span_batch_messages import encode_span_batches
from streams.span_views import SpanView, span_views
from tests.otlp_strategies import traces_data, valid_spans
from tracehouse.span_specs import SpanSpec, payload, sid, tid

pytestmark = pytest.mark.skipif(
    not (packed_batch.OPEN_BATCHES and otlp_scan.ENABLED),
    reason="compiled packer or OTLP scan not built (make setup builds them)",
)

PROPS = settings(
    max_examples=int(os.environ.get("TRACEHOUSE_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def rows(payloads: list[bytes]) -> list[dict[str, Any]]:
    """The otel_traces rows of ``payloads``, as the sink decodes them."""
    out: list[dict[str, Any]] = []
    for p in payloads:
        table = decode_message("spans", p).table
        if table is not None:
            out.extend(table.to_pylist())
    return out


def spans_in(payload: bytes) -> int:
    return int(avro_codec.decode("span_batch", payload)["span_count"])


def views_of(data: trace_pb2.TracesData, lazy: bool) -> list[SpanView]:
    views = otlp_scan.scan_views(data.SerializeToString(), lazy=lazy)
    assert views is not None, "a storable message fell back"
    return views


def split(views: list[SpanView], cuts: list[int]) -> list[list[SpanView]]:
    """``views`` in consecutive groups at ``cuts`` (positions, any order, repeats allowed)."""
    bounds = sorted({0, len(views), *(min(x, len(views)) for x in cuts)})
    return [views[a:b] for a, b in itertools.pairwise(bounds)]


def pack(groups: list[list[SpanView]], max_bytes: int, max_spans: int) -> KeptPacker:
    packer = KeptPacker(max_bytes, max_spans)
    for group in groups:
        packer.add(group)
    return packer


@PROPS
@given(
    traces_data(valid_spans),
    st.booleans(),
    st.lists(st.integers(0, 40), max_size=6),
    st.integers(1, 7),
    st.sampled_from([1 << 30, 6_000, 2_500, 1_200]),
)
def test_groups_make_the_rows_the_per_list_encoder_makes_within_the_limits(
    data: trace_pb2.TracesData, lazy: bool, cuts: list[int], max_spans: int, max_bytes: int
) -> None:
    views = views_of(data, lazy)
    packer = pack(split(views, cuts), max_bytes, max_spans)
    payloads, refused = packer.drain()
    expected = encode_span_batches(views_of(data, lazy), max_bytes=max_bytes)
    assert rows(payloads) == rows(expected.payloads)
    assert [(r, [v.span_id for v in vs]) for r, vs in refused] == [
        (r, [v.span_id for v in vs]) for r, vs in expected.refused
    ]
    for p in payloads:
        assert len(p) <= max_bytes
        assert 1 <= spans_in(p) <= max(max_spans, 1)
    assert packer.drain() == ([], [])  # drained: nothing is sent twice


MUTATIONS: dict[str, Any] = {
    "start_time_unix_nano": st.sampled_from([2**63, -(2**63) - 1, 2**64]),
    "kind": st.sampled_from([2**31, -(2**31) - 1]),
    "name": st.sampled_from(["\ud800", None, b"bytes"]),
    "service_name": st.sampled_from([None, 7]),
}


@PROPS
@given(traces_data(valid_spans), st.data())
def test_an_unpackable_span_is_refused_alone_and_the_rest_sent_in_order(
    data: trace_pb2.TracesData, draw: st.DataObject
) -> None:
    views = views_of(data, lazy=False)
    if not views:
        return
    at = draw.draw(st.integers(0, len(views) - 1))
    field = draw.draw(st.sampled_from(sorted(MUTATIONS)))
    setattr(views[at], field, draw.draw(MUTATIONS[field]))
    cuts = draw.draw(st.lists(st.integers(0, len(views)), max_size=4))
    payloads, refused = pack(split(views, cuts), 1 << 30, 3).drain()
    assert [(r, vs) for r, vs in refused] == [("encode_error", [views[at]])]
    others = [v for i, v in enumerate(views) if i != at]
    assert rows(payloads) == rows(encode_span_batches(others).payloads)


def test_a_span_over_the_byte_limit_alone_is_refused_and_the_others_sent() -> None:
    specs = [SpanSpec(tid(1), sid(n + 1), "svc", name=f"op-{n}") for n in range(5)]
    big = SpanSpec(tid(1), sid(9), "svc", attributes={"blob": "x" * 20_000})
    views = span_views(trace_pb2.TracesData.FromString(payload([*specs[:2], big, *specs[2:]])))
    payloads, refused = pack([views[:3], views[3:]], 8_000, 100).drain()
    assert [(r, [v.span_id for v in vs]) for r, vs in refused] == [("span_too_large", [sid(9)])]
    assert [r["SpanName"] for r in rows(payloads)] == [f"op-{n}" for n in range(5)]
    assert all(len(p) <= 8_000 for p in payloads)


def test_an_open_batch_takes_a_group_all_or_nothing_and_undoes_the_last() -> None:
    views = views_of(traces_data_example(), lazy=False)
    batch = packed_batch.OpenBatch()
    batch.append(views[:2])
    before = batch.frame()
    poisoned = views[2:]
    poisoned[-1].kind = 2**40
    with pytest.raises(OverflowError):
        batch.append(poisoned)
    assert len(batch) == 2 and batch.frame() == before
    batch.undo()  # after a failed append: nothing to take back
    assert batch.frame() == before == packed_batch.encode_views(views[:2])
    batch.append(views[2:3])
    assert len(batch) == 3 and batch.framed_size() == len(batch.frame())
    batch.undo()
    assert batch.frame() == before


def traces_data_example() -> trace_pb2.TracesData:
    specs = [
        SpanSpec(tid(1 + n % 2), sid(n + 1), f"svc-{n % 3}", attributes={"k": str(n)})
        for n in range(6)
    ]
    return trace_pb2.TracesData.FromString(payload(specs))


KEEP_ALL = parse_config(
    {"decision_wait": 5, "policies": [{"name": "all", "type": "always_sample"}]}
)


def keep_all(kept_message_bytes: int | None) -> PartitionProcessor:
    return PartitionProcessor(
        "raw/0",
        KEEP_ALL,
        KEEP_ALL.policies,
        AggregationOptions(red_window_seconds=1),
        CounterSet(),
        kept_message_bytes=kept_message_bytes,
    )


def run(proc: PartitionProcessor, messages: list[bytes]) -> list[TickOutput]:
    outs = []
    for offset, message in enumerate(messages):
        proc.process(offset, message, 100.0 + offset * 0.4)
        if offset % 3 == 2:
            outs.append(proc.tick(100.0 + offset * 0.4))
    outs.append(proc.tick(200.0))
    return outs


def test_a_keep_all_processor_packs_on_arrival_the_rows_and_counts_it_sent_at_the_tick() -> None:
    first = SpanSpec(tid(1), sid(1), "shop")
    messages = [
        payload([first, first, SpanSpec(tid(2), sid(2), "pay")]),  # a copy in the message
        payload([first, SpanSpec(tid(1), sid(3), "shop", parent_id=sid(1))]),  # a late one
        payload([SpanSpec(tid(n), sid(n), f"svc-{n % 4}") for n in range(10, 60)]),
        payload([SpanSpec(tid(70), sid(70), "svc", attributes={"v": "x" * 6000})]),
        b"not protobuf",
    ]
    packing, plain = keep_all(4_000), keep_all(None)
    assert packing.packer is not None and plain.packer is None
    on_arrival = run(packing, messages)
    at_tick = run(plain, messages)
    assert all(not out.sampled for out in on_arrival)
    # What the tick encoded before (encode_kept counts its refusals into the output).
    before = [encode_kept([(0, out)], 4_000)[1] for out in at_tick]
    sent = [p for out in on_arrival for p in out.packed]
    assert rows(sent) == rows([p for encoded in before for p in encoded.payloads])
    assert len(rows(sent)) == 2 + 1 + 50
    refused = [(r, [v.span_id for v in vs]) for out in on_arrival for r, vs in out.refused]
    assert refused == [("span_too_large", [sid(70)])]
    assert refused == [(r, [v.span_id for v in vs]) for e in before for r, vs in e.refused]
    counted, expected = CounterSet(), CounterSet()
    for mine, theirs in zip(on_arrival, at_tick, strict=True):
        counted.merge(mine.counters)
        expected.merge(theirs.counters)
    assert counted.get(c.SPANS_REJECTED, "span_too_large") == 1
    assert counted.drain() == expected.drain()


def test_encode_kept_sends_packed_messages_first_in_partition_order_then_the_views() -> None:
    views = views_of(traces_data_example(), lazy=False)
    p3, p1 = TickOutput(sampled=views[4:]), TickOutput(sampled=views[3:4])
    p3.packed, p1.packed = [packed_batch.encode_views(views[2:3])], [
        packed_batch.encode_views(views[:2])
    ]
    p1.refused = [("encode_error", [views[0]])]
    key, encoded = encode_kept([(1, p1), (3, p3)], 1 << 20)
    assert key == b"1"
    order = [*views[:2], views[2], views[3], *views[4:]]
    assert rows(encoded.payloads) == rows([packed_batch.encode_views(order)])
    assert encoded.refused == [("encode_error", [views[0]])]

"""Ingest's compiled partition split against the protobuf split it accelerates.

For every request the compiled split (``ingest/_otlp_split.pyx``) either gives exactly the
messages the protobuf split gives (:func:`ingest.otlp_split.split_by_partition` then
:func:`~ingest.otlp_split.bounded_chunks`): same partitions in the same order, byte-identical
payloads, same span counts and Kafka keys; or it declines and the protobuf split decides,
with its rejection reasons. It never raises anything else and never crashes on hostile bytes.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from core.partitioning import partition_for_key
from ingest import otlp_split
from ingest.rpc_status import varint
from tests.otlp_strategies import one_defect_among, spans, traces_data, valid_spans

compiled = pytest.importorskip("ingest._otlp_split")

EXAMPLES = int(os.environ.get("TRACEHOUSE_FUZZ_EXAMPLES", "150"))
PROPS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def protobuf_cut(
    payload: bytes, partitions: int, max_bytes: int
) -> tuple[list[tuple[int, bytes, int, bytes]], Counter[str]]:
    """The protobuf split and serialization, as ingest ran them before the compiled one."""
    split = otlp_split.split_by_partition(trace_pb2.TracesData.FromString(payload), partitions)
    out: list[tuple[int, bytes, int, bytes]] = []
    rejected = Counter(split.rejected)
    for p, td in split.by_partition.items():
        chunks, too_large = otlp_split.bounded_chunks(td, max_bytes, split.counts[p])
        rejected["span_too_large"] += len(too_large)
        out.extend((p, c.payload, c.spans, c.first_trace_id) for c in chunks)
    return out, +rejected


def assert_same(
    data: trace_pb2.TracesData, partitions: int = 4, max_bytes: int = 1 << 20
) -> list[tuple[int, bytes, int, bytes]] | None:
    payload = data.SerializeToString()
    try:
        fast = compiled.split(payload, partitions, partition_for_key, max_bytes)
    except compiled.Fallback:
        return None
    slow, rejected = protobuf_cut(payload, partitions, max_bytes)
    assert not rejected, "the compiled split accepted a request the protobuf split refuses"
    assert fast == slow
    return list(fast)


@PROPS
@given(traces_data(spans), st.integers(1, 16))
def test_any_request_gives_the_protobuf_messages_or_declines(
    data: trace_pb2.TracesData, partitions: int
) -> None:
    assert_same(data, partitions)


@PROPS
@given(traces_data(valid_spans), st.integers(1, 16))
def test_storable_requests_take_the_compiled_split(
    data: trace_pb2.TracesData, partitions: int
) -> None:
    """Not a test that cannot fail: storable spans under the limit must not fall back."""
    out = assert_same(data, partitions)
    assert out is not None
    total = sum(len(ss.spans) for rs in data.resource_spans for ss in rs.scope_spans)
    assert sum(spans for _, _, spans, _ in out) == total


@PROPS
@given(one_defect_among(), st.integers(1, 16))
def test_one_refused_span_leaves_the_request_to_the_protobuf_split(
    data: trace_pb2.TracesData, partitions: int
) -> None:
    with pytest.raises(compiled.Fallback):
        compiled.split(data.SerializeToString(), partitions, partition_for_key, 1 << 20)
    _, rejected = protobuf_cut(data.SerializeToString(), partitions, 1 << 20)
    assert sum(rejected.values()) == 1


@PROPS
@given(traces_data(valid_spans), st.integers(1, 4000))
def test_a_message_over_the_limit_is_left_to_the_halving_split(
    data: trace_pb2.TracesData, max_bytes: int
) -> None:
    out = assert_same(data, 3, max_bytes)
    if out is not None:
        assert all(len(payload) <= max_bytes for _, payload, _, _ in out)


@PROPS
@given(st.binary(max_size=400))
def test_hostile_bytes_never_crash(payload: bytes) -> None:
    with contextlib.suppress(compiled.Fallback):
        compiled.split(payload, 4, partition_for_key, 1 << 20)


def test_zero_parents_empty_resources_and_scopes_match_the_protobuf_split() -> None:
    data = trace_pb2.TracesData()
    rs = data.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    ss = rs.scope_spans.add()  # no scope, no resource: both still written once copied
    for i in range(1, 9):
        ss.spans.add(
            trace_id=bytes([i]) * 16, span_id=bytes([i]) * 8, parent_span_id=bytes(8), name="op"
        )
    rs2 = data.resource_spans.add(
        resource=resource_pb2.Resource(
            attributes=[
                common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value="x"))
            ]
        )
    )
    rs2.scope_spans.add()  # a scope with no spans goes nowhere
    ss2 = rs2.scope_spans.add(scope=common_pb2.InstrumentationScope(name="lib"), schema_url="u")
    ss2.spans.add(trace_id=b"\x09" * 16, span_id=b"\x09" * 8, parent_span_id=b"\x01" * 8)
    out = assert_same(data, 4)
    assert out is not None
    for _, payload, _, _ in out:
        for rs_out in trace_pb2.TracesData.FromString(payload).resource_spans:
            for ss_out in rs_out.scope_spans:
                assert ss_out.spans
                for span in ss_out.spans:
                    assert span.parent_span_id in (b"", b"\x01" * 8)


def test_the_admission_path_uses_the_compiled_split() -> None:
    assert otlp_split.COMPILED
    data = trace_pb2.TracesData()
    data.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8
    )
    cut = otlp_split.partition_chunks(data, 4, 1 << 20)
    assert [c.spans for _, c in cut.chunks] == [1] and not cut.rejected
    bad = trace_pb2.TracesData()
    bad.CopyFrom(data)
    bad.resource_spans[0].scope_spans[0].spans.add(trace_id=bytes(16), span_id=b"\x02" * 8)
    cut = otlp_split.partition_chunks(bad, 4, 1 << 20)
    assert cut.rejected == Counter({"zero_trace_id": 1})
    assert sum(cut.counts.values()) == 1


# -- the request's own bytes (ingest cuts them when it did not change the request) ----------


def _fields(message: bytes) -> list[bytes]:
    """The top-level fields of a serialized message, each as its own bytes (key included)."""
    out: list[bytes] = []
    at = 0
    while at < len(message):
        start = at
        tag, at = _read_varint(message, at)
        wire = tag & 7
        if wire == 0:
            _, at = _read_varint(message, at)
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            n, at = _read_varint(message, at)
            at += n
        out.append(message[start:at])
    return out


def _read_varint(buf: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def known(payload: bytes) -> trace_pb2.TracesData:
    """A message as every reader downstream sees it: fields it does not know are skipped."""
    data = trace_pb2.TracesData.FromString(payload)
    data.DiscardUnknownFields()
    return data


def _framed(field: int, body: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(body)) + body


def relaid(data: trace_pb2.TracesData, order: st.DataObject) -> bytes:
    """``data`` as a client might lay it out: the fields of every span, scope spans and
    resource spans in an order hypothesis picks, unknown fields here and there. The protobuf
    runtime reads it as ``data``; it never writes it so."""

    def shuffle(parts: list[bytes]) -> list[bytes]:
        """Fields by number in an order hypothesis picks; a repeated field's values keep
        theirs (it is their meaning)."""
        numbers = list(dict.fromkeys(_read_varint(f, 0)[0] >> 3 for f in parts))
        rank = {n: i for i, n in enumerate(order.draw(st.permutations(numbers)))}
        return sorted(parts, key=lambda f: rank[_read_varint(f, 0)[0] >> 3])

    def among(singular: list[bytes], repeated: list[bytes]) -> list[bytes]:
        """``singular`` fields anywhere among ``repeated`` ones, whose order is meaning."""
        out = list(repeated)
        for part in singular:
            out.insert(order.draw(st.integers(0, len(out))), part)
        return out

    def unknown() -> list[bytes]:
        return [varint(99 << 3) + varint(7)] if order.draw(st.booleans()) else []

    def envelope(container: Any, name: str) -> list[bytes]:
        """A ResourceSpans' or ScopeSpans' field 1 (``name``: resource, scope) and schema_url."""
        out = []
        if container.HasField(name):
            out.append(_framed(1, getattr(container, name).SerializeToString()))
        if container.schema_url:
            out.append(_framed(3, container.schema_url.encode()))
        return out

    resources = []
    for rs in data.resource_spans:
        scopes = []
        for ss in rs.scope_spans:
            spans_out = []
            for span in ss.spans:
                fields = shuffle(_fields(span.SerializeToString()) + unknown())
                spans_out.append(_framed(2, b"".join(fields)))
            scopes.append(_framed(2, b"".join(among(envelope(ss, "scope"), spans_out))))
        resources.append(_framed(1, b"".join(among(envelope(rs, "resource"), scopes))))
    return b"".join(resources)


@PROPS
@given(traces_data(spans), st.integers(1, 16), st.data())
def test_a_request_cut_as_the_client_laid_it_out_holds_the_same_spans(
    data: trace_pb2.TracesData, partitions: int, order: st.DataObject
) -> None:
    """Ingest cuts a protobuf request's own bytes: every message it publishes then reads as
    the message the protobuf split would publish (same partition, spans, key), or the split
    declines and the protobuf split decides."""
    payload = relaid(data, order)
    assert known(payload) == data
    try:
        fast = compiled.split(payload, partitions, partition_for_key, 1 << 20)
    except compiled.Fallback:
        return
    slow, rejected = protobuf_cut(data.SerializeToString(), partitions, 1 << 20)
    assert not rejected
    assert [(p, n, first) for p, _, n, first in fast] == [(p, n, f) for p, _, n, f in slow]
    for (_, mine, _, _), (_, theirs, _, _) in zip(fast, slow, strict=True):
        assert known(mine) == known(theirs)


@PROPS
@given(traces_data(valid_spans), st.data())
def test_admission_cuts_the_request_bytes_only_while_they_are_the_request(
    data: trace_pb2.TracesData, order: st.DataObject
) -> None:
    """``raw`` is cut only as long as it is what ``data`` says: a stamped tenant changes the
    request, and then its serialization is cut (the tenant must reach Kafka)."""
    payload = relaid(data, order)
    # Not a test that cannot fail: storable spans in any layout take the compiled split.
    compiled.split(payload, 4, partition_for_key, 1 << 20)
    cut = otlp_split.partition_chunks(data, 4, 1 << 20, raw=payload)
    again = otlp_split.partition_chunks(data, 4, 1 << 20)
    assert [(p, c.spans, c.first_trace_id) for p, c in cut.chunks] == [
        (p, c.spans, c.first_trace_id) for p, c in again.chunks
    ]
    for (_, mine), (_, theirs) in zip(cut.chunks, again.chunks, strict=True):
        assert known(mine.payload) == known(theirs.payload)

"""Collector-compatible partitioning, oversize splitting and the hand-made rpc status bytes."""

from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from core.partitioning import (
    PARTITIONERS,
    collector_partition_for_trace,
    fnv1a32,
    message_key,
    partition_for_key,
    sarama_partition,
)
from ingest.otlp_split import bounded_chunks
from ingest.rpc_status import status


def test_fnv1a_and_sarama_reduction() -> None:
    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968
    # 0xbf9cf968 is negative as int32: Go's -1080231576 % 7 == -4 -> abs -> 4.
    assert sarama_partition(b"foobar", 7) == 4
    tid = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
    assert message_key(tid, "collector") == b"0102030405060708090a0b0c0d0e0f10"
    assert message_key(tid, "murmur2") == tid
    assert collector_partition_for_trace(tid, 12) == sarama_partition(tid.hex().encode(), 12)


def test_collector_murmur2_hashes_the_hex_key_not_the_raw_bytes() -> None:
    tid = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
    assert message_key(tid, "collector_murmur2") == tid.hex().encode()
    raw_differs = 0
    for n in range(200):
        trace = n.to_bytes(16, "big")
        hexed = PARTITIONERS["collector_murmur2"](trace, 8)
        assert hexed == partition_for_key(trace.hex().encode(), 8)
        raw_differs += hexed != PARTITIONERS["murmur2"](trace, 8)
    assert raw_differs > 100  # the two murmur2 mappings disagree on most traces


def _big_request(spans: int, attr_bytes: int) -> trace_pb2.TracesData:
    data = trace_pb2.TracesData()
    ss = data.resource_spans.add().scope_spans.add()
    ss.scope.name = "s"
    for i in range(spans):
        span = ss.spans.add(trace_id=b"\x01" * 16, span_id=i.to_bytes(8, "big"), name="x")
        kv = span.attributes.add(key="blob")
        kv.value.string_value = "v" * attr_bytes
    return data


def test_small_payload_is_one_chunk() -> None:
    chunks, too_large = bounded_chunks(_big_request(3, 10), 10_000)
    assert len(chunks) == 1 and chunks[0].spans == 3 and not too_large


def test_oversize_payload_is_split_never_dropped() -> None:
    data = _big_request(40, 1000)
    chunks, too_large = bounded_chunks(data, 8_000)
    assert not too_large and len(chunks) > 4
    assert all(len(c.payload) <= 8_000 for c in chunks)
    ids = [
        s.span_id
        for c in chunks
        for rs in trace_pb2.TracesData.FromString(c.payload).resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    assert sorted(ids) == [i.to_bytes(8, "big") for i in range(40)]
    assert sum(c.spans for c in chunks) == 40


def test_single_span_over_limit_is_reported() -> None:
    data = _big_request(3, 100)
    big = data.resource_spans[0].scope_spans[0].spans[1]
    big.attributes[0].value.string_value = "x" * 50_000
    chunks, too_large = bounded_chunks(data, 10_000)
    assert [s.span_id for s in too_large] == [big.span_id]
    assert sum(c.spans for c in chunks) == 2


def test_rpc_status_with_retry_info_decodes_with_google_protos() -> None:
    decoded = status_pb2.Status.FromString(status(14, "kafka down", 2.5))
    assert decoded.code == 14 and decoded.message == "kafka down"
    info = error_details_pb2.RetryInfo()
    assert decoded.details[0].Unpack(info)
    assert info.retry_delay.seconds == 2 and info.retry_delay.nanos == 500_000_000


def test_message_cap_follows_a_smaller_topic_limit() -> None:
    from ingest.broker_limits import OVERHEAD_BYTES, effective_max_message_bytes

    assert effective_max_message_bytes(1_000_000, None) == 1_000_000
    assert effective_max_message_bytes(1_000_000, 8_000_000) == 1_000_000
    assert effective_max_message_bytes(1_000_000, 500_000) == 500_000 - OVERHEAD_BYTES

import avro.schema
import pytest

from schemas import avro_codec
from sinks.decoding import decode_message
from streams.packed_batch import pack_views
from streams.span_batch_messages import encode_span_batches, process_raw_message
from streams.span_views import span_views
from tracehouse.demo_traces import SERVICES, make_request


def test_frame_header_names_the_writer_version() -> None:
    """Every message names its schema version in byte 1, so a reader can dispatch on it (and a
    future span_batch v4 can be introduced next to v3)."""
    record = pack_views([])
    payload = avro_codec.encode("span_batch", record)
    assert payload[:2] == bytes((avro_codec.MAGIC, 3))
    assert avro_codec.decode_as_written("span_batch", payload) == (3, record)
    assert avro_codec.latest_version("span_batch") == 3


@pytest.mark.parametrize(
    ("schema", "payload", "message"),
    [
        ("span_batch", b"", "header"),
        ("red_metrics", b"", "header"),
        ("span_batch", b"\x00\x03abc", "header"),
        ("span_batch", bytes((avro_codec.MAGIC, 99)) + b"\x00", "unknown schema version 99"),
        ("red_metrics", bytes((avro_codec.MAGIC, 99)) + b"\x00", "unknown schema version 99"),
        # Versions below the newest whose schema is gone (span_batch v1/v2 were removed).
        ("span_batch", bytes((avro_codec.MAGIC, 1)) + b"\x00", "unknown schema version 1"),
        ("span_batch", bytes((avro_codec.MAGIC, 2)) + b"\x00", "unknown schema version 2"),
        ("span_batch", bytes((avro_codec.MAGIC, 3)) + b"\x05\xff\xff", "corrupt"),
        ("red_metrics", bytes((avro_codec.MAGIC, 1)) + b"\x05\xff\xff", "corrupt"),
    ],
)
def test_bad_payloads_raise_clear_errors(schema: str, payload: bytes, message: str) -> None:
    with pytest.raises(avro_codec.AvroDecodeError, match=message):
        avro_codec.decode_as_written(schema, payload)
    with pytest.raises(avro_codec.AvroDecodeError, match=message):
        avro_codec.decode(schema, payload)


def test_trailing_bytes_are_rejected() -> None:
    payload = avro_codec.encode("span_batch", pack_views([])) + b"junk"
    with pytest.raises(avro_codec.AvroDecodeError, match="trailing"):
        avro_codec.decode_as_written("span_batch", payload)


def test_raw_message_to_batches_keeps_all_spans() -> None:
    raw = make_request(traces=30, seed=5).SerializeToString()
    result = process_raw_message(raw)
    assert result.malformed is None and result.spans_in == 150
    batches = [avro_codec.decode_as_written("span_batch", p) for p in result.sampled_payloads]
    assert {version for version, _ in batches} == {3}
    tables = [decode_message("spans", p).table for p in result.sampled_payloads]
    services = [s for t in tables if t is not None for s in t["ServiceName"].to_pylist()]
    assert len(services) == 150
    assert set(services) <= set(SERVICES)


def test_large_message_is_split_into_bounded_batches() -> None:
    from opentelemetry.proto.trace.v1 import trace_pb2

    data = trace_pb2.TracesData.FromString(make_request(traces=2100, seed=1).SerializeToString())
    payloads = encode_span_batches(span_views(data)).payloads
    assert len(payloads) == 3  # 10500 spans, 5000 per message


def test_malformed_raw_message_is_reported_not_raised() -> None:
    result = process_raw_message(b"\xff\xff\xff not protobuf")
    assert result.malformed and "undecodable" in result.malformed
    assert result.sampled_payloads == []


@pytest.mark.parametrize("name", ["span_batch", "red_metrics", "graph_edges", "pipeline_counters"])
def test_every_schema_parses_in_both_libraries(name: str) -> None:
    import json

    version = avro_codec.latest_version(name)
    avro.schema.parse(json.dumps(avro_codec.schema_json(name, version)))
    assert avro_codec.parsed_schema(name, version) is not None

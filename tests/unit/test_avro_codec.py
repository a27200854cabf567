import io
from typing import Any

import avro.io
import avro.schema
import pytest

from schemas import avro_codec
from sinks.decoding import decode_message
from streams.columnar_batch import columnar_batch
from streams.packed_batch import pack_columns
from streams.pipeline import encode_span_batches, process_raw_message
from streams.span_views import span_views
from tracehouse.demo_traces import make_request

SPAN = {
    "tenant_id": "acme",
    "trace_id": "0af7651916cd43dd8448eb211c80319c",
    "span_id": "b7ad6b7169203331",
    "parent_span_id": "",
    "trace_state": "ot=th:8",
    "name": "GET /",
    "kind": 2,
    "service_name": "frontend",
    "start_time_unix_nano": 1_700_000_000_123_456_789,
    "end_time_unix_nano": 1_700_000_000_223_456_789,
    "status_code": 2,
    "status_message": "boom",
    "resource_attributes": {"service.name": "frontend"},
    "scope_name": "s",
    "scope_version": "1",
    "attributes": {"http.status_code": "500", "ünïcode": "✓"},
    "events": [
        {
            "time_unix_nano": 1_700_000_000_200_000_000,
            "name": "exception",
            "attributes": {"exception.type": "E"},
        }
    ],
    "links": [{"trace_id": "1" * 32, "span_id": "2" * 16, "trace_state": "", "attributes": {}}],
}


def test_fastavro_round_trip_v1() -> None:
    """v1 (rows) is no longer written by streams but must stay readable during an upgrade."""
    payload = avro_codec.encode("span_batch", {"spans": [SPAN, SPAN]}, 1)
    assert payload[0] == avro_codec.MAGIC and payload[1] == 1
    assert avro_codec.decode_as_written("span_batch", payload) == (1, {"spans": [SPAN, SPAN]})


def test_v1_does_not_resolve_to_the_columnar_v2() -> None:
    payload = avro_codec.encode("span_batch", {"spans": [SPAN]}, 1)
    with pytest.raises(avro_codec.AvroDecodeError):
        avro_codec.decode("span_batch", payload)


def test_apache_avro_reads_fastavro_bytes() -> None:
    payload = avro_codec.encode("span_batch", {"spans": [SPAN]}, 1)
    import json

    schema = avro.schema.parse(json.dumps(avro_codec.schema_json("span_batch", 1)))
    reader = avro.io.DatumReader(schema)
    decoded = reader.read(avro.io.BinaryDecoder(io.BytesIO(payload[2:])))
    assert decoded == {"spans": [SPAN]}


def test_apache_avro_written_bytes_decode_with_fastavro() -> None:
    import json

    schema = avro.schema.parse(json.dumps(avro_codec.schema_json("span_batch", 1)))
    buf = io.BytesIO()
    buf.write(bytes((avro_codec.MAGIC, 1)))
    avro.io.DatumWriter(schema).write({"spans": [SPAN]}, avro.io.BinaryEncoder(buf))
    assert avro_codec.decode_as_written("span_batch", buf.getvalue()) == (1, {"spans": [SPAN]})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "header"),
        (b"\x00\x01abc", "header"),
        (bytes((avro_codec.MAGIC, 99)) + b"\x00", "unknown schema version"),
        (bytes((avro_codec.MAGIC, 1)) + b"\x05\xff\xff", "corrupt"),
    ],
)
def test_bad_payloads_raise_clear_errors(payload: bytes, message: str) -> None:
    with pytest.raises(avro_codec.AvroDecodeError, match=message):
        avro_codec.decode_as_written("span_batch", payload)
    with pytest.raises(avro_codec.AvroDecodeError, match=message):
        avro_codec.decode("red_metrics", payload)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_trailing_bytes_are_rejected(version: int) -> None:
    empty: dict[str, Any] = {1: {"spans": []}, 2: columnar_batch([])}.get(
        version, pack_columns(columnar_batch([]))
    )
    payload = avro_codec.encode("span_batch", empty, version) + b"junk"
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
    assert set(services) <= {
        "frontend",
        "checkout",
        "cart",
        "payment",
        "inventory",
        "shipping",
    }


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

"""span_batch v2 (columnar) must store exactly what v1 stored, and v1 must stay readable."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from schemas import avro_codec
from sinks.columnar_spans import otel_traces_from_columns
from sinks.decoding import decode_message
from sinks.span_columns import otel_traces_arrow
from streams.columnar_batch import columnar_batch
from streams.pipeline import encode_span_batches, encode_span_batches_v1
from streams.span_records import span_records
from streams.span_views import attributes_of, span_views
from tests.avro_interop import apache_read, apache_write
from tests.span_batch_rows import columns_from_rows


def _kv(key: str, **value: Any) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value))


def _rich_data() -> trace_pb2.TracesData:
    """Two resources (one with a tenant), empty and duplicate-key maps, events, links, odd enums."""
    data = trace_pb2.TracesData()
    for r in range(2):
        rs = data.resource_spans.add()
        rs.resource.attributes.extend([_kv("service.name", string_value=f"svc{r}")])
        if r == 1:
            rs.resource.attributes.extend(
                [_kv("tracehouse.tenant", string_value="acme"), _kv("host", int_value=3)]
            )
        for s in range(2):
            ss = rs.scope_spans.add()
            ss.scope.name, ss.scope.version = f"lib{s}", "1.0" if s else ""
            for i in range(3):
                n = r * 100 + s * 10 + i
                span = ss.spans.add(
                    trace_id=bytes([n % 7 + 1]) * 16,  # never all zeros: that is invalid
                    span_id=(n + 1).to_bytes(8, "big"),
                    parent_span_id=b"" if i == 0 else n.to_bytes(8, "big"),
                    name=f"op{n}",
                    kind=n % 7,  # includes 6, unknown to the exporter's names
                    start_time_unix_nano=1_700_000_000_000_000_000 + n,
                    end_time_unix_nano=1_700_000_000_000_000_000 + n * 1000 - (n % 3 == 2) * 10**9,
                    trace_state="k=v" if i == 1 else "",
                )
                span.status.code = n % 4
                span.status.message = "bad" if n % 4 == 2 else ""
                if i:
                    span.attributes.extend(
                        [
                            _kv("a", int_value=n),
                            _kv("b", bool_value=True),
                            _kv("a", string_value="dup"),
                            _kv("d", double_value=1.5),
                        ]
                    )
                for e in range(i):
                    ev = span.events.add(time_unix_nano=n + e, name=f"ev{e}")
                    if e:
                        ev.attributes.extend([_kv("attempt", int_value=e)])
                if i == 2:
                    link = span.links.add(trace_id=b"\x09" * 16, span_id=b"\x08" * 8)
                    link.trace_state = "a=b"
                    link.attributes.extend([_kv("x", string_value="y")])
                    span.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    return data


def _v1_table(data: trace_pb2.TracesData) -> pa.Table:
    decoded = [
        s
        for p in encode_span_batches_v1(span_records(data))
        for s in avro_codec.decode_as_written("span_batch", p)[1]["spans"]
    ]
    return otel_traces_arrow(decoded)


def test_v2_table_equals_v1_table_for_the_same_spans() -> None:
    data = _rich_data()
    views = span_views(data)
    attributes_of(views[1])  # a policy may have converted attributes already
    [payload] = encode_span_batches(views, version=2).payloads
    assert payload[:2] == bytes((avro_codec.MAGIC, 2))
    v2 = decode_message("spans", payload).table
    v1 = _v1_table(data)
    assert v2 is not None and v2.num_rows == 12
    assert v2.schema == v1.schema
    assert v2.to_pylist() == v1.to_pylist()
    assert v2.equals(v1)


def test_sink_reads_v1_and_v2_messages_to_the_same_table() -> None:
    data = _rich_data()
    [v1_payload] = encode_span_batches_v1(span_records(data))
    [v2_payload] = encode_span_batches(span_views(data), version=2).payloads
    assert v1_payload[1] == 1
    v1, v2 = decode_message("spans", v1_payload), decode_message("spans", v2_payload)
    assert v1.table is not None and v2.table is not None
    assert v1.table.equals(v2.table)


def test_empty_batch_and_message_cut() -> None:
    assert encode_span_batches([]).payloads == []
    empty = columnar_batch([])
    table = otel_traces_from_columns(
        avro_codec.decode_as_written("span_batch", avro_codec.encode("span_batch", empty, 2))[1]
    )
    assert table.num_rows == 0 and table.schema == _v1_table(trace_pb2.TracesData()).schema


def test_fastavro_v2_is_readable_by_apache_avro() -> None:
    record = columnar_batch(span_views(_rich_data()))
    payload = avro_codec.encode("span_batch", record, 2)
    assert apache_read("span_batch", 2, payload) == record


def test_apache_avro_v2_is_readable_by_the_sink() -> None:
    record = columnar_batch(span_views(_rich_data()))
    payload = apache_write("span_batch", 2, record)
    assert avro_codec.decode_as_written("span_batch", payload) == (2, record)
    decoded = decode_message("spans", payload)
    assert decoded.table is not None and decoded.table.equals(_v1_table(_rich_data()))


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"attribute_lengths": [99]}, "attribute lengths"),
        ({"span_id": []}, "span_id has 0 entries"),
        ({"resource_index": [5]}, "resource_index"),
        ({"event_counts": [1]}, "event lengths"),
        ({"attribute_keys": ["k"], "attribute_values": []}, "keys"),
    ],
)
def test_inconsistent_columns_are_poison(change: dict[str, Any], detail: str) -> None:
    record = columnar_batch(span_views(_rich_data())[:1])
    record.update(change)
    decoded = decode_message("spans", avro_codec.encode("span_batch", record, 2))
    assert decoded.table is None and decoded.reason == "invalid_record"
    assert detail in decoded.detail


def test_unknown_version_and_junk_are_undecodable() -> None:
    for payload in (bytes((avro_codec.MAGIC, 9)) + b"\x00", b"junk"):
        decoded = decode_message("spans", payload)
        assert decoded.table is None and decoded.reason == "undecodable_avro"


def test_row_fixture_converter_matches_the_streams_writer() -> None:
    """tests/span_batch_rows feeds v1-style fixtures to v2; it must store the same rows."""
    data = _rich_data()
    table = otel_traces_from_columns(columns_from_rows(span_records(data)))
    assert table.equals(_v1_table(data))


def test_row_fixture_converter_fills_v1_defaults() -> None:
    minimal = {
        "trace_id": "ab" * 16,
        "span_id": "cd" * 8,
        "name": "op",
        "kind": 1,
        "service_name": "svc",
        "start_time_unix_nano": 5,
        "end_time_unix_nano": 9,
        "status_code": 0,
        "links": [{"trace_id": "01" * 16, "span_id": "02" * 8}],
    }
    v1 = avro_codec.decode_as_written(
        "span_batch", avro_codec.encode("span_batch", {"spans": [minimal]}, 1)
    )
    assert otel_traces_from_columns(columns_from_rows([minimal])).equals(
        otel_traces_arrow(v1[1]["spans"])
    )

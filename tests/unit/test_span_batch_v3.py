"""span_batch v3 (packed columns) must store exactly what v1 and v2 stored, and reject bad
buffers as invalid records instead of crashing the sink or storing garbage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from schemas import avro_codec
from schemas.span_batch_v3 import FIELDS_V3, LAYOUT, expected_fields
from sinks.decoding import decode_message
from sinks.packed_spans import columns_from_packed, otel_traces_from_packed
from streams.columnar_batch import columnar_batch
from streams.packed_batch import pack_columns
from streams.pipeline import encode_span_batches, encode_span_batches_v1
from streams.span_records import span_records
from streams.span_views import span_views
from tests.avro_interop import apache_read, apache_write
from tests.span_batch_rows import columns_from_rows
from tests.unit.test_span_batch_v2 import _kv, _rich_data, _v1_table


def _data() -> trace_pb2.TracesData:
    """ADR 0002's rich batch plus a resource of non-ASCII and empty strings."""
    data = _rich_data()
    rs = data.resource_spans.add()
    rs.resource.attributes.extend(
        [_kv("service.name", string_value="сервис-ü"), _kv("", string_value="")]
    )
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "библиотека", "β"
    span = ss.spans.add(
        trace_id=b"\xab" * 16,
        span_id=b"\xcd" * 8,
        name="名前 😀",
        kind=2,
        start_time_unix_nano=5,
        end_time_unix_nano=9,
    )
    span.status.code, span.status.message = 2, "échec"
    span.attributes.extend([_kv("ключ", string_value="значение 😀"), _kv("empty", string_value="")])
    span.events.add(time_unix_nano=7, name="ünïcode").attributes.extend(
        [_kv("ç", string_value="ß")]
    )
    span.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, trace_state="ü=1")
    ss.spans.add(trace_id=b"\xab" * 16, span_id=b"\xce" * 8, name="", kind=0)
    return data


def _packed(spans: int | None = None) -> dict[str, Any]:
    return pack_columns(columnar_batch(span_views(_data())[:spans]))


def test_v3_table_equals_v1_and_v2_tables_for_the_same_spans() -> None:
    data = _data()
    [v3_payload] = encode_span_batches(span_views(data)).payloads
    [v2_payload] = encode_span_batches(span_views(data), version=2).payloads
    [v1_payload] = encode_span_batches_v1(span_records(data))
    assert (v3_payload[1], v2_payload[1], v1_payload[1]) == (3, 2, 1)
    v3, v2, v1 = (decode_message("spans", p).table for p in (v3_payload, v2_payload, v1_payload))
    assert v3 is not None and v2 is not None and v1 is not None
    assert v3.num_rows == 14
    assert v3.schema == v1.schema == _v1_table(data).schema
    assert v3.to_pylist() == v1.to_pylist() == v2.to_pylist()
    assert v3.equals(v1) and v3.equals(v2)
    names = v3["SpanName"].to_pylist()
    assert "名前 😀" in names and "" in names


def test_empty_batch() -> None:
    assert encode_span_batches([]).payloads == []
    payload = avro_codec.encode("span_batch", pack_columns(columnar_batch([])), 3)
    table = decode_message("spans", payload).table
    assert table is not None and table.num_rows == 0
    assert table.schema == _v1_table(trace_pb2.TracesData()).schema


def test_row_fixture_converter_feeds_v3() -> None:
    data = _data()
    table = otel_traces_from_packed(pack_columns(columns_from_rows(span_records(data))))
    assert table.equals(_v1_table(data))


def test_schema_follows_v2_and_is_all_bytes() -> None:
    assert expected_fields() == FIELDS_V3
    types = {f["name"]: f["type"] for f in avro_codec.schema_json("span_batch", 3)["fields"]}
    assert types.pop("span_count") == "long"
    assert set(types.values()) == {"bytes"}
    assert {LAYOUT[f] for f in ("kind", "start_time_unix_nano", "name")} == {
        "int32",
        "int64",
        "utf8",
    }


def test_arrays_are_views_of_the_message_bytes() -> None:
    rec = avro_codec.decode_as_written("span_batch", avro_codec.encode("span_batch", _packed(), 3))[
        1
    ]
    columns = columns_from_packed(rec)
    assert columns["name"].buffers()[2].address == pa.py_buffer(rec["name"]).address
    assert columns["name"].buffers()[1].address == pa.py_buffer(rec["name_offsets"]).address
    start = columns["start_time_unix_nano"].buffers()[1].address
    assert start == pa.py_buffer(rec["start_time_unix_nano"]).address


def test_fastavro_v3_is_readable_by_apache_avro() -> None:
    record = _packed()
    payload = avro_codec.encode("span_batch", record, 3)
    assert apache_read("span_batch", 3, payload) == record


def test_apache_avro_v3_is_readable_by_the_sink() -> None:
    record = _packed()
    payload = apache_write("span_batch", 3, record)
    assert avro_codec.decode_as_written("span_batch", payload) == (3, record)
    decoded = decode_message("spans", payload)
    assert decoded.table is not None and decoded.table.equals(_v1_table(_data()))


def _offsets(rec: dict[str, Any], field: str) -> np.ndarray:
    return np.frombuffer(rec[f"{field}_offsets"], "<i4").copy()


def _with_offsets(field: str, edit: Any) -> Any:
    def change(rec: dict[str, Any]) -> None:
        offsets = _offsets(rec, field)
        rec[f"{field}_offsets"] = np.asarray(edit(offsets), "<i4").tobytes()

    return change


def _swap_middle(o: np.ndarray) -> np.ndarray:
    o[1], o[2] = o[2], o[1]
    return o


def _set(field: str, value: Any) -> Any:
    def change(rec: dict[str, Any]) -> None:
        rec[field] = value

    return change


def _bad_utf8(rec: dict[str, Any]) -> None:
    rec["name"] = b"\xff" + rec["name"][1:]


def _attribute_lengths(rec: dict[str, Any]) -> None:
    lengths = np.frombuffer(rec["attribute_lengths"], "<i4").copy()
    lengths[0] += 1
    rec["attribute_lengths"] = lengths.tobytes()


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (_set("start_time_unix_nano", b"\x00" * 7), "not a multiple of 8"),
        (_set("kind", b"\x00" * 6), "not a multiple of 4"),
        (_set("name_offsets", b"\x00" * 5), "not a multiple of 4"),
        (_set("name_offsets", b""), "empty"),
        (_with_offsets("name", lambda o: np.append(o, o[-1])), "name has"),
        (_with_offsets("trace_id", lambda o: o[:-1]), "trace_id_offsets spans"),
        (_with_offsets("name", _swap_middle), "non-decreasing"),
        (_with_offsets("name", lambda o: o + 1), "not 0.."),
        (_with_offsets("name", lambda o: np.append(o[:-1], o[-1] + 100)), "not 0.."),
        (_with_offsets("trace_id", lambda o: np.append(o[:-1], -4)), "trace_id_offsets spans"),
        (_bad_utf8, "not valid UTF-8"),
        (_set("span_count", 99), "span_count is 99"),
        (_set("span_count", -1), "span_count is -1"),
        (_set("resource_index", np.full(14, 7, "<i4").tobytes()), "resource_index"),
        (_attribute_lengths, "attribute lengths add up"),
        (_set("event_name", b""), "event_name_offsets spans"),
    ],
)
def test_malformed_buffers_are_invalid_records(change: Any, detail: str) -> None:
    rec = _packed()
    change(rec)
    decoded = decode_message("spans", avro_codec.encode("span_batch", rec, 3))
    assert decoded.table is None and decoded.reason == "invalid_record"
    assert detail in decoded.detail

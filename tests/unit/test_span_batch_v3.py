"""span_batch v3 (packed columns): its layout module matches the .avsc field by field, the
Avro body interoperates with Apache Avro, the sink's arrays are views of the message, and bad
buffers are invalid records instead of crashing the sink or storing garbage. What the rows
must be is pinned by tests/unit/test_span_golden.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from schemas import avro_codec, span_batch_v3
from schemas.span_batch_v3 import COLUMNS, LAYOUT, NESTING, SPAN_COUNT, columns_of
from sinks.decoding import decode_message
from sinks.packed_spans import columns_from_packed, otel_traces_from_packed
from streams.packed_batch import pack_views
from streams.span_batch_messages import encode_span_batches
from streams.span_views import attributes_of, span_views
from tests.avro_interop import apache_read, apache_write
from tests.unit.test_span_golden import EXPECTED_SCHEMA
from tracehouse.span_tables import encode_empty, otel_traces_table


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


def _data() -> trace_pb2.TracesData:
    """The rich batch plus a resource of non-ASCII and empty strings."""
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
    return pack_views(span_views(_data())[:spans])


def test_layout_module_matches_the_avsc_field_by_field() -> None:
    """schemas/span_batch_v3.py is the declaration both sides use; the .avsc is what travels.
    Same fields in the same order, and each field's type and doc say the declared layout."""
    avsc = avro_codec.schema_json("span_batch", 3)["fields"]
    expected: list[tuple[str, str, str]] = [(SPAN_COUNT, "long", "Number of spans")]
    for column in COLUMNS:
        doc = {
            "utf8": f"UTF-8 bytes of all {column.name} values concatenated",
            "int32": "int32 little-endian, one value per entry",
            "int64": "int64 little-endian, one value per entry",
        }[column.layout]
        expected.append((column.name, "bytes", doc))
        if column.layout == "utf8":
            expected.append((f"{column.name}_offsets", "bytes", "int32 little-endian, count + 1"))
    assert len(avsc) == len(expected)
    for field, (name, kind, doc) in zip(avsc, expected, strict=True):
        assert (field["name"], field["type"]) == (name, kind)
        assert field["doc"].startswith(doc), (name, field["doc"])
    assert span_batch_v3.avsc_fields() == span_batch_v3.wire_fields()
    for field in avsc:
        assert "v1" not in field["doc"] and "v2" not in field["doc"]


def test_layout_nesting_is_complete() -> None:
    """Every column belongs to an entity whose count the nesting determines."""
    entities = {c.entity for c in COLUMNS}
    assert entities == {"span", "resource", *NESTING}
    for child, (parent, lengths) in NESTING.items():
        assert lengths in columns_of(parent) and LAYOUT[lengths] == "int32"
        assert columns_of(child), child
    assert columns_of("resource") == ("resource_attribute_lengths",)
    assert LAYOUT["resource_index"] == "int32" and "resource_index" in columns_of("span")


def test_views_encode_to_v3_and_back_for_every_span() -> None:
    data = _data()
    views = span_views(data)
    attributes_of(views[1])  # a policy may have converted attributes already
    [payload] = encode_span_batches(views).payloads
    assert payload[:2] == bytes((avro_codec.MAGIC, 3))
    table = decode_message("spans", payload).table
    assert table is not None and table.num_rows == 14
    names = table["SpanName"].to_pylist()
    assert "名前 😀" in names and "" in names
    assert table.equals(otel_traces_table(data))


def test_empty_batch() -> None:
    assert encode_span_batches([]).payloads == []
    table = decode_message("spans", encode_empty()).table
    assert table is not None and table.num_rows == 0
    assert table.schema == EXPECTED_SCHEMA


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
    assert decoded.table is not None and decoded.table.equals(otel_traces_from_packed(_packed()))


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


def _one_value_less(rec: dict[str, Any]) -> None:
    """Attribute values one fewer than keys: every attribute has a key and a value."""
    offsets = _offsets(rec, "attribute_values")[:-1]
    rec["attribute_values"] = rec["attribute_values"][: offsets[-1]]
    rec["attribute_values_offsets"] = offsets.astype("<i4").tobytes()


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
        (_set("span_id_offsets", np.zeros(1, "<i4").tobytes()), "span_id_offsets spans"),
        (_set("span_id", b""), "span_id_offsets spans"),
        (_set("kind", b""), "kind has 0 entries, span 14"),
        (_set("event_counts", np.zeros(14, "<i4").tobytes()), "event lengths add up"),
        (_one_value_less, "attribute_values has"),
        (_set("link_trace_state", b""), "link_trace_state_offsets spans"),
    ],
)
def test_malformed_buffers_are_invalid_records(change: Any, detail: str) -> None:
    rec = _packed()
    change(rec)
    decoded = decode_message("spans", avro_codec.encode("span_batch", rec, 3))
    assert decoded.table is None and decoded.reason == "invalid_record"
    assert detail in decoded.detail


def test_a_version_without_a_reader_is_undecodable() -> None:
    """Only v3 is read; the frame byte stays so a v4 can be introduced, and anything else is
    dead-lettered (the removed v1/v2 included)."""
    body = avro_codec.encode("span_batch", _packed())[2:]
    for version in (1, 2, 4, 9):
        decoded = decode_message("spans", bytes((avro_codec.MAGIC, version)) + body)
        assert decoded.table is None and decoded.reason == "undecodable_avro"
        assert f"unknown schema version {version}" in decoded.detail
    assert decode_message("spans", b"junk").reason == "undecodable_avro"

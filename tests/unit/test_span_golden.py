"""Golden test of the span path: a hand-built OTLP ``TracesData`` -> streams' encoder ->
``span_batch`` v3 bytes -> the sink's decoder -> the ``otel_traces`` Arrow table, compared with
a table written out by hand below.

The expected rows are literals, not computed by any code under test, so a change anywhere on
the way (AnyValue flattening, hex ids, tenant, enum names, duration clamp, nesting of events
and links, UTF-8) shows up as a diff here. tests/integration/test_sink_golden.py inserts the
same table into a real ClickHouse and reads :data:`EXPECTED_ROWS` back.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from sinks.decoding import decode_message
from streams.span_batch_messages import encode_span_batches
from streams.span_views import span_views

DEFAULT_TENANT = "tenant-from-header"
T = 1_764_000_000_123_456_789  # 2025-11-24T16:00:00.123456789Z

_STR = pa.string()
_MAP = pa.map_(pa.string(), pa.string())
_NS = pa.timestamp("ns")

EXPECTED_SCHEMA = pa.schema(
    [
        ("Timestamp", _NS),
        ("TraceId", _STR),
        ("SpanId", _STR),
        ("ParentSpanId", _STR),
        ("TraceState", _STR),
        ("SpanName", _STR),
        ("SpanKind", _STR),
        ("ServiceName", _STR),
        ("ResourceAttributes", _MAP),
        ("ScopeName", _STR),
        ("ScopeVersion", _STR),
        ("SpanAttributes", _MAP),
        ("Duration", pa.uint64()),
        ("StatusCode", _STR),
        ("StatusMessage", _STR),
        ("Events.Timestamp", pa.list_(_NS)),
        ("Events.Name", pa.list_(_STR)),
        ("Events.Attributes", pa.list_(_MAP)),
        ("Links.TraceId", pa.list_(_STR)),
        ("Links.SpanId", pa.list_(_STR)),
        ("Links.TraceState", pa.list_(_STR)),
        ("Links.Attributes", pa.list_(_MAP)),
        ("TenantId", _STR),
    ]
)

_CHECKOUT_RESOURCE = {
    "service.name": "checkout",
    "tracehouse.tenant": "acme",
    "host.cpus": "8",
    "deployment.ratio": "0.25",
    "region": "eu-west-1",
}
_PAYMENT_RESOURCE = {"service.name": "Zahlung-服务", "host.name": ""}

# One dict per span, in the order the spans appear in the TracesData below.
EXPECTED_ROWS: list[dict[str, Any]] = [
    {
        "Timestamp": 1_764_000_000_123_456_789,
        "TraceId": "0102030405060708090a0b0c0d0e0f10",
        "SpanId": "a1a2a3a4a5a6a7a8",
        "ParentSpanId": "",
        "TraceState": "vendor=a",
        "SpanName": "POST /orders/{id}",
        "SpanKind": "Server",
        "ServiceName": "checkout",
        "ResourceAttributes": _CHECKOUT_RESOURCE,
        "ScopeName": "io.example.http",
        "ScopeVersion": "1.4.0",
        "SpanAttributes": {
            "str": "naïve café ☕",
            "bool": "true",
            "int": "-42",
            "dbl": "2.5",
            "dbl_whole": "3",
            "bytes": "AP8=",
            "arr": '[1,"x",true]',
            "kv": '{"a":1.5,"b":null}',
            "unset": "",
        },
        "Duration": 2_500_000,
        "StatusCode": "Error",
        "StatusMessage": "payment declined: carte refusée",
        "Events.Timestamp": [1_764_000_000_123_457_789, 1_764_000_000_123_458_789],
        "Events.Name": ["retry", "日本語イベント"],
        "Events.Attributes": [{"attempt": "2"}, {}],
        "Links.TraceId": ["ffffffffffffffffffffffffffffffff"],
        "Links.SpanId": ["1111111111111111"],
        "Links.TraceState": ["k=v"],
        "Links.Attributes": [{"link.kind": "follows"}],
        "TenantId": "acme",
    },
    {
        "Timestamp": 1_764_000_000_123_556_789,
        "TraceId": "0102030405060708090a0b0c0d0e0f10",
        "SpanId": "b1b2b3b4b5b6b7b8",
        "ParentSpanId": "a1a2a3a4a5a6a7a8",
        "TraceState": "",
        "SpanName": "SELECT orders",
        "SpanKind": "Client",
        "ServiceName": "checkout",
        "ResourceAttributes": _CHECKOUT_RESOURCE,
        "ScopeName": "io.example.http",
        "ScopeVersion": "1.4.0",
        "SpanAttributes": {},
        "Duration": 0,  # ends before it starts (clock skew): clamped, not wrapped
        "StatusCode": "Ok",
        "StatusMessage": "",
        "Events.Timestamp": [],
        "Events.Name": [],
        "Events.Attributes": [],
        "Links.TraceId": [],
        "Links.SpanId": [],
        "Links.TraceState": [],
        "Links.Attributes": [],
        "TenantId": "acme",
    },
    {
        "Timestamp": 1_764_000_001_000_000_000,
        "TraceId": "0af7651916cd43dd8448eb211c80319c",
        "SpanId": "b7ad6b7169203331",
        "ParentSpanId": "",  # eight zero bytes on the wire mean "no parent"
        "TraceState": "",
        "SpanName": "",
        "SpanKind": "6",  # unknown to the exporter's names: kept as its number
        "ServiceName": "Zahlung-服务",
        "ResourceAttributes": _PAYMENT_RESOURCE,
        "ScopeName": "",
        "ScopeVersion": "",
        "SpanAttributes": {"ключ": "значение 😀", "": ""},
        "Duration": 1,
        "StatusCode": "Unset",
        "StatusMessage": "",
        "Events.Timestamp": [1_764_000_001_000_000_001],
        "Events.Name": [""],
        "Events.Attributes": [{"ç": "ß"}],
        "Links.TraceId": ["0102030405060708090a0b0c0d0e0f10", "abababababababababababababababab"],
        "Links.SpanId": ["a1a2a3a4a5a6a7a8", "cdcdcdcdcdcdcdcd"],
        "Links.TraceState": ["", "ü=1"],
        "Links.Attributes": [{}, {"n": "7", "ok": "false"}],
        "TenantId": DEFAULT_TENANT,
    },
]


def _av(**value: Any) -> common_pb2.AnyValue:
    return common_pb2.AnyValue(**value)


def _kv(key: str, value: common_pb2.AnyValue) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=value)


def golden_traces() -> trace_pb2.TracesData:
    """Two resources (one naming its tenant), three spans, every AnyValue kind, events, links,
    non-ASCII and empty strings, an unknown span kind, a zero parent id, clock skew."""
    data = trace_pb2.TracesData()
    rs = data.resource_spans.add()
    rs.resource.attributes.extend(
        [
            _kv("service.name", _av(string_value="checkout")),
            _kv("tracehouse.tenant", _av(string_value="acme")),
            _kv("host.cpus", _av(int_value=8)),
            _kv("deployment.ratio", _av(double_value=0.25)),
            _kv("region", _av(string_value="eu-west-1")),
        ]
    )
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "io.example.http", "1.4.0"
    trace_id = bytes(range(1, 17))
    a = ss.spans.add(
        trace_id=trace_id,
        span_id=bytes.fromhex("a1a2a3a4a5a6a7a8"),
        trace_state="vendor=a",
        name="POST /orders/{id}",
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=T,
        end_time_unix_nano=T + 2_500_000,
    )
    a.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    a.status.message = "payment declined: carte refusée"
    array = common_pb2.ArrayValue(
        values=[_av(int_value=1), _av(string_value="x"), _av(bool_value=True)]
    )
    kvlist = common_pb2.KeyValueList(values=[_kv("a", _av(double_value=1.5)), _kv("b", _av())])
    a.attributes.extend(
        [
            _kv("str", _av(string_value="naïve café ☕")),
            _kv("bool", _av(bool_value=True)),
            _kv("int", _av(int_value=-42)),
            _kv("dbl", _av(double_value=2.5)),
            _kv("dbl_whole", _av(double_value=3.0)),
            _kv("bytes", _av(bytes_value=b"\x00\xff")),
            _kv("arr", _av(array_value=array)),
            _kv("kv", _av(kvlist_value=kvlist)),
            _kv("unset", _av()),
        ]
    )
    a.events.add(time_unix_nano=T + 1000, name="retry").attributes.extend(
        [_kv("attempt", _av(int_value=2))]
    )
    a.events.add(time_unix_nano=T + 2000, name="日本語イベント")
    link = a.links.add(trace_id=b"\xff" * 16, span_id=b"\x11" * 8, trace_state="k=v")
    link.attributes.extend([_kv("link.kind", _av(string_value="follows"))])
    b = ss.spans.add(
        trace_id=trace_id,
        span_id=bytes.fromhex("b1b2b3b4b5b6b7b8"),
        parent_span_id=a.span_id,
        name="SELECT orders",
        kind=trace_pb2.Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=T + 100_000,
        end_time_unix_nano=T + 90_000,
    )
    b.status.code = trace_pb2.Status.STATUS_CODE_OK

    rs = data.resource_spans.add()
    rs.resource.attributes.extend(
        [
            _kv("service.name", _av(string_value="Zahlung-服务")),
            _kv("host.name", _av(string_value="")),
        ]
    )
    ss = rs.scope_spans.add()  # a scope without name or version
    c = ss.spans.add(
        trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
        span_id=bytes.fromhex("b7ad6b7169203331"),
        parent_span_id=bytes(8),
        name="",
        kind=6,  # not a SpanKind member: stored as its number
        start_time_unix_nano=1_764_000_001_000_000_000,
        end_time_unix_nano=1_764_000_001_000_000_001,
    )
    c.attributes.extend(
        [_kv("ключ", _av(string_value="значение 😀")), _kv("", _av(string_value=""))]
    )
    c.events.add(time_unix_nano=1_764_000_001_000_000_001, name="").attributes.extend(
        [_kv("ç", _av(string_value="ß"))]
    )
    c.links.add(trace_id=trace_id, span_id=a.span_id)
    c.links.add(trace_id=b"\xab" * 16, span_id=b"\xcd" * 8, trace_state="ü=1").attributes.extend(
        [_kv("n", _av(int_value=7)), _kv("ok", _av(bool_value=False))]
    )
    return data


def expected_table() -> pa.Table:
    """:data:`EXPECTED_ROWS` as an Arrow table of :data:`EXPECTED_SCHEMA`."""
    return pa.Table.from_pylist(EXPECTED_ROWS, schema=EXPECTED_SCHEMA)


def golden_table() -> pa.Table:
    """The table the sink inserts for :func:`golden_traces`, by the production path."""
    encoded = encode_span_batches(span_views(golden_traces(), DEFAULT_TENANT))
    assert encoded.refused == []
    [payload] = encoded.payloads
    decoded = decode_message("spans", payload)
    assert decoded.table is not None, decoded
    return decoded.table


def test_span_path_produces_the_hand_written_table() -> None:
    table = golden_table()
    assert table.schema == EXPECTED_SCHEMA
    for name in EXPECTED_SCHEMA.names:  # column by column: a failure names the column
        assert table[name].to_pylist() == expected_table()[name].to_pylist(), name
    assert table.equals(expected_table())

from typing import Any

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from sinks.decoding import decode_message
from streams.otlp_values import any_value_to_str
from streams.span_batch_messages import encode_span_batches
from streams.span_views import attributes_of, span_views
from tracehouse.span_specs import CLIENT, ERROR, SpanSpec, sid, tid, traces_data
from tracehouse.span_tables import otel_traces_table


def _av(**kw: object) -> common_pb2.AnyValue:
    return common_pb2.AnyValue(**kw)  # type: ignore[arg-type]


def test_any_value_strings_match_collector_conventions() -> None:
    assert any_value_to_str(_av(string_value="x")) == "x"
    assert any_value_to_str(_av(int_value=-42)) == "-42"
    assert any_value_to_str(_av(bool_value=True)) == "true"
    assert any_value_to_str(_av(double_value=1.5)) == "1.5"
    assert any_value_to_str(_av(double_value=3.0)) == "3"
    assert any_value_to_str(_av(bytes_value=b"\x00\x01")) == "AAE="
    arr = _av(array_value=common_pb2.ArrayValue(values=[_av(int_value=1), _av(string_value="a")]))
    assert any_value_to_str(arr) == '[1,"a"]'
    kvl = _av(
        kvlist_value=common_pb2.KeyValueList(
            values=[common_pb2.KeyValue(key="k", value=_av(bool_value=False))]
        )
    )
    assert any_value_to_str(kvl) == '{"k":false}'
    assert any_value_to_str(_av()) == ""


def _one_span_data() -> trace_pb2.TracesData:
    data = trace_pb2.TracesData()
    rs = data.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=_av(string_value="api"))
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "lib", "2.0"
    span = ss.spans.add(
        trace_id=bytes(range(16)),
        span_id=bytes(range(1, 9)),
        parent_span_id=bytes(range(2, 10)),
        name="GET /x",
        kind=trace_pb2.Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=1_700_000_000_000_000_001,
        end_time_unix_nano=1_700_000_000_500_000_003,
        trace_state="k=v",
    )
    span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    span.status.message = "bad"
    span.attributes.add(key="n", value=_av(int_value=7))
    ev = span.events.add(time_unix_nano=1_700_000_000_100_000_000, name="retry")
    ev.attributes.add(key="attempt", value=_av(int_value=2))
    span.links.add(trace_id=b"\x09" * 16, span_id=b"\x08" * 8, trace_state="a=b")
    return data


def _row(data: trace_pb2.TracesData) -> dict[str, Any]:
    [row] = otel_traces_table(data).to_pylist()
    return dict(row)


def test_one_span_through_the_pipeline() -> None:
    row = _row(_one_span_data())
    assert row["TraceId"] == "000102030405060708090a0b0c0d0e0f"
    assert row["SpanId"] == "0102030405060708"
    assert row["ParentSpanId"] == "0203040506070809"
    assert row["ServiceName"] == "api" and row["ScopeVersion"] == "2.0"
    assert row["Duration"] == 500_000_002
    assert row["SpanKind"] == "Client" and row["StatusCode"] == "Error"
    assert row["SpanAttributes"] == [("n", "7")]
    assert row["Events.Name"] == ["retry"]
    assert row["Events.Attributes"] == [[("attempt", "2")]]
    assert row["Links.TraceId"] == ["09" * 16] and row["Links.TraceState"] == ["a=b"]
    assert row["TraceState"] == "k=v" and row["StatusMessage"] == "bad"


def test_negative_duration_is_clamped() -> None:
    data = _one_span_data()
    span = data.resource_spans[0].scope_spans[0].spans[0]
    span.end_time_unix_nano = span.start_time_unix_nano - 5
    assert _row(data)["Duration"] == 0


def test_attributes_converted_by_a_policy_are_the_ones_stored() -> None:
    """A view caches its attributes when a policy reads them; the encoder must reuse exactly
    that conversion, so what policies matched on is what lands in ClickHouse."""
    data: trace_pb2.TracesData = traces_data(
        [
            SpanSpec(tid(1), sid(1), "shop", kind=CLIENT, attributes={"a": 1, "b": True}),
            SpanSpec(tid(1), sid(2), "pay", parent_id=sid(1), status=ERROR, trace_state="k=v"),
        ]
    )
    views = span_views(data)
    assert attributes_of(views[0]) == {"a": "1", "b": "true"}
    [payload] = encode_span_batches(views).payloads
    table = decode_message("spans", payload).table
    assert table is not None
    assert table["SpanAttributes"].to_pylist() == [[("a", "1"), ("b", "true")], []]
    assert table.equals(otel_traces_table(data))

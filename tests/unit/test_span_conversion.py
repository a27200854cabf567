from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from sinks.span_columns import OTEL_TRACES_COLUMNS, otel_traces_columns
from streams.otlp_values import any_value_to_str
from streams.span_records import span_records


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


def test_span_records_and_columns() -> None:
    [rec] = span_records(_one_span_data())
    assert rec["trace_id"] == "000102030405060708090a0b0c0d0e0f"
    assert rec["span_id"] == "0102030405060708"
    assert rec["parent_span_id"] == "0203040506070809"
    assert rec["service_name"] == "api" and rec["scope_version"] == "2.0"
    cols = dict(zip(OTEL_TRACES_COLUMNS, otel_traces_columns([rec]), strict=True))
    assert cols["Timestamp"] == [1_700_000_000_000_000_001]
    assert cols["Duration"] == [500_000_002]
    assert cols["SpanKind"] == ["Client"] and cols["StatusCode"] == ["Error"]
    assert cols["SpanAttributes"] == [{"n": "7"}]
    assert cols["Events.Name"] == [["retry"]]
    assert cols["Events.Attributes"] == [[{"attempt": "2"}]]
    assert cols["Links.TraceId"] == [["09" * 16]] and cols["Links.TraceState"] == [["a=b"]]
    assert cols["TraceState"] == ["k=v"] and cols["StatusMessage"] == ["bad"]


def test_negative_duration_is_clamped() -> None:
    [rec] = span_records(_one_span_data())
    rec["end_time_unix_nano"] = rec["start_time_unix_nano"] - 5
    cols = dict(zip(OTEL_TRACES_COLUMNS, otel_traces_columns([rec]), strict=True))
    assert cols["Duration"] == [0]


def test_span_views_build_the_same_records_as_span_records() -> None:
    """The lazy hot-path views must not change what reaches spans.sampled."""
    from opentelemetry.proto.trace.v1 import trace_pb2

    from streams.span_views import attributes_of, full_record, span_views
    from tests.otlp_builders import CLIENT, ERROR, SpanSpec, sid, tid, traces_data

    data: trace_pb2.TracesData = traces_data(
        [
            SpanSpec(tid(1), sid(1), "shop", kind=CLIENT, attributes={"a": 1, "b": True}),
            SpanSpec(tid(1), sid(2), "pay", parent_id=sid(1), status=ERROR, trace_state="k=v"),
        ]
    )
    span = data.resource_spans[0].scope_spans[0].spans[0]
    ev = span.events.add()
    ev.name, ev.time_unix_nano = "e", 5
    link = span.links.add()
    link.trace_id, link.span_id = tid(9), sid(9)
    views = span_views(data)
    assert attributes_of(views[0]) == {"a": "1", "b": "true"}
    assert [full_record(v) for v in views] == span_records(data)

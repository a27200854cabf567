from opentelemetry.proto.trace.v1 import trace_pb2

from core.partitioning import partition_for_key
from ingest.otlp_split import split_by_partition
from tracehouse.demo_traces import make_request


def _spans(td: trace_pb2.TracesData) -> list[trace_pb2.Span]:
    return [s for rs in td.resource_spans for ss in rs.scope_spans for s in ss.spans]


def test_split_keeps_every_span_once_and_traces_whole() -> None:
    request = make_request(traces=50, seed=7)
    data = trace_pb2.TracesData.FromString(request.SerializeToString())
    result = split_by_partition(data, 6)
    out_spans = [s for td in result.by_partition.values() for s in _spans(td)]
    assert result.accepted == len(_spans(data)) == len(out_spans) == 250
    assert sorted(s.span_id for s in out_spans) == sorted(s.span_id for s in _spans(data))
    for p, td in result.by_partition.items():
        for span in _spans(td):
            assert partition_for_key(span.trace_id, 6) == p
        assert partition_for_key(result.keys[p], 6) == p


def test_split_preserves_resource_and_scope() -> None:
    data = trace_pb2.TracesData.FromString(make_request(traces=20, seed=2).SerializeToString())
    result = split_by_partition(data, 4)
    for td in result.by_partition.values():
        # Re-serialised output is valid OTLP (TracesData == ExportTraceServiceRequest bytes).
        again = trace_pb2.TracesData.FromString(td.SerializeToString())
        for rs in again.resource_spans:
            services = [
                kv.value.string_value for kv in rs.resource.attributes if kv.key == "service.name"
            ]
            assert len(services) == 1
            for ss in rs.scope_spans:
                assert ss.scope.name == "tracehouse.demo"
                assert ss.spans


def test_invalid_spans_are_rejected_by_reason_and_others_kept() -> None:
    data = trace_pb2.TracesData()
    ss = data.resource_spans.add().scope_spans.add()
    good = ss.spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="ok")
    ss.spans.add(trace_id=bytes(16), span_id=b"\x02" * 8, name="zero trace")
    ss.spans.add(trace_id=b"\x01" * 15, span_id=b"\x02" * 8, name="short trace")
    ss.spans.add(trace_id=b"\x01" * 16, span_id=bytes(8), name="zero span")
    ss.spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 3, name="short span")
    ss.spans.add(trace_id=b"\x01" * 16, span_id=b"\x03" * 8, parent_span_id=b"\x04", name="bad")
    result = split_by_partition(data, 3)
    assert result.accepted == 1
    assert dict(result.rejected) == {
        "zero_trace_id": 1,
        "invalid_trace_id_length": 1,
        "zero_span_id": 1,
        "invalid_span_id_length": 1,
        "invalid_parent_span_id_length": 1,
    }
    [td] = result.by_partition.values()
    assert _spans(td) == [good]


def test_empty_request_produces_no_messages() -> None:
    result = split_by_partition(trace_pb2.TracesData(), 4)
    assert result.by_partition == {} and result.accepted == 0 and result.rejected_total == 0

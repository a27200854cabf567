"""OTLP demo requests rewritten as Jaeger Thrift binary batches, for ``bench.ingest
--protocol jaeger_thrift``: one ``jaeger.Batch`` per service (resource), as a Jaeger client
posts them to ``/api/traces``. Encoded with Apache Thrift's library and the Thrift classes
jaeger-client ships, so the benchmark measures our decoder on what real clients send."""

from __future__ import annotations

from typing import Any

from jaeger_client.thrift_gen.jaeger import ttypes as J
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from thrift.protocol import TBinaryProtocol
from thrift.transport import TTransport

_KINDS = {
    trace_pb2.Span.SPAN_KIND_SERVER: "server",
    trace_pb2.Span.SPAN_KIND_CLIENT: "client",
    trace_pb2.Span.SPAN_KIND_PRODUCER: "producer",
    trace_pb2.Span.SPAN_KIND_CONSUMER: "consumer",
    trace_pb2.Span.SPAN_KIND_INTERNAL: "internal",
}


def _i64(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True) if raw else 0


def _tag(kv: common_pb2.KeyValue) -> Any:
    which = kv.value.WhichOneof("value")
    if which == "int_value":
        return J.Tag(key=kv.key, vType=J.TagType.LONG, vLong=kv.value.int_value)
    if which == "double_value":
        return J.Tag(key=kv.key, vType=J.TagType.DOUBLE, vDouble=kv.value.double_value)
    if which == "bool_value":
        return J.Tag(key=kv.key, vType=J.TagType.BOOL, vBool=kv.value.bool_value)
    text = "" if which is None else str(getattr(kv.value, which))
    return J.Tag(key=kv.key, vType=J.TagType.STRING, vStr=text)


def _span(s: trace_pb2.Span) -> Any:
    tags = [_tag(kv) for kv in s.attributes]
    if s.kind in _KINDS:
        tags.append(J.Tag(key="span.kind", vType=J.TagType.STRING, vStr=_KINDS[s.kind]))
    if s.status.code == trace_pb2.Status.STATUS_CODE_ERROR:
        tags.append(J.Tag(key="error", vType=J.TagType.BOOL, vBool=True))
    start_us = s.start_time_unix_nano // 1000
    return J.Span(
        traceIdHigh=_i64(s.trace_id[:8]),
        traceIdLow=_i64(s.trace_id[8:]),
        spanId=_i64(s.span_id),
        parentSpanId=_i64(s.parent_span_id),
        operationName=s.name,
        flags=1,
        startTime=start_us,
        duration=s.end_time_unix_nano // 1000 - start_us,
        tags=tags,
        logs=[
            J.Log(
                timestamp=e.time_unix_nano // 1000,
                fields=[J.Tag(key="event", vType=J.TagType.STRING, vStr=e.name)]
                + [_tag(kv) for kv in e.attributes],
            )
            for e in s.events
        ],
    )


def jaeger_thrift_bodies(request: trace_pb2.TracesData) -> list[tuple[bytes, int]]:
    """(Thrift binary Batch, span count) per resource of ``request``."""
    out: list[tuple[bytes, int]] = []
    for rs in request.resource_spans:
        service = ""
        process_tags = []
        for kv in rs.resource.attributes:
            if kv.key == "service.name":
                service = kv.value.string_value
            else:
                process_tags.append(_tag(kv))
        spans = [_span(s) for ss in rs.scope_spans for s in ss.spans]
        batch = J.Batch(process=J.Process(serviceName=service, tags=process_tags), spans=spans)
        buf = TTransport.TMemoryBuffer()
        batch.write(TBinaryProtocol.TBinaryProtocol(buf))
        out.append((bytes(buf.getvalue()), len(spans)))
    return out

"""Jaeger's protobuf API (``jaeger.api_v2``, used by ``CollectorService/PostSpans`` on 14250):
message classes built at import from descriptors written here, and their decoding into
``jaeger_batch`` objects (pure).

Why descriptors at runtime instead of generated ``_pb2`` files: jaeger-idl's ``model.proto``
and ``collector.proto`` import gogoproto and google.api annotations, which only change Go code
generation; building the descriptors here needs neither, and nothing generated is committed.
The messages, field numbers and types are those of jaeger-idl ``proto/api_v2/model.proto``
and ``collector.proto``; tests/unit/test_jaeger_proto_idl.py compares them with protoc's
compilation of jaeger-idl (commit 74be5630, tests/data/README.md). They live in a
private descriptor pool so they cannot collide with another library registering
``jaeger.api_v2`` in the default pool.

protobuf's own parser does the hostile-input work (truncation, lengths past the end, nesting
over 100 levels raise ``DecodeError``); this module then refuses, per span, what the Jaeger
model cannot mean: unknown tag value types, times before 1970 or past what storage holds,
negative durations, ``nanos`` outside 0..999,999,999, reference ids of the wrong length.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, timestamp_pb2
from google.protobuf.message_factory import GetMessageClass

from ingest.jaeger_batch import (
    BINARY,
    BOOL,
    DOUBLE,
    LONG,
    STRING,
    Batch,
    Log,
    Process,
    Span,
    SpanRef,
    Tag,
    TagValue,
)
from schemas.span_limits import MAX_TIME_UNIX_NANO, TIME_OUT_OF_RANGE

PACKAGE = "jaeger.api_v2"
SERVICE = "jaeger.api_v2.CollectorService"
INVALID_TAG = "invalid_tag"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_DURATION = "invalid_duration"
INVALID_LINK = "invalid_link"
INVALID_PROCESS = "invalid_process"

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED


def _field(
    msg: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    ftype: int,
    type_name: str = "",
    repeated: bool = False,
) -> None:
    f = msg.field.add(name=name, number=number, type=ftype)
    f.label = _REPEATED if repeated else _OPTIONAL
    if type_name:
        f.type_name = type_name


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The descriptors of the `jaeger.api_v2` messages and service ingest uses."""
    fd = descriptor_pb2.FileDescriptorProto(
        name="jaeger/api_v2/collector.proto", package=PACKAGE, syntax="proto3"
    )
    fd.dependency.extend(["google/protobuf/timestamp.proto", "google/protobuf/duration.proto"])
    value_type = fd.enum_type.add(name="ValueType")
    for i, name in enumerate(("STRING", "BOOL", "INT64", "FLOAT64", "BINARY")):
        value_type.value.add(name=name, number=i)
    ref_type = fd.enum_type.add(name="SpanRefType")
    ref_type.value.add(name="CHILD_OF", number=0)
    ref_type.value.add(name="FOLLOWS_FROM", number=1)

    kv = fd.message_type.add(name="KeyValue")
    _field(kv, "key", 1, _F.TYPE_STRING)
    _field(kv, "v_type", 2, _F.TYPE_ENUM, ".jaeger.api_v2.ValueType")
    _field(kv, "v_str", 3, _F.TYPE_STRING)
    _field(kv, "v_bool", 4, _F.TYPE_BOOL)
    _field(kv, "v_int64", 5, _F.TYPE_INT64)
    _field(kv, "v_float64", 6, _F.TYPE_DOUBLE)
    _field(kv, "v_binary", 7, _F.TYPE_BYTES)

    log = fd.message_type.add(name="Log")
    _field(log, "timestamp", 1, _F.TYPE_MESSAGE, ".google.protobuf.Timestamp")
    _field(log, "fields", 2, _F.TYPE_MESSAGE, ".jaeger.api_v2.KeyValue", repeated=True)

    ref = fd.message_type.add(name="SpanRef")
    _field(ref, "trace_id", 1, _F.TYPE_BYTES)
    _field(ref, "span_id", 2, _F.TYPE_BYTES)
    _field(ref, "ref_type", 3, _F.TYPE_ENUM, ".jaeger.api_v2.SpanRefType")

    process = fd.message_type.add(name="Process")
    _field(process, "service_name", 1, _F.TYPE_STRING)
    _field(process, "tags", 2, _F.TYPE_MESSAGE, ".jaeger.api_v2.KeyValue", repeated=True)

    span = fd.message_type.add(name="Span")
    _field(span, "trace_id", 1, _F.TYPE_BYTES)
    _field(span, "span_id", 2, _F.TYPE_BYTES)
    _field(span, "operation_name", 3, _F.TYPE_STRING)
    _field(span, "references", 4, _F.TYPE_MESSAGE, ".jaeger.api_v2.SpanRef", repeated=True)
    _field(span, "flags", 5, _F.TYPE_UINT32)
    _field(span, "start_time", 6, _F.TYPE_MESSAGE, ".google.protobuf.Timestamp")
    _field(span, "duration", 7, _F.TYPE_MESSAGE, ".google.protobuf.Duration")
    _field(span, "tags", 8, _F.TYPE_MESSAGE, ".jaeger.api_v2.KeyValue", repeated=True)
    _field(span, "logs", 9, _F.TYPE_MESSAGE, ".jaeger.api_v2.Log", repeated=True)
    _field(span, "process", 10, _F.TYPE_MESSAGE, ".jaeger.api_v2.Process")
    _field(span, "process_id", 11, _F.TYPE_STRING)
    _field(span, "warnings", 12, _F.TYPE_STRING, repeated=True)

    batch = fd.message_type.add(name="Batch")
    _field(batch, "spans", 1, _F.TYPE_MESSAGE, ".jaeger.api_v2.Span", repeated=True)
    _field(batch, "process", 2, _F.TYPE_MESSAGE, ".jaeger.api_v2.Process")

    request = fd.message_type.add(name="PostSpansRequest")
    _field(request, "batch", 1, _F.TYPE_MESSAGE, ".jaeger.api_v2.Batch")
    fd.message_type.add(name="PostSpansResponse")

    service = fd.service.add(name="CollectorService")
    service.method.add(
        name="PostSpans",
        input_type=".jaeger.api_v2.PostSpansRequest",
        output_type=".jaeger.api_v2.PostSpansResponse",
    )
    return fd


_POOL = descriptor_pool.DescriptorPool()
for _dep in (timestamp_pb2, duration_pb2):
    _POOL.AddSerializedFile(_dep.DESCRIPTOR.serialized_pb)
_POOL.AddSerializedFile(file_descriptor().SerializeToString())


def message_class(name: str) -> Any:
    """The generated message class of ``jaeger.api_v2.<name>`` (tests build requests with it)."""
    return GetMessageClass(_POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))


PostSpansRequest = message_class("PostSpansRequest")
PostSpansResponse = message_class("PostSpansResponse")

_KINDS = {0: STRING, 1: BOOL, 2: LONG, 3: DOUBLE, 4: BINARY}
_NANOS_PER_SECOND = 1_000_000_000


class _Problem(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _tags(kvs: Any) -> list[Tag]:
    out: list[Tag] = []
    for kv in kvs:
        kind = _KINDS.get(kv.v_type)
        if kind is None:
            raise _Problem(INVALID_TAG)
        value: TagValue
        if kind == STRING:
            value = kv.v_str
        elif kind == BOOL:
            value = kv.v_bool
        elif kind == LONG:
            value = kv.v_int64
        elif kind == DOUBLE:
            value = kv.v_float64
        else:
            value = kv.v_binary
        out.append(Tag(kv.key, kind, value))
    return out


def _nanos(seconds: int, nanos: int, reason: str) -> int:
    if not 0 <= nanos < _NANOS_PER_SECOND:
        raise _Problem(reason)
    return seconds * _NANOS_PER_SECOND + nanos


def _time(ts: Any) -> int:
    value = _nanos(ts.seconds, ts.nanos, INVALID_TIMESTAMP)
    if not 0 <= value <= MAX_TIME_UNIX_NANO:
        raise _Problem(TIME_OUT_OF_RANGE)
    return value


def _process(p: Any) -> Process:
    return Process(p.service_name, _tags(p.tags))


def _span(s: Any) -> Span:
    span = Span(trace_id=s.trace_id, span_id=s.span_id, operation_name=s.operation_name)
    span.flags = s.flags
    try:
        start = _time(s.start_time)
        # Duration: seconds and nanos share a sign; negative means nothing for a span.
        duration = s.duration.seconds * _NANOS_PER_SECOND + s.duration.nanos
        if duration < 0 or abs(s.duration.nanos) >= _NANOS_PER_SECOND:
            raise _Problem(INVALID_DURATION)
        if start + duration > MAX_TIME_UNIX_NANO:
            raise _Problem(TIME_OUT_OF_RANGE)
        span.start_unix_nano, span.end_unix_nano = start, start + duration
        for r in s.references:
            if len(r.trace_id) != 16 or len(r.span_id) != 8 or r.ref_type not in (0, 1):
                raise _Problem(INVALID_LINK)
            span.references.append(SpanRef(r.ref_type, r.trace_id, r.span_id))
        span.tags = _tags(s.tags)
        span.logs = [Log(_time(log.timestamp), _tags(log.fields)) for log in s.logs]
        if s.HasField("process"):
            span.process = _process(s.process)
    except _Problem as exc:
        span.problem = exc.reason
    return span


def request_to_batch(request: Any) -> Batch:
    """A decoded ``PostSpansRequest`` as a ``jaeger_batch.Batch``."""
    b = request.batch
    process: Process | None = None
    problem: str | None = None
    if b.HasField("process"):
        try:
            process = _process(b.process)
        except _Problem:
            problem = INVALID_PROCESS
    return Batch(process, [_span(s) for s in b.spans], problem)

"""ingest/jaeger_proto.py's runtime descriptors against Jaeger's published ``jaeger.api_v2``.

tests/data/jaeger_api_v2_collector.descriptor.json is protoc's compilation of jaeger-idl's
``proto/api_v2/model.proto`` and ``collector.proto`` (tests/data/README.md). Every message and
enum ingest defines must have the IDL's fields (name, number, type, label, message type), the
service method the IDL's signature, and a request written with classes built from the IDL must
decode through ingest to the values it was given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    json_format,
    timestamp_pb2,
)
from google.protobuf.message_factory import GetMessageClass

from ingest import jaeger_proto
from ingest.jaeger_decode import decode_post_spans

IDL = Path(__file__).parents[1] / "data" / "jaeger_api_v2_collector.descriptor.json"


def idl_files() -> list[descriptor_pb2.FileDescriptorProto]:
    fds = json_format.Parse(IDL.read_text(), descriptor_pb2.FileDescriptorSet())
    return list(fds.file)


def ours() -> descriptor_pb2.FileDescriptorProto:
    return jaeger_proto.file_descriptor()


def shape(msg: descriptor_pb2.DescriptorProto) -> dict[str, tuple[int, int, int, str]]:
    return {f.name: (f.number, f.type, f.label, f.type_name) for f in msg.field}


def test_every_message_enum_and_method_matches_the_idl() -> None:
    idl_messages = {m.name: m for f in idl_files() for m in f.message_type}
    idl_enums = {e.name: e for f in idl_files() for e in f.enum_type}
    mine = ours()
    assert {m.name for m in mine.message_type} <= set(idl_messages)
    for msg in mine.message_type:
        assert shape(msg) == shape(idl_messages[msg.name]), msg.name
    for enum in mine.enum_type:
        assert [(v.name, v.number) for v in enum.value] == [
            (v.name, v.number) for v in idl_enums[enum.name].value
        ], enum.name
    (idl_service,) = [s for f in idl_files() for s in f.service]
    (service,) = mine.service
    assert service.name == idl_service.name
    assert [(m.name, m.input_type, m.output_type) for m in service.method] == [
        (m.name, m.input_type, m.output_type) for m in idl_service.method
    ]
    assert f"{idl_files()[0].package}.{idl_service.name}" == jaeger_proto.SERVICE


def idl_class(name: str) -> Any:
    pool = descriptor_pool.DescriptorPool()
    for dep in (timestamp_pb2, duration_pb2):
        pool.AddSerializedFile(dep.DESCRIPTOR.serialized_pb)
    for f in idl_files():
        pool.Add(f)
    return GetMessageClass(pool.FindMessageTypeByName(f"jaeger.api_v2.{name}"))


def test_a_request_written_with_the_idl_decodes_through_ingest() -> None:
    request = idl_class("PostSpansRequest")()
    batch = request.batch
    batch.process.service_name = "idl-svc"
    batch.process.tags.add(key="region", v_str="eu")
    span = batch.spans.add(
        trace_id=bytes(range(16)), span_id=bytes(range(1, 9)), operation_name="op", flags=1
    )
    span.start_time.seconds, span.start_time.nanos = 1_700_000_000, 5
    span.duration.nanos = 250
    span.tags.add(key="n", v_type=2, v_int64=-3)
    span.tags.add(key="span.kind", v_str="client")
    span.references.add(trace_id=bytes(range(16)), span_id=bytes(range(2, 10)), ref_type=0)
    log = span.logs.add()
    log.timestamp.seconds = 1_700_000_000
    log.fields.add(key="event", v_str="sent")
    decoded = decode_post_spans(request.SerializeToString())
    assert not decoded.rejected
    (rs,) = decoded.data.resource_spans
    assert [(kv.key, kv.value.string_value) for kv in rs.resource.attributes] == [
        ("service.name", "idl-svc"),
        ("region", "eu"),
    ]
    (out,) = rs.scope_spans[0].spans
    assert (out.trace_id, out.span_id, out.parent_span_id) == (
        bytes(range(16)),
        bytes(range(1, 9)),
        bytes(range(2, 10)),
    )
    start = 1_700_000_000 * 10**9 + 5
    assert (out.start_time_unix_nano, out.end_time_unix_nano) == (start, start + 250)
    assert out.kind == out.SPAN_KIND_CLIENT and out.flags == 1
    assert [(kv.key, kv.value.int_value) for kv in out.attributes] == [("n", -3)]
    assert [(e.name, e.time_unix_nano) for e in out.events] == [("sent", 1_700_000_000 * 10**9)]

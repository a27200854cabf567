"""Message classes built from Jaeger's published definitions, for contract tests.

tests/data/*.descriptor.json are protoc's descriptors (FileDescriptorSet, proto3 JSON) of:

- jaeger-idl v0.11.1 (commit 74be5630c18f2cd8446073a101b6c9e30bc4b4b6)
  proto/api_v3/query_service.proto: the api_v3 messages and the QueryService;
- jaeger (commit 8498073ff809b1a3923521920a9b1b017ea97ecf, after v2.20.0)
  internal/proto/metrics/openmetrics.proto: the MetricFamily of /api/metrics/*.

They were compiled at development time from the fetched repositories; the only edits before
compiling removed imports no installed package provides (gnostic OpenAPI annotations, gogoproto
options) and TraceQueryParameters.filter (an experimental field typed by Jaeger's expression
proto, which tracehouse refuses). These classes are independent of query/api_v3_proto.py, so
parsing a response with them checks tracehouse against Jaeger's definition, not against itself.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    json_format,
    message_factory,
    timestamp_pb2,
)
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

DATA = Path(__file__).parent / "data"
DESCRIPTORS = (
    "jaeger_api_v3_query_service.descriptor.json",
    "jaeger_openmetrics.descriptor.json",
)
# google.api annotations only decorate the service for grpc-gateway; not needed to parse.
_ANNOTATION_FILES = ("google/api/annotations.proto", "google/api/field_behavior.proto")


def idl_files() -> list[descriptor_pb2.FileDescriptorProto]:
    files = []
    for name in DESCRIPTORS:
        fds = json_format.Parse((DATA / name).read_text(), descriptor_pb2.FileDescriptorSet())
        files.extend(fds.file)
    return files


@cache
def pool() -> descriptor_pool.DescriptorPool:
    p = descriptor_pool.DescriptorPool()
    for module in (duration_pb2, timestamp_pb2, common_pb2, resource_pb2, trace_pb2):
        p.Add(descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
    for f in idl_files():
        f = descriptor_pb2.FileDescriptorProto.FromString(f.SerializeToString())
        kept = [d for d in f.dependency if d not in _ANNOTATION_FILES]
        del f.dependency[:]
        f.dependency.extend(kept)
        for msg in f.message_type:
            _strip_options(msg)
        for service in f.service:
            for method in service.method:
                method.ClearField("options")
        p.Add(f)
    return p


def _strip_options(msg: descriptor_pb2.DescriptorProto) -> None:
    for field in msg.field:
        field.ClearField("options")
    for nested in msg.nested_type:
        _strip_options(nested)


def idl(name: str) -> Any:
    """The class of a message by full name, e.g. 'jaeger.api_v3.GetServicesResponse'."""
    return message_factory.GetMessageClass(pool().FindMessageTypeByName(name))


def parse(doc: Any, name: str) -> Any:
    """A decoded JSON document parsed strictly (unknown fields fail) into the IDL's message."""
    return json_format.ParseDict(doc, idl(name)())


_ID_LENGTHS = {"traceId": 32, "spanId": 16, "parentSpanId": 16}


def otlp_ids_to_base64(doc: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex, the one exception to proto3 JSON's base64
    for bytes; turn them into base64 (after checking they are lowercase hex of the right
    length) so json_format can parse the document into the OTLP message types."""
    import base64

    if isinstance(doc, list):
        return [otlp_ids_to_base64(x) for x in doc]
    if not isinstance(doc, dict):
        return doc
    out = {}
    for key, value in doc.items():
        if key in _ID_LENGTHS and isinstance(value, str):
            assert len(value) == _ID_LENGTHS[key], (key, value)
            assert value == value.lower() and bytes.fromhex(value), (key, value)
            out[key] = base64.b64encode(bytes.fromhex(value)).decode()
        else:
            out[key] = otlp_ids_to_base64(value)
    return out

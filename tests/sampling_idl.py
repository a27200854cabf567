"""api_v2 sampling message classes from protoc's descriptor of Jaeger's published sampling.proto.

tests/data/jaeger_api_v2_sampling.descriptor.json was compiled at development time from
jaeger-idl commit 74be5630c18f2cd8446073a101b6c9e30bc4b4b6, proto/api_v2/sampling.proto, with its
gogoproto and google.api annotation imports (and the rpc's HTTP option) removed, because no
installed package provides them and they change nothing on the wire or in JSON. These classes
are independent of query/sampling_proto.py, so parsing tracehouse's answers with them checks
tracehouse against Jaeger's definition, not against itself.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

DESCRIPTOR = Path(__file__).parent / "data" / "jaeger_api_v2_sampling.descriptor.json"


@cache
def file_proto() -> descriptor_pb2.FileDescriptorProto:
    fds = json_format.Parse(DESCRIPTOR.read_text(), descriptor_pb2.FileDescriptorSet())
    (only,) = fds.file
    return only


@cache
def pool() -> descriptor_pool.DescriptorPool:
    p = descriptor_pool.DescriptorPool()
    p.Add(file_proto())
    return p


def message(name: str) -> Any:
    return message_factory.GetMessageClass(pool().FindMessageTypeByName(f"jaeger.api_v2.{name}"))

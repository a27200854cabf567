"""The api_v3 message types of Jaeger's IDL, declared here and built into descriptors at runtime.

Why not generated ``_pb2`` modules: jaeger-idl's query_service.proto imports gnostic's OpenAPI
annotations and Jaeger's expression proto, which no installed package provides; generating
them would vendor foreign proto trees for the sake of annotations and an experimental field
that change nothing tracehouse serves. The messages themselves are small, so they are
declared below (names, numbers and types as jaeger-idl v0.11.1 proto/api_v3/query_service.proto
defines them) and compiled into a private DescriptorPool together with the OTLP protos of the
installed ``opentelemetry-proto`` package. tests/unit/test_query_v3.py compares every
message, field number, type and JSON name with protoc's descriptors of the published IDL
(tests/data/jaeger_api_v3_query_service.descriptor.json), so a drift from Jaeger's definition
fails a test.

The one field left out is ``TraceQueryParameters.filter`` (10, a ``jaeger.expression.v1.Call``):
tracehouse does not implement structured filters, and a request carrying one arrives as an
unknown field 10, which :func:`has_structured_filter` detects so it is refused, not ignored.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    message_factory,
    timestamp_pb2,
)
from google.protobuf.message import Message
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

PACKAGE = "jaeger.api_v3"
SERVICE = f"{PACKAGE}.QueryService"
FILE_NAME = "tracehouse/jaeger_api_v3_query_service.proto"
FILTER_FIELD_NUMBER = 10

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_STRING, _BOOL, _INT32, _UINT64, _FIXED64, _MSG = (
    _F.TYPE_STRING,
    _F.TYPE_BOOL,
    _F.TYPE_INT32,
    _F.TYPE_UINT64,
    _F.TYPE_FIXED64,
    _F.TYPE_MESSAGE,
)
_TS, _DUR, _TRACES = (
    ".google.protobuf.Timestamp",
    ".google.protobuf.Duration",
    ".opentelemetry.proto.trace.v1.TracesData",
)

# message -> [(field, number, type, label, message type or "", map entry?)]
Field = tuple[str, int, int, int, str]
MESSAGES: dict[str, list[Field]] = {
    "GetTraceRequest": [
        ("trace_id", 1, _STRING, _OPT, ""),
        ("start_time", 2, _MSG, _OPT, _TS),
        ("end_time", 3, _MSG, _OPT, _TS),
        ("raw_traces", 4, _BOOL, _OPT, ""),
    ],
    "TraceQueryParameters": [
        ("service_name", 1, _STRING, _OPT, ""),
        ("operation_name", 2, _STRING, _OPT, ""),
        ("attributes", 3, _MSG, _REP, f".{PACKAGE}.TraceQueryParameters.AttributesEntry"),
        ("start_time_min", 4, _MSG, _OPT, _TS),
        ("start_time_max", 5, _MSG, _OPT, _TS),
        ("duration_min", 6, _MSG, _OPT, _DUR),
        ("duration_max", 7, _MSG, _OPT, _DUR),
        ("search_depth", 8, _INT32, _OPT, ""),
        ("raw_traces", 9, _BOOL, _OPT, ""),
    ],
    "FindTracesRequest": [("query", 1, _MSG, _OPT, f".{PACKAGE}.TraceQueryParameters")],
    "GetServicesRequest": [],
    "GetServicesResponse": [("services", 1, _STRING, _REP, "")],
    "GetOperationsRequest": [
        ("service", 1, _STRING, _OPT, ""),
        ("span_kind", 2, _STRING, _OPT, ""),
    ],
    "Operation": [("name", 1, _STRING, _OPT, ""), ("span_kind", 2, _STRING, _OPT, "")],
    "GetOperationsResponse": [("operations", 1, _MSG, _REP, f".{PACKAGE}.Operation")],
    "GetDependenciesRequest": [
        ("start_time", 1, _MSG, _OPT, _TS),
        ("end_time", 2, _MSG, _OPT, _TS),
    ],
    "DependenciesResponse": [("dependencies", 1, _MSG, _REP, f".{PACKAGE}.Dependency")],
    "Dependency": [
        ("parent", 1, _STRING, _OPT, ""),
        ("child", 2, _STRING, _OPT, ""),
        ("call_count", 3, _UINT64, _OPT, ""),
    ],
    "ServiceSummary": [
        ("name", 1, _STRING, _OPT, ""),
        ("span_count", 2, _INT32, _OPT, ""),
        ("error_span_count", 3, _INT32, _OPT, ""),
    ],
    "TraceSummary": [
        ("trace_id", 1, _STRING, _OPT, ""),
        ("root_service_name", 2, _STRING, _OPT, ""),
        ("root_operation_name", 3, _STRING, _OPT, ""),
        ("min_start_time_unix_nano", 4, _FIXED64, _OPT, ""),
        ("max_end_time_unix_nano", 5, _FIXED64, _OPT, ""),
        ("span_count", 6, _INT32, _OPT, ""),
        ("error_span_count", 7, _INT32, _OPT, ""),
        ("orphan_span_count", 8, _INT32, _OPT, ""),
        ("services", 9, _MSG, _REP, f".{PACKAGE}.ServiceSummary"),
    ],
    "FindTraceSummariesRequest": [("query", 1, _MSG, _OPT, f".{PACKAGE}.TraceQueryParameters")],
    "FindTraceSummariesResponse": [("summaries", 1, _MSG, _REP, f".{PACKAGE}.TraceSummary")],
    "GRPCGatewayError": [
        (
            "error",
            1,
            _MSG,
            _OPT,
            f".{PACKAGE}.GRPCGatewayError.GRPCGatewayErrorDetails",
        )
    ],
    "GRPCGatewayWrapper": [("result", 1, _MSG, _OPT, _TRACES)],
}
NESTED: dict[str, dict[str, list[Field]]] = {
    "TraceQueryParameters": {
        "AttributesEntry": [("key", 1, _STRING, _OPT, ""), ("value", 2, _STRING, _OPT, "")]
    },
    "GRPCGatewayError": {
        "GRPCGatewayErrorDetails": [
            ("grpcCode", 1, _INT32, _OPT, ""),
            ("httpCode", 2, _INT32, _OPT, ""),
            ("message", 3, _STRING, _OPT, ""),
            ("httpStatus", 4, _STRING, _OPT, ""),
        ]
    },
}
# (method, request, response, server streaming)
METHODS = (
    ("GetTrace", "GetTraceRequest", _TRACES, True),
    ("FindTraces", "FindTracesRequest", _TRACES, True),
    ("GetServices", "GetServicesRequest", f".{PACKAGE}.GetServicesResponse", False),
    ("GetOperations", "GetOperationsRequest", f".{PACKAGE}.GetOperationsResponse", False),
    ("GetDependencies", "GetDependenciesRequest", f".{PACKAGE}.DependenciesResponse", False),
    (
        "FindTraceSummaries",
        "FindTraceSummariesRequest",
        f".{PACKAGE}.FindTraceSummariesResponse",
        True,
    ),
)


def _add_fields(msg: descriptor_pb2.DescriptorProto, fields: list[Field]) -> None:
    for name, number, ftype, label, type_name in fields:
        f = msg.field.add(name=name, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = type_name


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(
        name=FILE_NAME,
        package=PACKAGE,
        syntax="proto3",
        dependency=[
            "google/protobuf/duration.proto",
            "google/protobuf/timestamp.proto",
            "opentelemetry/proto/trace/v1/trace.proto",
        ],
    )
    for name, fields in MESSAGES.items():
        msg = fdp.message_type.add(name=name)
        _add_fields(msg, fields)
        for nested_name, nested_fields in NESTED.get(name, {}).items():
            nested = msg.nested_type.add(name=nested_name)
            _add_fields(nested, nested_fields)
            if nested_name.endswith("Entry"):
                nested.options.map_entry = True
    service = fdp.service.add(name="QueryService")
    for method, request, response, streaming in METHODS:
        service.method.add(
            name=method,
            input_type=f".{PACKAGE}.{request}",
            output_type=response,
            server_streaming=streaming,
        )
    return fdp


def _build_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for module in (duration_pb2, timestamp_pb2, common_pb2, resource_pb2, trace_pb2):
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
    pool.Add(file_descriptor())
    return pool


POOL = _build_pool()


def message_class(full_name: str) -> Any:
    """The generated-at-runtime class of a message in this pool (e.g. 'jaeger.api_v3.Operation')."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


def v3(name: str) -> Any:
    return message_class(f"{PACKAGE}.{name}")


TracesData = message_class("opentelemetry.proto.trace.v1.TracesData")
GetTraceRequest = v3("GetTraceRequest")
FindTracesRequest = v3("FindTracesRequest")
GetServicesRequest = v3("GetServicesRequest")
GetServicesResponse = v3("GetServicesResponse")
GetOperationsRequest = v3("GetOperationsRequest")
GetOperationsResponse = v3("GetOperationsResponse")
GetDependenciesRequest = v3("GetDependenciesRequest")
DependenciesResponse = v3("DependenciesResponse")
FindTraceSummariesRequest = v3("FindTraceSummariesRequest")
FindTraceSummariesResponse = v3("FindTraceSummariesResponse")
GRPCGatewayError = v3("GRPCGatewayError")
GRPCGatewayWrapper = v3("GRPCGatewayWrapper")


def has_structured_filter(query: Message) -> bool:
    """True when a TraceQueryParameters carried field 10 (``filter``), unknown to this pool."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    return any(f.field_number == FILTER_FIELD_NUMBER for f in UnknownFieldSet(query))

"""Jaeger's api_v3 ``QueryService`` over gRPC (default port 16685, Jaeger's), served with grpcio.

Methods: GetTrace, FindTraces, FindTraceSummaries (server streams), GetServices,
GetOperations and GetDependencies, i.e. every method of the IDL's service. Messages are those
of query.api_v3_proto; the reads are the HTTP binding's (query.api_v3.V3Reads), so both
bindings answer identically.

Streams are cut into TracesData messages of at most SPANS_PER_MESSAGE spans, so a trace at the
20,000-span cap never needs a client to raise gRPC's default 4 MB receive limit.

Status codes: INVALID_ARGUMENT for a bad request (the same messages as the HTTP 400s),
UNAUTHENTICATED for a missing or unknown token (``authorization: Bearer`` metadata, the tokens
of ingest), NOT_FOUND for GetTrace of an unknown trace, INTERNAL otherwise (details logged).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from core.errors import Unauthenticated
from core.tenancy import TenantConfig, resolve_tenant, token_from_headers
from query import api_v3_proto as pb
from query.api_v3 import V3Reads
from query.otlp_json_out import TracesDataBuilder
from query.params import BadRequestError
from query.v3_from_proto import query_from_proto, timestamp_ns
from query.v3_params import (
    check_name,
    dependencies_json,
    parse_operations_kind,
    parse_trace_id,
)

SPANS_PER_MESSAGE = 1000
GRPC_THREADS = 8
log = logging.getLogger("query.grpc")


def chunk_resource_spans(
    resource_spans: list[dict[str, Any]], limit: int = SPANS_PER_MESSAGE
) -> Iterator[list[dict[str, Any]]]:
    """ResourceSpans JSON split into groups of at most ``limit`` spans (resources repeated)."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for rs in resource_spans:
        for ss in rs["scopeSpans"]:
            spans = ss["spans"]
            for start in range(0, len(spans), limit):
                piece = spans[start : start + limit]
                if size + len(piece) > limit and chunk:
                    yield chunk
                    chunk, size = [], 0
                chunk.append({"resource": rs["resource"], "scopeSpans": [{**ss, "spans": piece}]})
                size += len(piece)
    if chunk:
        yield chunk


_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})


def hex_ids_as_base64(doc: Any) -> Any:
    """OTLP/JSON ids are hex, proto3 JSON bytes are base64: convert before ParseDict."""
    if isinstance(doc, list):
        return [hex_ids_as_base64(x) for x in doc]
    if isinstance(doc, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in _ID_KEYS and isinstance(v, str)
            else hex_ids_as_base64(v)
            for k, v in doc.items()
        }
    return doc


def traces_messages(resource_spans: list[dict[str, Any]]) -> Iterator[Any]:
    for chunk in chunk_resource_spans(resource_spans):
        yield json_format.ParseDict(hex_ids_as_base64({"resourceSpans": chunk}), pb.TracesData())


class QueryServicer:
    """The handlers; each resolves the tenant, maps errors to status codes, then reads."""

    def __init__(self, reads: V3Reads, tenants: TenantConfig) -> None:
        self.reads = reads
        self.tenants = tenants

    def _tenant(self, context: grpc.ServicerContext) -> str:
        metadata = {k.lower(): v for k, v in context.invocation_metadata()}
        try:
            return resolve_tenant(self.tenants, token_from_headers(metadata.get))
        except Unauthenticated as exc:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            raise  # abort raises; this line only satisfies type checkers

    def _guard(self, context: grpc.ServicerContext, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except BadRequestError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except grpc.RpcError:
            raise
        except Exception:
            log.exception("gRPC query failed")
            context.abort(grpc.StatusCode.INTERNAL, "internal error")

    def get_trace(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        tenant = self._tenant(context)

        def read() -> tuple[TracesDataBuilder, list[str]]:
            trace_id = parse_trace_id(request.trace_id)
            start = (
                timestamp_ns(request.start_time, "start_time")
                if request.HasField("start_time")
                else None
            )
            end = (
                timestamp_ns(request.end_time, "end_time") if request.HasField("end_time") else None
            )
            return self.reads.traces(tenant, [trace_id], start, end, request.raw_traces)

        builder, order = self._guard(context, read)
        if not builder:
            context.abort(grpc.StatusCode.NOT_FOUND, "trace not found")
        yield from traces_messages(builder.resource_spans(order))

    def find_traces(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        tenant = self._tenant(context)
        builder, order = self._guard(
            context, lambda: self.reads.find(tenant, query_from_proto(request.query))
        )
        yield from traces_messages(builder.resource_spans(order))

    def find_trace_summaries(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        tenant = self._tenant(context)
        doc = self._guard(
            context, lambda: self.reads.summaries(tenant, query_from_proto(request.query))
        )
        yield json_format.ParseDict(doc, pb.FindTraceSummariesResponse())

    def get_services(self, request: Any, context: grpc.ServicerContext) -> Any:
        tenant = self._tenant(context)
        names = self._guard(context, lambda: self.reads.store.services(tenant))
        return pb.GetServicesResponse(services=names)

    def get_dependencies(self, request: Any, context: grpc.ServicerContext) -> Any:
        tenant = self._tenant(context)

        def read() -> list[tuple[str, str, int]]:
            if not request.HasField("start_time") or not request.HasField("end_time"):
                raise BadRequestError("start_time and end_time are required")
            start = timestamp_ns(request.start_time, "start_time")
            end = timestamp_ns(request.end_time, "end_time")
            if start > end:
                raise BadRequestError("start_time must not be after end_time")
            return self.reads.store.dependencies(tenant, start, end)

        edges = self._guard(context, read)
        return json_format.ParseDict(dependencies_json(edges), pb.DependenciesResponse())

    def get_operations(self, request: Any, context: grpc.ServicerContext) -> Any:
        tenant = self._tenant(context)

        def read() -> list[tuple[str, str]]:
            if not request.service:
                raise BadRequestError("service is required")
            service = check_name(request.service, "service")
            kind = parse_operations_kind(request.span_kind)
            return self.reads.store.operations(tenant, service, kind)

        ops = self._guard(context, read)
        response = pb.GetOperationsResponse()
        for name, kind in ops:
            response.operations.add(name=name, span_kind=kind.lower())
        return response


class Malformed:
    """A request body that is not the method's message; the handler refuses it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _parser(req: Any) -> Callable[[bytes], Any]:
    """Deserialize, keeping a decode failure for the handler: grpcio would answer INTERNAL."""

    def parse(data: bytes) -> Any:
        try:
            return req.FromString(data)
        except DecodeError as exc:
            return Malformed(str(exc)[:200] or "undecodable message")

    return parse


def _refusing_malformed(fn: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: {request.reason}")
        return fn(request, context)

    return handle


def generic_handler(servicer: QueryServicer) -> grpc.GenericRpcHandler:
    def stream(fn: Callable[..., Any], req: Any) -> grpc.RpcMethodHandler:
        def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            yield from _refusing_malformed(fn)(request, context)

        return grpc.unary_stream_rpc_method_handler(
            handle, request_deserializer=_parser(req), response_serializer=_serialize
        )

    def unary(fn: Callable[..., Any], req: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            _refusing_malformed(fn),
            request_deserializer=_parser(req),
            response_serializer=_serialize,
        )

    return grpc.method_handlers_generic_handler(
        pb.SERVICE,
        {
            "GetTrace": stream(servicer.get_trace, pb.GetTraceRequest),
            "FindTraces": stream(servicer.find_traces, pb.FindTracesRequest),
            "FindTraceSummaries": stream(
                servicer.find_trace_summaries, pb.FindTraceSummariesRequest
            ),
            "GetServices": unary(servicer.get_services, pb.GetServicesRequest),
            "GetOperations": unary(servicer.get_operations, pb.GetOperationsRequest),
            "GetDependencies": unary(servicer.get_dependencies, pb.GetDependenciesRequest),
        },
    )


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


def start_grpc_server(reads: V3Reads, tenants: TenantConfig, host: str, port: int) -> grpc.Server:
    """A started server on host:port (raises if the port cannot be bound)."""
    server = grpc.server(
        ThreadPoolExecutor(GRPC_THREADS, thread_name_prefix="query-grpc"),
        handlers=[generic_handler(QueryServicer(reads, tenants))],
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if server.add_insecure_port(address) == 0:
        raise OSError(f"gRPC query port {address} could not be bound")
    server.start()
    return server

"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

A generic handler takes the raw request bytes so an undecodable request is answered
INVALID_ARGUMENT and counted, instead of dying inside grpc's deserializer. Status codes follow
the OTLP spec: OK (with ``partial_success`` for rejected spans), INVALID_ARGUMENT,
UNAUTHENTICATED, RESOURCE_EXHAUSTED + RetryInfo over the tenant's rate, UNAVAILABLE + RetryInfo
when Kafka cannot take the spans (both retryable for OTLP clients). gzip request compression is
handled by grpc itself; ``max_request_bytes`` caps the message size (RESOURCE_EXHAUSTED).
Connections that carry no call for ``IDLE_CONNECTION_SECONDS`` are closed, and at shutdown
``server.stop(grace)`` cancels whatever a stalled client still holds open.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from core.errors import RateLimited, Unauthenticated
from core.tenancy import resolve_tenant, token_from_headers
from ingest import metrics, rpc_status
from ingest.admission import AdmissionOutcome, SpanAdmission
from ingest.kafka_publisher import PublishError

log = logging.getLogger("tracehouse.ingest.grpc")

PROTOCOL = "otlp_grpc"
SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Idle connections (no call in flight) are closed with GOAWAY after this long, so half-open
# clients do not pile up; OTLP exporters reconnect transparently.
IDLE_CONNECTION_SECONDS = 300


async def abort_counted(
    context: grpc.aio.ServicerContext,
    code: grpc.StatusCode,
    reason: str,
    message: str,
    retry_after: float | None = None,
    protocol: str = PROTOCOL,
) -> None:
    metrics.REQUESTS.labels(protocol, reason).inc()
    trailers: tuple[tuple[str, str | bytes], ...] = ()
    if retry_after is not None:
        details = rpc_status.status(code.value[0], message, retry_after)
        trailers = ((STATUS_DETAILS_KEY, details),)
    await context.abort(code, message, trailing_metadata=trailers)


async def tenant_or_abort(
    admission: SpanAdmission, context: grpc.aio.ServicerContext, protocol: str
) -> str:
    """The caller's tenant from the call metadata; aborts UNAUTHENTICATED (counted) if none."""
    headers = {k.lower(): v for k, v in context.invocation_metadata() or ()}
    try:
        return resolve_tenant(
            admission.tenants,
            token_from_headers(lambda name: metadata_text(headers.get(name))),
        )
    except Unauthenticated as exc:
        await abort_counted(
            context, grpc.StatusCode.UNAUTHENTICATED, "unauthenticated", str(exc), None, protocol
        )
        raise  # abort raises; this line is never reached


async def admit_or_abort(
    admission: SpanAdmission,
    data: trace_pb2.TracesData,
    protocol: str,
    tenant: str,
    context: grpc.aio.ServicerContext,
    retry_after: float,
    decode_rejected: Mapping[str, int] | None = None,
    raw: bytes | None = None,
) -> AdmissionOutcome:
    """``admission.export`` with every failure turned into its counted gRPC status (the
    retryable ones with RetryInfo), shared by every gRPC service of ingest."""
    try:
        return await admission.export(data, protocol, tenant, decode_rejected, raw)
    except RateLimited as exc:
        code, reason, message, delay = (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "rate_limited",
            str(exc),
            exc.retry_after,
        )
    except PublishError as exc:
        log.warning("kafka publish failed", extra={"fields": {"error": str(exc)}})
        if exc.retryable:
            code, reason, message, delay = (
                grpc.StatusCode.UNAVAILABLE,
                "kafka_unavailable",
                f"kafka unavailable: {exc}",
                retry_after,
            )
        else:
            code, reason, message, delay = (
                grpc.StatusCode.INTERNAL,
                "kafka_error",
                f"kafka error: {exc}",
                None,
            )
    except Exception:
        # A bug must still be answered and counted, not surface as grpc's bare UNKNOWN.
        log.exception("export failed", extra={"fields": {"protocol": protocol}})
        code, reason, message, delay = (
            grpc.StatusCode.INTERNAL,
            "internal_error",
            "internal error",
            None,
        )
    await abort_counted(context, code, reason, message, delay, protocol)
    raise AssertionError("context.abort returned")  # pragma: no cover


class TraceService:
    def __init__(self, admission: SpanAdmission, retry_after_seconds: float) -> None:
        self._admission = admission
        self._retry_after = retry_after_seconds

    async def export(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        metrics.IN_FLIGHT.inc()
        try:
            return await self._export(raw, context)
        finally:
            metrics.IN_FLIGHT.dec()

    async def _export(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        tenant = await tenant_or_abort(self._admission, context, PROTOCOL)
        metrics.REQUEST_BYTES.labels(PROTOCOL).inc(len(raw))
        try:
            data = trace_pb2.TracesData.FromString(raw)
        except DecodeError as exc:
            await abort_counted(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "undecodable",
                f"request is not an OTLP ExportTraceServiceRequest: {exc}",
            )
        outcome = await admit_or_abort(
            self._admission, data, PROTOCOL, tenant, context, self._retry_after, raw=raw
        )
        response = trace_service_pb2.ExportTraceServiceResponse()
        if outcome.rejected:
            response.partial_success.rejected_spans = outcome.rejected
            response.partial_success.error_message = outcome.message
            result = "partial"
        elif outcome.accepted or outcome.sampled_out:
            result = "ok"
        else:
            result = "empty"
        metrics.REQUESTS.labels(PROTOCOL, result).inc()
        return response.SerializeToString()


def metadata_text(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def build_server(
    admission: SpanAdmission,
    host: str,
    port: int,
    max_request_bytes: int,
    reuse_port: bool,
    retry_after_seconds: float = 2,
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with the TraceService bound; returns (server, bound port)."""
    service = TraceService(admission, retry_after_seconds)
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            # No deserializer: the handler decodes, so bad input is counted and answered.
            "Export": grpc.unary_unary_rpc_method_handler(service.export),
        },
    )
    return serve_handlers(handler, host, port, max_request_bytes, reuse_port, "OTLP/gRPC")


def serve_handlers(
    handler: grpc.GenericRpcHandler,
    host: str,
    port: int,
    max_request_bytes: int,
    reuse_port: bool,
    what: str,
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with ingest's limits serving ``handler``; returns (server, port)."""
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_connection_idle_ms", IDLE_CONNECTION_SECONDS * 1000),
        ]
    )
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"{what}: cannot bind {host}:{port}")
    return server, bound

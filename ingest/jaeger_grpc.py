"""Jaeger's gRPC collector API: ``jaeger.api_v2.CollectorService/PostSpans`` (port 14250).

Same shape as the OTLP/gRPC receiver: a generic handler takes the raw request bytes (an
undecodable request is answered INVALID_ARGUMENT and counted, not lost in grpc's
deserializer), then tenancy and admission. Jaeger's response has no partial-success field, so
spans refused for a reason are reported in the ``jaeger-rejected-spans`` trailing metadata
(count and message) and counted in ``tracehouse_ingest_spans_rejected{protocol="jaeger_grpc"}``.
"""

from __future__ import annotations

import logging

import grpc

from ingest import metrics
from ingest.admission import SpanAdmission
from ingest.errors import BodyError
from ingest.grpc_receiver import abort_counted, admit_or_abort, serve_handlers, tenant_or_abort
from ingest.http_receiver import count_refused_spans
from ingest.jaeger_decode import decode_post_spans
from ingest.jaeger_proto import SERVICE, PostSpansResponse

log = logging.getLogger("tracehouse.ingest.jaeger_grpc")

PROTOCOL = "jaeger_grpc"
REJECTED_TRAILER = "jaeger-rejected-spans"
_EMPTY_RESPONSE = PostSpansResponse().SerializeToString()


class CollectorService:
    def __init__(self, admission: SpanAdmission, retry_after_seconds: float) -> None:
        self._admission = admission
        self._retry_after = retry_after_seconds

    async def post_spans(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        metrics.IN_FLIGHT.inc()
        try:
            return await self._post_spans(raw, context)
        finally:
            metrics.IN_FLIGHT.dec()

    async def _post_spans(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        tenant = await tenant_or_abort(self._admission, context, PROTOCOL)
        metrics.REQUEST_BYTES.labels(PROTOCOL).inc(len(raw))
        try:
            decoded = decode_post_spans(raw)
        except BodyError as exc:
            count_refused_spans(PROTOCOL, exc)
            await abort_counted(
                context, grpc.StatusCode.INVALID_ARGUMENT, exc.reason, str(exc), None, PROTOCOL
            )
        except Exception:
            log.exception("decoder failed", extra={"fields": {"protocol": PROTOCOL}})
            await abort_counted(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "invalid_request",
                "request could not be decoded",
                None,
                PROTOCOL,
            )
        outcome = await admit_or_abort(
            self._admission,
            decoded.data,
            PROTOCOL,
            tenant,
            context,
            self._retry_after,
            decoded.rejected,
        )
        if outcome.rejected:
            context.set_trailing_metadata(
                ((REJECTED_TRAILER, f"{outcome.rejected}; {outcome.message}"),)
            )
            result = "partial"
        elif outcome.accepted or outcome.sampled_out:
            result = "ok"
        else:
            result = "empty"
        metrics.REQUESTS.labels(PROTOCOL, result).inc()
        return _EMPTY_RESPONSE


def build_jaeger_grpc_server(
    admission: SpanAdmission,
    host: str,
    port: int,
    max_request_bytes: int,
    reuse_port: bool,
    retry_after_seconds: float = 2,
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with Jaeger's CollectorService bound; returns (server, bound port)."""
    service = CollectorService(admission, retry_after_seconds)
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"PostSpans": grpc.unary_unary_rpc_method_handler(service.post_spans)}
    )
    return serve_handlers(handler, host, port, max_request_bytes, reuse_port, "Jaeger gRPC")

"""OTLP/HTTP receiver (``POST /v1/traces``), answering as the OTLP specification says.

200 with an ``ExportTraceServiceResponse`` (``partial_success`` when spans were rejected),
400 for bodies that do not decode, 413 over the size limit, 415 for unsupported media,
503 with Retry-After when Kafka cannot take the spans so the client's retry logic kicks in.
"""

from __future__ import annotations

import logging
import zlib

from aiohttp import web
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest import metrics
from ingest.exporter import SpanExporter
from ingest.kafka_publisher import PublishError

log = logging.getLogger("tracehouse.ingest.http")

PROTOBUF = "application/x-protobuf"
PROTOCOL = "otlp_http"
RETRY_AFTER_SECONDS = "2"


class BodyError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def gunzip_bounded(body: bytes, limit: int) -> bytes:
    """Inflate a gzip body without ever holding more than ``limit`` bytes (gzip bombs)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BodyError(400, "bad_gzip", f"invalid gzip body: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyError(413, "too_large", f"decompressed body exceeds {limit} bytes")
    return out


def _status_body(message: str) -> bytes:
    # google.rpc.Status: field 1 code (int32), field 2 message (string); encoded by hand to
    # avoid depending on googleapis-common-protos for two fields.
    text = message.encode()
    return b"\x12" + _varint(len(text)) + text


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _error(status: int, reason: str, message: str, **headers: str) -> web.Response:
    metrics.REQUESTS.labels(PROTOCOL, reason).inc()
    return web.Response(
        status=status, body=_status_body(message), content_type=PROTOBUF, headers=headers
    )


def build_app(exporter: SpanExporter, max_body_bytes: int) -> web.Application:
    async def traces(request: web.Request) -> web.Response:
        media = request.content_type
        if media != PROTOBUF:
            return _error(415, "unsupported_media", f"unsupported content type {media!r}")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "too_large", f"request body exceeds {max_body_bytes} bytes")
        metrics.REQUEST_BYTES.labels(PROTOCOL).inc(len(body))
        try:
            if request.headers.get("Content-Encoding", "").lower() == "gzip":
                body = gunzip_bounded(body, max_body_bytes)
            data = trace_pb2.TracesData.FromString(body)
        except BodyError as exc:
            return _error(exc.status, exc.reason, str(exc))
        except DecodeError as exc:
            return _error(
                400, "undecodable", f"body is not an OTLP ExportTraceServiceRequest: {exc}"
            )
        try:
            outcome = await exporter.export(data, PROTOCOL)
        except PublishError as exc:
            log.warning("kafka publish failed", extra={"fields": {"error": str(exc)}})
            if exc.retryable:
                return _error(
                    503,
                    "kafka_unavailable",
                    f"kafka unavailable: {exc}",
                    **{"Retry-After": RETRY_AFTER_SECONDS},
                )
            return _error(500, "kafka_error", f"kafka error: {exc}")
        response = trace_service_pb2.ExportTraceServiceResponse()
        if outcome.rejected:
            response.partial_success.rejected_spans = outcome.rejected
            response.partial_success.error_message = outcome.message
        metrics.REQUESTS.labels(PROTOCOL, "ok" if not outcome.rejected else "partial").inc()
        return web.Response(body=response.SerializeToString(), content_type=PROTOBUF)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def prometheus(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", prometheus)
    return app

"""OTLP/HTTP receiver (``POST /v1/traces``), answering as the OTLP specification says.

Protobuf and JSON bodies, optionally gzip-compressed; the response uses the request's encoding.
200 with an ``ExportTraceServiceResponse`` (``partial_success`` when spans were rejected),
400 for bodies that do not decode, 401 without a valid token (auth on), 413 over the size
limit, 415 for unsupported media, 429 + Retry-After over the tenant's rate, 503 + Retry-After
when Kafka cannot take the spans, so the client's retry logic kicks in. Also serves
``/health`` (used by the local stack) and ``/metrics``.

A client that stalls cannot hold a request (or shutdown) open: the body must keep arriving
(``BODY_IDLE_TIMEOUT_SECONDS`` between chunks, ``BODY_TIMEOUT_SECONDS`` in all) or the request is
answered 408 ``read_timeout``; headers are bounded by the connection's keep-alive timeout
(``HEADER_TIMEOUT_SECONDS``, see server.py). Every failure of a decoder, even an unforeseen
one, is answered and counted under a reason; nothing escapes as an uncounted 500.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import zlib
from collections.abc import Awaitable, Callable

from aiohttp import web
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.errors import RateLimited, Unauthenticated
from core.tenancy import resolve_tenant, token_from_headers
from ingest import metrics, otlp_json, rpc_status
from ingest.admission import AdmissionOutcome, SpanAdmission
from ingest.decoded import Decoded
from ingest.errors import BodyError
from ingest.kafka_publisher import PublishError

log = logging.getLogger("tracehouse.ingest.http")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
PROTOCOL = "otlp_http"

# google.rpc.Code values used in error bodies (408: DEADLINE_EXCEEDED).
_RPC_CODES = {400: 3, 401: 16, 408: 4, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}

# A body that stops arriving for this long, or takes longer than the total, is a 408: a stalled
# client must not hold a request slot, memory, or the shutdown grace period.
BODY_IDLE_TIMEOUT_SECONDS = 15.0
BODY_TIMEOUT_SECONDS = 60.0
# Idle keep-alive connections, and connections whose request headers have not all arrived
# (aiohttp waits for headers under the keep-alive timer), are closed after this long.
HEADER_TIMEOUT_SECONDS = 30.0

Decoder = Callable[[bytes], Decoded]


def gunzip_bounded(body: bytes, limit: int) -> bytes:
    """Inflate a gzip body without ever holding more than ``limit`` bytes (gzip bombs)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BodyError(400, "bad_gzip", f"invalid gzip body: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyError(413, "too_large", f"decompressed body exceeds {limit} bytes")
    if not inflater.eof:
        raise BodyError(400, "bad_gzip", "truncated gzip body")
    return out


def decode_protobuf(body: bytes) -> Decoded:
    try:
        # TracesData and ExportTraceServiceRequest share field 1 (resource_spans): same bytes.
        return Decoded(trace_pb2.TracesData.FromString(body), raw=body)
    except DecodeError as exc:
        raise BodyError(
            400, "undecodable", f"body is not an OTLP ExportTraceServiceRequest: {exc}"
        ) from exc


class Responder:
    """Builds responses in the request's encoding and counts every request by outcome."""

    def __init__(self, protocol: str, json_body: bool) -> None:
        self.protocol = protocol
        self.json_body = json_body

    def error(
        self, status: int, reason: str, message: str, retry_after: float | None = None
    ) -> web.Response:
        metrics.REQUESTS.labels(self.protocol, reason).inc()
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="tracehouse"'
        code = _RPC_CODES.get(status, 2)
        if self.json_body:
            body = otlp_json.encode_status(code, message)
            return web.Response(status=status, body=body, content_type=JSON, headers=headers)
        body = rpc_status.status(code, message)
        return web.Response(status=status, body=body, content_type=PROTOBUF, headers=headers)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The (inflated) request body, enforcing ``limit`` before and after decompression and the
    read timeouts (408 ``read_timeout`` for a client that stalls mid-body)."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyError(413, "too_large", f"request body exceeds {limit} bytes")
    body = await _read_bounded(request, limit)
    encoding = request.headers.get("Content-Encoding", "identity").lower().strip()
    if encoding == "gzip":
        body = gunzip_bounded(body, limit)
    elif encoding not in ("", "identity"):
        raise BodyError(415, "unsupported_encoding", f"unsupported Content-Encoding {encoding!r}")
    return body


async def _read_bounded(request: web.Request, limit: int) -> bytes:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BODY_TIMEOUT_SECONDS
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            wait = min(BODY_IDLE_TIMEOUT_SECONDS, deadline - loop.time())
            async with asyncio.timeout(max(wait, 0)):
                chunk = await request.content.readany()
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise BodyError(413, "too_large", f"request body exceeds {limit} bytes")
            chunks.append(chunk)
    except TimeoutError:
        raise BodyError(
            408, "read_timeout", f"request body not received in time ({size} bytes read)"
        ) from None


async def handle_export(
    request: web.Request,
    admission: SpanAdmission,
    responder: Responder,
    decode: Decoder,
    limit: int,
    retry_after: float,
    respond: Callable[[AdmissionOutcome], web.Response],
) -> web.Response:
    """Auth -> read -> decode -> export, mapping every failure to a counted response."""
    metrics.IN_FLIGHT.inc()
    try:
        try:
            tenant = resolve_tenant(admission.tenants, token_from_headers(request.headers.get))
        except Unauthenticated as exc:
            return responder.error(401, "unauthenticated", str(exc))
        try:
            raw = await read_body(request, limit)
            metrics.REQUEST_BYTES.labels(responder.protocol).inc(len(raw))
            decoded = decode(raw)
        except BodyError as exc:
            count_refused_spans(responder.protocol, exc)
            return responder.error(exc.status, exc.reason, str(exc))
        except Exception:
            # A decoder bug must still be an answer and a count, never a bare 500 traceback.
            log.exception("decoder failed", extra={"fields": {"protocol": responder.protocol}})
            return responder.error(400, "invalid_request", "request could not be decoded")
        try:
            outcome = await admission.export(
                decoded.data, responder.protocol, tenant, decoded.rejected, decoded.raw
            )
        except RateLimited as exc:
            return responder.error(429, "rate_limited", str(exc), exc.retry_after)
        except PublishError as exc:
            log.warning("kafka publish failed", extra={"fields": {"error": str(exc)}})
            if exc.retryable:
                return responder.error(
                    503, "kafka_unavailable", f"kafka unavailable: {exc}", retry_after
                )
            return responder.error(500, "kafka_error", f"kafka error: {exc}")
        except Exception:
            log.exception("export failed", extra={"fields": {"protocol": responder.protocol}})
            return responder.error(500, "internal_error", "internal error")
        if outcome.rejected:
            result = "partial"
        elif outcome.accepted or outcome.sampled_out:
            result = "ok"
        else:
            result = "empty"
        metrics.REQUESTS.labels(responder.protocol, result).inc()
        return respond(outcome)
    finally:
        metrics.IN_FLIGHT.dec()


def count_refused_spans(protocol: str, exc: BodyError) -> None:
    """Spans a decoder delimited but refused in a request answered 400: received and rejected
    by reason, so the accounting identity and the per-reason counts hold for them too."""
    if exc.rejected:
        metrics.SPANS_RECEIVED.labels(protocol).inc(sum(exc.rejected.values()))
        for reason, count in exc.rejected.items():
            metrics.SPANS_REJECTED.labels(protocol, reason).inc(count)


def otlp_response(outcome: AdmissionOutcome, json_body: bool) -> web.Response:
    response = trace_service_pb2.ExportTraceServiceResponse()
    if outcome.rejected:
        response.partial_success.rejected_spans = outcome.rejected
        response.partial_success.error_message = outcome.message
    if json_body:
        return web.Response(body=otlp_json.encode_response(response), content_type=JSON)
    return web.Response(body=response.SerializeToString(), content_type=PROTOBUF)


Handler = Callable[[web.Request], Awaitable[web.Response]]


def build_app(
    admission: SpanAdmission, max_body_bytes: int, retry_after_seconds: float = 2
) -> web.Application:
    async def traces(request: web.Request) -> web.Response:
        media = request.content_type
        if media == PROTOBUF:
            json_body, decode = False, decode_protobuf
        elif media == JSON:
            json_body, decode = True, otlp_json.decode_request
        else:
            return Responder(PROTOCOL, False).error(
                415, "unsupported_media", f"unsupported content type {media!r}"
            )
        return await handle_export(
            request,
            admission,
            Responder(PROTOCOL, json_body),
            decode,
            max_body_bytes,
            retry_after_seconds,
            lambda outcome: otlp_response(outcome, json_body),
        )

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post("/v1/traces", traces)
    add_ops_routes(app)
    return app


def add_ops_routes(app: web.Application) -> None:
    async def health(_request: web.Request) -> web.Response:
        # The pid tells apart processes sharing a port with SO_REUSEPORT.
        return web.json_response({"status": "ok", "pid": os.getpid()})

    async def prometheus(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/health", health)
    app.router.add_get("/metrics", prometheus)

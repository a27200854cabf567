"""Jaeger collector HTTP endpoint: ``POST /api/traces`` with a Thrift binary ``jaeger.Batch``
(``Content-Type: application/x-thrift``), what Jaeger clients' HTTP senders post to 14268.

Answers 202 like Jaeger. Jaeger has no partial-success answer, so when spans were refused the
202 carries ``{"rejectedSpans": n, "errorMessage": ...}`` (as the Zipkin receiver does) and
the spans are counted under their reasons; errors are the same statuses and counters as every
other receiver (``http_receiver.handle_export``).
"""

from __future__ import annotations

import json

from aiohttp import web

from ingest.admission import AdmissionOutcome, SpanAdmission
from ingest.http_receiver import JSON, Responder, add_ops_routes, handle_export
from ingest.jaeger_decode import decode_thrift_batch

PROTOCOL = "jaeger_thrift_http"
# The media types Jaeger's collector accepts for a Thrift binary batch.
THRIFT_MEDIA = ("application/x-thrift", "application/vnd.apache.thrift.binary")


def _accepted(outcome: AdmissionOutcome) -> web.Response:
    if not outcome.rejected:
        return web.Response(status=202)
    body = {"rejectedSpans": outcome.rejected, "errorMessage": outcome.message}
    return web.Response(status=202, body=json.dumps(body).encode(), content_type=JSON)


def build_jaeger_http_app(
    admission: SpanAdmission, max_body_bytes: int, retry_after_seconds: float = 2
) -> web.Application:
    async def traces(request: web.Request) -> web.Response:
        media = request.content_type
        if media not in THRIFT_MEDIA:
            return Responder(PROTOCOL, True).error(
                415,
                "unsupported_media",
                f"only Thrift binary batches ({THRIFT_MEDIA[0]}) are accepted, not {media!r}",
            )
        return await handle_export(
            request,
            admission,
            Responder(PROTOCOL, True),
            decode_thrift_batch,
            max_body_bytes,
            retry_after_seconds,
            _accepted,
        )

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post("/api/traces", traces)
    add_ops_routes(app)
    return app

"""Zipkin v2 receiver (``POST /api/v2/spans``, JSON, optionally gzip) on its own port.

Answers 202 like a Zipkin server. Zipkin has no partial-success response, so when some spans
are rejected the 202 carries a JSON body ``{"rejectedSpans": n, "errorMessage": ...}`` and
the spans are counted in ``tracehouse_ingest_spans_rejected{protocol="zipkin"}``.
"""

from __future__ import annotations

import json

from aiohttp import web

from ingest import zipkin
from ingest.admission import AdmissionOutcome, SpanAdmission
from ingest.http_receiver import JSON, Responder, add_ops_routes, handle_export

PROTOCOL = "zipkin"


def _accepted(outcome: AdmissionOutcome) -> web.Response:
    if not outcome.rejected:
        return web.Response(status=202)
    body = {"rejectedSpans": outcome.rejected, "errorMessage": outcome.message}
    return web.Response(status=202, body=json.dumps(body).encode(), content_type=JSON)


def build_zipkin_app(
    admission: SpanAdmission, max_body_bytes: int, retry_after_seconds: float = 2
) -> web.Application:
    async def spans(request: web.Request) -> web.Response:
        media = request.content_type
        # Zipkin clients commonly omit the type; aiohttp then reports octet-stream.
        if media not in (JSON, "application/octet-stream", "text/plain"):
            return Responder(PROTOCOL, True).error(
                415, "unsupported_media", f"only Zipkin v2 JSON is accepted, not {media!r}"
            )
        return await handle_export(
            request,
            admission,
            Responder(PROTOCOL, True),
            zipkin.decode_request,
            max_body_bytes,
            retry_after_seconds,
            _accepted,
        )

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post("/api/v2/spans", spans)
    add_ops_routes(app)
    return app

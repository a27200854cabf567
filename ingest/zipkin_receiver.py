"""Zipkin receiver on its own port: ``POST /api/v1/spans`` (v1 JSON) and ``POST /api/v2/spans``
(v2 JSON, or v2 protobuf with ``Content-Type: application/x-protobuf``), optionally gzip.

The JSON model is checked against the endpoint (``zipkin_version``): a v1 body on the v2
endpoint, or the reverse, is a 400 naming the endpoint to use, never a silent misreading.

Answers 202 like a Zipkin server. Zipkin has no partial-success response, so when some spans
are rejected the 202 carries a JSON body ``{"rejectedSpans": n, "errorMessage": ...}`` and
the spans are counted in ``tracehouse_ingest_spans_rejected{protocol="zipkin"}``.
"""

from __future__ import annotations

import json

from aiohttp import web

from ingest import zipkin, zipkin_proto, zipkin_v1
from ingest.admission import AdmissionOutcome, SpanAdmission
from ingest.http_receiver import (
    JSON,
    Decoder,
    Handler,
    Responder,
    add_ops_routes,
    handle_export,
)

PROTOCOL = "zipkin"


def _accepted(outcome: AdmissionOutcome) -> web.Response:
    if not outcome.rejected:
        return web.Response(status=202)
    body = {"rejectedSpans": outcome.rejected, "errorMessage": outcome.message}
    return web.Response(status=202, body=json.dumps(body).encode(), content_type=JSON)


# Zipkin clients commonly omit the type for JSON; aiohttp then reports octet-stream.
_JSON_TYPES = (JSON, "application/octet-stream", "text/plain", "")
PROTOBUF = "application/x-protobuf"
THRIFT = "application/x-thrift"


def decoder_for(version: int, media: str) -> tuple[Decoder | None, str]:
    """The decoder for a body of ``media`` on the v1 or v2 endpoint, or None and why not."""
    if media in _JSON_TYPES:
        return (zipkin_v1.decode_request if version == 1 else zipkin.decode_request), ""
    if version == 2 and media == PROTOBUF:
        return zipkin_proto.decode_request, ""
    if version == 1 and media == PROTOBUF:
        return None, "Zipkin protobuf is a v2 format: POST it to /api/v2/spans"
    if media == THRIFT:
        return None, "Zipkin v1 thrift is not accepted; send v1 or v2 JSON, or v2 protobuf"
    return None, f"Zipkin v{version} accepts JSON" + (" or protobuf" if version == 2 else "")


def build_zipkin_app(
    admission: SpanAdmission, max_body_bytes: int, retry_after_seconds: float = 2
) -> web.Application:
    def endpoint(version: int) -> Handler:
        async def spans(request: web.Request) -> web.Response:
            media = request.content_type
            decode, why = decoder_for(version, media)
            if decode is None:
                return Responder(PROTOCOL, True).error(
                    415, "unsupported_media", f"content type {media!r}: {why}"
                )
            return await handle_export(
                request,
                admission,
                Responder(PROTOCOL, True),
                decode,
                max_body_bytes,
                retry_after_seconds,
                _accepted,
            )

        return spans

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post("/api/v1/spans", endpoint(1))
    app.router.add_post("/api/v2/spans", endpoint(2))
    add_ops_routes(app)
    return app

"""Jaeger's api_v3 over HTTP: ``/api/v3/*`` with OTLP JSON payloads.

The paths, parameters and bodies are those of jaeger-idl's proto/api_v3/query_service.proto
(google.api.http bindings) as Jaeger's query service serves them, which is what Jaeger UI
>= 2.15 (services, operations) and >= 2.19 (trace-summaries) reads:

- streams of ``TracesData`` (GetTrace, FindTraces) come wrapped as ``{"result": TracesData}``
  (the IDL's GRPCGatewayWrapper), one document per response;
- unary answers are the response message itself (``{"services": [...]}``);
- errors are the IDL's GRPCGatewayError, ``{"error": {"grpcCode", "httpCode", "message",
  "httpStatus"}}``; like Jaeger, a trace id or search with no trace is a 404 "No traces found"
  (trace-summaries answers an empty list instead);
- the POST bindings of FindTraces and FindTraceSummaries take the request message as proto3
  JSON (``{"query": {...}}``).

``add_v3_routes`` also registers the metrics API (query.metrics_api), so the v1 application
needs one line to serve both.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from aiohttp import web
from google.protobuf import json_format

from query import api_v3_proto as pb
from query.metrics_api import add_metrics_routes
from query.otlp_json_out import TracesDataBuilder
from query.params import BadRequestError
from query.store import MAX_SPANS_PER_RESPONSE, MAX_SPANS_PER_TRACE
from query.v3_from_proto import query_from_proto
from query.v3_params import (
    V3Query,
    dependencies_json,
    parse_dependencies_range,
    parse_find_query,
    parse_get_trace,
    parse_operations_kind,
    pick,
)
from query.v3_store import V3Store

TenantResolver = Callable[[web.Request], str | None]
# Span reads of the v3 API running at once (each holds up to MAX_SPANS_PER_RESPONSE spans).
MAX_CONCURRENT_V3_READS = 4
# A client that reads nothing of a trace response for this long is cut off (as in v1).
WRITE_TIMEOUT_SECONDS = 30.0
# Text gathered before each write of a trace response.
WRITE_CHUNK_CHARS = 256 * 1024
# Largest POST body (a FindTracesRequest is a few hundred bytes).
MAX_BODY_BYTES = 64 * 1024
log = logging.getLogger("query.api_v3")

# HTTP status -> (gRPC code, reason phrase) for the error body.
_STATUS = {
    400: (3, "Bad Request"),
    401: (16, "Unauthorized"),
    404: (5, "Not Found"),
    500: (13, "Internal Server Error"),
}


def v3_error(status: int, message: str) -> web.Response:
    grpc_code, reason = _STATUS[status]
    body = {
        "error": {
            "grpcCode": grpc_code,
            "httpCode": status,
            "message": message,
            "httpStatus": reason,
        }
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return web.json_response(body, status=status, headers=headers)


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


class V3Reads:
    """The reads behind both bindings (HTTP here, gRPC in query.grpc_query)."""

    def __init__(
        self,
        store: V3Store,
        max_spans_per_trace: int = MAX_SPANS_PER_TRACE,
        max_spans_per_response: int = MAX_SPANS_PER_RESPONSE,
    ) -> None:
        self.store = store
        self.max_per_trace = max_spans_per_trace
        self.max_total = max_spans_per_response

    def traces(
        self,
        tenant: str,
        trace_ids: list[str],
        start_ns: int | None = None,
        end_ns: int | None = None,
        raw: bool = False,
    ) -> tuple[TracesDataBuilder, list[str]]:
        """The traces' spans (empty builder if none) and the order to list them in.

        Adjusted as the v1 API adjusts (query/adjusters.py) unless ``raw`` (raw_traces).
        """
        read = self.store.spans(
            tenant, trace_ids, start_ns, end_ns, self.max_per_trace, self.max_total
        )
        builder = TracesDataBuilder(read.stored, adjusted=not raw)
        for row in read.rows:
            builder.add(row)
        return builder, trace_ids

    def find(self, tenant: str, q: V3Query) -> tuple[TracesDataBuilder, list[str]]:
        return self.traces(tenant, self.store.find_trace_ids(tenant, q), raw=q.raw_traces)

    def summaries(self, tenant: str, q: V3Query) -> dict[str, Any]:
        return {"summaries": self.store.summaries(tenant, self.store.find_trace_ids(tenant, q))}


async def _find_request_body(request: web.Request) -> V3Query:
    """POST body: a FindTracesRequest / FindTraceSummariesRequest in proto3 JSON."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise BadRequestError(f"request body is larger than {MAX_BODY_BYTES} bytes")
    body = b""
    while chunk := await request.content.read(MAX_BODY_BYTES + 1 - len(body)):
        body += chunk  # read() may return less than asked for: loop until EOF or the cap
        if len(body) > MAX_BODY_BYTES:
            raise BadRequestError(f"request body is larger than {MAX_BODY_BYTES} bytes")
    message = pb.FindTracesRequest()
    try:
        json_format.Parse(body or b"{}", message)
    except (json_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequestError(f"malformed request body: {str(exc)[:200]}") from exc
    if not message.HasField("query"):
        raise BadRequestError("missing query")
    return query_from_proto(message.query)


def add_v3_routes(
    app: web.Application,
    trace_store: Any,
    tenant_of: TenantResolver,
    executor: Executor | None = None,
) -> None:
    """Register /api/v3/* and /api/metrics/* on the v1 application.

    ``trace_store`` is the v1 TraceStore; only its ClickHouse client is used (the v3 and
    metrics reads have their own SQL).
    """
    client = getattr(trace_store, "_client", None)  # the one client the process opened
    reads = V3Reads(V3Store(client))
    span_reads = asyncio.Semaphore(MAX_CONCURRENT_V3_READS)

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    def handler(
        fn: Callable[[web.Request, str], Awaitable[web.StreamResponse]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            tenant = tenant_of(request)
            if tenant is None:
                return v3_error(401, "missing or invalid credentials")
            try:
                return await fn(request, tenant)
            except BadRequestError as exc:
                return v3_error(400, str(exc))
            except Exception:
                log.exception("v3 query failed: %s", request.path_qs[:200])
                return v3_error(500, "internal error")

        return wrapped

    def json_body(payload: bytes) -> web.Response:
        return web.Response(body=payload, content_type="application/json")

    async def traces_response(
        request: web.Request, fn: Callable[..., Any], *args: Any
    ) -> web.StreamResponse:
        """``{"result": TracesData}`` written in chunks as the span texts are released; a
        client that reads nothing for WRITE_TIMEOUT_SECONDS is cut off, freeing its slot."""
        async with span_reads:
            builder, order = await run(fn, *args)
            if not builder:
                return v3_error(404, "No traces found")
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            try:
                async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
                    await resp.write(b'{"result":')
                pending: list[str] = []
                size = 0
                for piece in builder.json_chunks(order):
                    pending.append(piece)
                    size += len(piece)
                    if size >= WRITE_CHUNK_CHARS:
                        async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
                            await resp.write("".join(pending).encode())
                        pending, size = [], 0
                async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
                    await resp.write(("".join(pending) + "}").encode())
                    await resp.write_eof()
            except (TimeoutError, ConnectionError):
                if request.transport is not None:
                    request.transport.close()
            return resp

    async def services(request: web.Request, tenant: str) -> web.StreamResponse:
        names = await run(reads.store.services, tenant)
        return web.json_response({"services": names})

    async def operations(request: web.Request, tenant: str) -> web.StreamResponse:
        service = request.query.get("service", "")
        if not service:
            raise BadRequestError("parameter 'service' is required")
        kind_raw, _name = pick(request.query, "spanKind", "span_kind")
        ops = await run(reads.store.operations, tenant, service, parse_operations_kind(kind_raw))
        return web.json_response(
            {"operations": [{"name": n, "spanKind": k.lower()} for n, k in ops]}
        )

    async def get_trace(request: web.Request, tenant: str) -> web.StreamResponse:
        p = parse_get_trace(request.match_info["trace_id"], request.query)
        return await traces_response(
            request, reads.traces, tenant, [p.trace_id], p.start_ns, p.end_ns, p.raw_traces
        )

    async def find_traces(request: web.Request, tenant: str) -> web.StreamResponse:
        q = (
            await _find_request_body(request)
            if request.method == "POST"
            else parse_find_query(request.query)
        )
        return await traces_response(request, reads.find, tenant, q)

    async def trace_summaries(request: web.Request, tenant: str) -> web.StreamResponse:
        q = (
            await _find_request_body(request)
            if request.method == "POST"
            else parse_find_query(request.query)
        )
        doc = await run(reads.summaries, tenant, q)
        return json_body(await run(_dumps, doc))

    app.router.add_get("/api/v3/services", handler(services))
    app.router.add_get("/api/v3/operations", handler(operations))
    app.router.add_get("/api/v3/traces/{trace_id}", handler(get_trace))
    app.router.add_get("/api/v3/traces", handler(find_traces))
    app.router.add_post("/api/v3/traces", handler(find_traces))

    async def dependencies(request: web.Request, tenant: str) -> web.StreamResponse:
        start_ns, end_ns = parse_dependencies_range(request.query)
        edges = await run(reads.store.dependencies, tenant, start_ns, end_ns)
        return web.json_response(dependencies_json(edges))

    app.router.add_get("/api/v3/dependencies", handler(dependencies))
    app.router.add_get("/api/v3/trace-summaries", handler(trace_summaries))
    app.router.add_post("/api/v3/trace-summaries", handler(trace_summaries))
    add_metrics_routes(app, client, tenant_of, executor)

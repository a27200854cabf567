"""Jaeger-compatible query API + the web UI, served by one aiohttp application.

Paths and JSON shapes follow Jaeger's HTTP API (what Jaeger UI and Grafana's Jaeger data source
call), so existing tooling points at tracehouse unchanged. ClickHouse calls are blocking, so
they run in an executor to keep the event loop responsive; so does turning span rows into JSON.
Every parameter goes through query.params, so a bad one is a 400 Jaeger envelope naming it,
and any other failure is a 500 in the same envelope rather than aiohttp's plain-text page.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from typing import Any

from aiohttp import web

from query.api_v3 import add_v3_routes, v3_error
from query.jaeger_model import TracesJsonWriter, display_trace_id, envelope, error_envelope
from query.otlp_transform import rows_from_otlp
from query.params import (
    BadRequestError,
    TraceQuery,
    check_name,
    optional_bool,
    optional_int,
    optional_name,
    parse_dependencies_range,
    parse_span_kind,
    parse_trace_id,
    parse_trace_ids,
    parse_trace_query,
    parse_us_range,
    pretty_print,
    required_name,
)
from query.red import MAX_STEP_SECONDS, choose_step, series_from_rows, summary_from_rows
from query.static_ui import mount_ui
from query.store import MAX_SPANS_PER_RESPONSE, MAX_SPANS_PER_TRACE, TraceSpans, TraceStore

TenantResolver = Callable[[web.Request], str | None]
# Requests reading spans at once. Each holds up to MAX_SPANS_PER_RESPONSE spans as rows,
# dicts and JSON while it runs, so this bounds the process's peak memory (not just per request).
MAX_CONCURRENT_SPAN_READS = 4
# A response being written to a client that reads nothing for this long is abandoned.
WRITE_TIMEOUT_SECONDS = 30.0
# Largest request body (POST /api/transform uploads a trace file; Jaeger UI reads it whole).
MAX_BODY_BYTES = 16 * 1024 * 1024
log = logging.getLogger("query.api")


def no_auth(_request: web.Request) -> str:
    return ""


# Jaeger's query service indents pretty-printed JSON by four spaces.
PRETTY_INDENT = 4


def reply(request: web.Request, doc: Any, status: int = 200) -> web.Response:
    """A JSON response, indented when the client asks ``prettyPrint`` (as Jaeger does)."""
    text = json.dumps(doc, indent=PRETTY_INDENT if pretty_print(request.query) else None)
    return web.Response(text=text, status=status, content_type="application/json")


@web.middleware
async def api_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown paths and wrong methods under /api get the JSON envelope, not aiohttp's text.

    Jaeger clients parse every /api answer as the envelope; aiohttp's own 404/405 pages are
    text/plain. Under /api/v3 the answer takes api_v3's error shape instead. The UI's static
    files keep aiohttp's plain answers.
    """
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not request.path.startswith("/api") or exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        resp = None
        if request.path.startswith("/api/v3/"):  # api_v3 has its own error shape
            try:
                resp = v3_error(exc.status, exc.reason)
            except KeyError:  # a status api_v3 does not map (405): the v1 envelope
                resp = None
        if resp is None:
            resp = reply(request, error_envelope(exc.status, exc.reason), exc.status)
        if headers:
            resp.headers.update(headers)
        return resp


def build_app(
    store: TraceStore,
    tenant_of: TenantResolver = no_auth,
    *,
    executor: Executor | None = None,
    max_spans_per_trace: int = MAX_SPANS_PER_TRACE,
    max_spans_per_response: int = MAX_SPANS_PER_RESPONSE,
    max_concurrent_span_reads: int = MAX_CONCURRENT_SPAN_READS,
    write_timeout: float = WRITE_TIMEOUT_SECONDS,
    jaeger_ui_dir: str = "",
    jaeger_ui_config: str = "",
) -> web.Application:
    """The API and UI; the span caps are parameters so tests and embedders can lower them.

    ``jaeger_ui_dir`` / ``jaeger_ui_config``: a Jaeger UI build to serve at ``/`` and its
    config file (query.static_ui); empty: the own UI at ``/``."""
    span_reads = asyncio.Semaphore(max_concurrent_span_reads)

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    def handler(
        fn: Callable[[web.Request, str], Awaitable[web.StreamResponse]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            tenant = tenant_of(request)
            if tenant is None:
                return web.json_response(
                    error_envelope(401, "missing or invalid credentials"),
                    status=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            try:
                return await fn(request, tenant)
            except BadRequestError as exc:
                return reply(request, error_envelope(400, str(exc)), 400)
            except web.HTTPRequestEntityTooLarge:
                msg = f"request body larger than {MAX_BODY_BYTES} bytes"
                return reply(request, error_envelope(413, msg), 413)
            except Exception:
                # Still the envelope clients parse, without internals (the log has them).
                log.exception("query failed: %s", request.path_qs[:200])
                return reply(request, error_envelope(500, "internal error"), 500)

        return wrapped

    def render(spans: TraceSpans, adjusted: bool) -> TracesJsonWriter:
        """Stream span rows into JSON text, in a worker thread: 20k spans take ~0.5 s of CPU."""
        writer = TracesJsonWriter(spans.stored, adjusted=adjusted)
        for row in spans.rows:
            writer.add(row)
        return writer

    async def send(
        request: web.Request, writer: TracesJsonWriter, order: list[str]
    ) -> web.StreamResponse:
        """Write the envelope chunk by chunk; a client that stops reading is cut off.

        The span-read slot (and the response's memory) is held while writing, so a reader
        stalled for WRITE_TIMEOUT_SECONDS loses its connection instead of pinning the slot.
        ``prettyPrint`` (for people reading the API by hand) builds the whole indented text
        first, so it costs the memory streaming saves.
        """
        chunks: Iterable[bytes] = writer.chunks(order)
        if pretty_print(request.query):
            doc = json.loads(b"".join(chunks))
            chunks = [json.dumps(doc, indent=PRETTY_INDENT).encode()]
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            for chunk in chunks:
                async with asyncio.timeout(write_timeout):
                    await resp.write(chunk)
            await resp.write_eof()
        except (TimeoutError, ConnectionError):
            if request.transport is not None:
                request.transport.close()
        return resp

    async def services(request: web.Request, tenant: str) -> web.StreamResponse:
        return reply(request, envelope(await run(store.services, tenant)))

    async def service_operations(request: web.Request, tenant: str) -> web.StreamResponse:
        service = check_name(request.match_info["service"], "service")
        ops = await run(store.operations, tenant, service, "")
        return reply(request, envelope(sorted({name for name, _kind in ops})))

    async def operations(request: web.Request, tenant: str) -> web.StreamResponse:
        service = required_name(request.query, "service")
        kind = parse_span_kind(request.query)
        ops = await run(store.operations, tenant, service, kind)
        return reply(
            request, envelope([{"name": name, "spanKind": kind.lower()} for name, kind in ops])
        )

    def search_and_render(
        tenant: str, q: TraceQuery, adjusted: bool
    ) -> tuple[TracesJsonWriter, list[str]]:
        spans = store.search(tenant, q, max_spans_per_trace, max_spans_per_response)
        return render(spans, adjusted), spans.order

    def traces_and_render(tenant: str, trace_ids: list[str], adjusted: bool) -> TracesJsonWriter:
        return render(
            store.spans_of(tenant, trace_ids, max_spans_per_trace, max_spans_per_response),
            adjusted,
        )

    async def traces(request: web.Request, tenant: str) -> web.StreamResponse:
        """Search, or (Jaeger) the traces named by ``traceID``, every other parameter ignored.

        Ids that are not found are left out of ``data``, and listed in ``errors`` with code
        404 as Jaeger's query service does, so a compare of one missing trace says why.
        """
        adjusted = not optional_bool(request.query, "raw")
        trace_ids = parse_trace_ids(request.query.getall("traceID", []))
        if trace_ids:
            async with span_reads:
                writer = await run(traces_and_render, tenant, trace_ids, adjusted)
                found = writer.trace_ids()
                missing = [t for t in trace_ids if t not in found]
                writer.errors = [
                    {"code": 404, "msg": "trace not found", "traceID": display_trace_id(t)}
                    for t in missing
                ] or None
                return await send(request, writer, trace_ids)
        q = parse_trace_query(
            request.query, request.query.getall("tags", []), request.query.getall("tag", [])
        )
        async with span_reads:
            writer, order = await run(search_and_render, tenant, q, adjusted)
            return await send(request, writer, order)

    async def trace(request: web.Request, tenant: str) -> web.StreamResponse:
        trace_id = parse_trace_id(request.match_info["trace_id"])
        adjusted = not optional_bool(request.query, "raw")
        async with span_reads:
            writer = await run(traces_and_render, tenant, [trace_id], adjusted)
            if not writer:
                return reply(request, error_envelope(404, "trace not found"), 404)
            return await send(request, writer, [trace_id])

    async def archive(request: web.Request, tenant: str) -> web.StreamResponse:
        """Jaeger's archive: copy the trace to storage without retention.

        Answers as Jaeger does: an empty ``data`` list and an empty ``errors`` list.
        """
        trace_id = parse_trace_id(request.match_info["trace_id"])
        spans = await run(store.archive, tenant, trace_id)
        if not spans:
            return reply(request, error_envelope(404, "trace not found"), 404)
        log.info("trace archived", extra={"fields": {"trace_id": trace_id, "spans": spans}})
        return reply(request, envelope([], []))

    async def transform(request: web.Request, tenant: str) -> web.StreamResponse:
        """OTLP/JSON upload -> Jaeger JSON traces (Jaeger UI's Upload of an OTLP file)."""
        body = await request.read()
        try:
            doc = json.loads(body)
            rows = rows_from_otlp(doc, max_spans_per_response)
        except (ValueError, RecursionError) as exc:  # TransformError, JSON and UTF-8 errors
            raise BadRequestError(f"body is not OTLP/JSON: {str(exc)[:300]}") from exc
        writer = TracesJsonWriter(adjusted=False)
        for row in rows:
            writer.add(row)
        return await send(request, writer, [])

    async def dependencies(request: web.Request, tenant: str) -> web.StreamResponse:
        start_ns, end_ns = parse_dependencies_range(request.query)
        edges = await run(store.dependencies, tenant, start_ns, end_ns)
        return reply(
            request, envelope([{"parent": p, "child": c, "callCount": n} for p, c, n in edges])
        )

    async def red(request: web.Request, tenant: str) -> web.StreamResponse:
        service = required_name(request.query, "service")
        operation = optional_name(request.query, "operation")
        start_ns, end_ns = parse_us_range(request.query)
        requested = optional_int(request.query, "step", 0, MAX_STEP_SECONDS, "whole seconds")
        step = choose_step(start_ns, end_ns, requested)
        overall = await run(
            store.red_timeseries, tenant, service, operation, False, start_ns, end_ns, step
        )
        per_op = await run(
            store.red_timeseries, tenant, service, operation, True, start_ns, end_ns, step
        )
        series = series_from_rows(overall, step) + series_from_rows(per_op, step)
        return reply(
            request,
            {
                "data": {"service": service, "step": step, "series": series},
                "total": len(series),
                "limit": 0,
                "offset": 0,
                "errors": None,
            },
        )

    async def red_summary(request: web.Request, tenant: str) -> web.StreamResponse:
        service = optional_name(request.query, "service")
        start_ns, end_ns = parse_us_range(request.query)
        rows = await run(store.red_summary, tenant, service, start_ns, end_ns)
        return reply(request, envelope(summary_from_rows(rows, (end_ns - start_ns) / 1e9)))

    async def health(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    app = web.Application(middlewares=[api_errors], client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/api/services", handler(services))
    app.router.add_get("/api/services/{service}/operations", handler(service_operations))
    app.router.add_get("/api/operations", handler(operations))
    app.router.add_get("/api/traces", handler(traces))
    app.router.add_get("/api/traces/{trace_id}", handler(trace))
    app.router.add_get("/api/dependencies", handler(dependencies))
    app.router.add_post("/api/archive/{trace_id}", handler(archive))
    app.router.add_post("/api/transform", handler(transform))
    app.router.add_get("/api/red", handler(red))
    app.router.add_get("/api/red/summary", handler(red_summary))
    app.router.add_get("/health", health)
    mount_ui(app, jaeger_ui_dir, jaeger_ui_config)
    add_v3_routes(app, store, tenant_of, executor)
    return app

"""Jaeger-compatible query API + the web UI, served by one aiohttp application.

Paths and JSON shapes follow Jaeger's HTTP API (what Jaeger UI and Grafana's Jaeger data source
call), so existing tooling points at tracehouse unchanged. ClickHouse calls are blocking, so
they run in an executor to keep the event loop responsive; so does turning span rows into JSON.
Every parameter goes through query.params, so a bad one is a 400 Jaeger envelope naming it,
and any other failure is a 500 in the same envelope rather than aiohttp's plain-text page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from aiohttp import web

from query.jaeger_model import TracesJsonWriter, envelope, error_envelope
from query.params import (
    BadRequestError,
    TraceQuery,
    check_name,
    optional_int,
    optional_name,
    parse_dependencies_range,
    parse_span_kind,
    parse_trace_query,
    parse_us_range,
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
log = logging.getLogger("query.api")


def no_auth(_request: web.Request) -> str:
    return ""


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
                return web.json_response(error_envelope(400, str(exc)), status=400)
            except Exception:
                # Still the envelope clients parse, without internals (the log has them).
                log.exception("query failed: %s", request.path_qs[:200])
                return web.json_response(error_envelope(500, "internal error"), status=500)

        return wrapped

    def render(spans: TraceSpans) -> TracesJsonWriter:
        """Stream span rows into JSON text, in a worker thread: 20k spans take ~0.5 s of CPU."""
        writer = TracesJsonWriter(spans.stored)
        for row in spans.rows:
            writer.add(row)
        return writer

    async def send(
        request: web.Request, writer: TracesJsonWriter, order: list[str]
    ) -> web.StreamResponse:
        """Write the envelope chunk by chunk; a client that stops reading is cut off.

        The span-read slot (and the response's memory) is held while writing, so a reader
        stalled for WRITE_TIMEOUT_SECONDS loses its connection instead of pinning the slot.
        """
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            for chunk in writer.chunks(order):
                async with asyncio.timeout(write_timeout):
                    await resp.write(chunk)
            await resp.write_eof()
        except (TimeoutError, ConnectionError):
            if request.transport is not None:
                request.transport.close()
        return resp

    async def services(request: web.Request, tenant: str) -> web.StreamResponse:
        return web.json_response(envelope(await run(store.services, tenant)))

    async def service_operations(request: web.Request, tenant: str) -> web.StreamResponse:
        service = check_name(request.match_info["service"], "service")
        ops = await run(store.operations, tenant, service, "")
        return web.json_response(envelope(sorted({name for name, _kind in ops})))

    async def operations(request: web.Request, tenant: str) -> web.StreamResponse:
        service = required_name(request.query, "service")
        kind = parse_span_kind(request.query)
        ops = await run(store.operations, tenant, service, kind)
        return web.json_response(
            envelope([{"name": name, "spanKind": kind.lower()} for name, kind in ops])
        )

    def search_and_render(tenant: str, q: TraceQuery) -> tuple[TracesJsonWriter, list[str]]:
        spans = store.search(tenant, q, max_spans_per_trace, max_spans_per_response)
        return render(spans), spans.order

    async def traces(request: web.Request, tenant: str) -> web.StreamResponse:
        q = parse_trace_query(
            request.query, request.query.getall("tags", []), request.query.getall("tag", [])
        )
        async with span_reads:
            writer, order = await run(search_and_render, tenant, q)
            return await send(request, writer, order)

    def trace_and_render(tenant: str, trace_id: str) -> TracesJsonWriter:
        return render(
            store.spans_of(tenant, [trace_id], max_spans_per_trace, max_spans_per_response)
        )

    async def trace(request: web.Request, tenant: str) -> web.StreamResponse:
        raw = request.match_info["trace_id"]
        trace_id = raw.lower().rjust(32, "0")
        if len(trace_id) != 32 or any(c not in "0123456789abcdef" for c in trace_id):
            raise BadRequestError(f"invalid trace id {raw[:64]!r}")
        async with span_reads:
            writer = await run(trace_and_render, tenant, trace_id)
            if not writer:
                return web.json_response(error_envelope(404, "trace not found"), status=404)
            return await send(request, writer, [trace_id])

    async def dependencies(request: web.Request, tenant: str) -> web.StreamResponse:
        start_ns, end_ns = parse_dependencies_range(request.query)
        edges = await run(store.dependencies, tenant, start_ns, end_ns)
        return web.json_response(
            envelope([{"parent": p, "child": c, "callCount": n} for p, c, n in edges])
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
        return web.json_response(
            {
                "data": {"service": service, "step": step, "series": series},
                "total": len(series),
                "limit": 0,
                "offset": 0,
                "errors": None,
            }
        )

    async def red_summary(request: web.Request, tenant: str) -> web.StreamResponse:
        service = optional_name(request.query, "service")
        start_ns, end_ns = parse_us_range(request.query)
        rows = await run(store.red_summary, tenant, service, start_ns, end_ns)
        return web.json_response(envelope(summary_from_rows(rows, (end_ns - start_ns) / 1e9)))

    async def health(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/api/services", handler(services))
    app.router.add_get("/api/services/{service}/operations", handler(service_operations))
    app.router.add_get("/api/operations", handler(operations))
    app.router.add_get("/api/traces", handler(traces))
    app.router.add_get("/api/traces/{trace_id}", handler(trace))
    app.router.add_get("/api/dependencies", handler(dependencies))
    app.router.add_get("/api/red", handler(red))
    app.router.add_get("/api/red/summary", handler(red_summary))
    app.router.add_get("/health", health)
    mount_ui(app, jaeger_ui_dir, jaeger_ui_config)
    return app

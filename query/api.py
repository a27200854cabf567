"""Jaeger-compatible query API + the web UI, served by one aiohttp application.

Paths and JSON shapes follow Jaeger's HTTP API (what Jaeger UI and Grafana's Jaeger data source
call), so existing tooling points at tracehouse unchanged. ClickHouse calls are blocking, so
they run in the default executor to keep the event loop responsive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from query.jaeger_model import envelope, error_envelope, traces_json
from query.params import BadRequestError, parse_trace_query
from query.red import choose_step, series_from_rows, summary_from_rows
from query.store import TraceStore

TenantResolver = Callable[[web.Request], str | None]
UI_DIR = Path(str(resources.files("query").joinpath("ui")))


def no_auth(_request: web.Request) -> str:
    return ""


def build_app(store: TraceStore, tenant_of: TenantResolver = no_auth) -> web.Application:
    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

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

        return wrapped

    async def services(request: web.Request, tenant: str) -> web.StreamResponse:
        return web.json_response(envelope(await run(store.services, tenant)))

    async def service_operations(request: web.Request, tenant: str) -> web.StreamResponse:
        ops = await run(store.operations, tenant, request.match_info["service"], "")
        return web.json_response(envelope(sorted({name for name, _kind in ops})))

    async def operations(request: web.Request, tenant: str) -> web.StreamResponse:
        service = request.query.get("service", "")
        if not service:
            raise BadRequestError("parameter 'service' is required")
        kind = request.query.get("spanKind", "")
        ops = await run(store.operations, tenant, service, kind.capitalize() if kind else "")
        return web.json_response(
            envelope([{"name": name, "spanKind": kind.lower()} for name, kind in ops])
        )

    async def traces(request: web.Request, tenant: str) -> web.StreamResponse:
        q = parse_trace_query(
            request.query, request.query.getall("tags", []), request.query.getall("tag", [])
        )
        rows = await run(store.search, tenant, q)
        return web.json_response(envelope(traces_json(rows)))

    async def trace(request: web.Request, tenant: str) -> web.StreamResponse:
        trace_id = request.match_info["trace_id"].lower().rjust(32, "0")
        if len(trace_id) != 32 or any(c not in "0123456789abcdef" for c in trace_id):
            raise BadRequestError(f"invalid trace id {request.match_info['trace_id']!r}")
        rows = await run(store.spans_of, tenant, [trace_id])
        found = traces_json(rows)
        if not found:
            return web.json_response(error_envelope(404, "trace not found"), status=404)
        return web.json_response(envelope(found))

    async def dependencies(request: web.Request, tenant: str) -> web.StreamResponse:
        now_ms = time.time_ns() // 1_000_000
        try:
            end_ms = int(request.query.get("endTs") or now_ms)
            lookback_ms = int(request.query.get("lookback") or 86_400_000)
        except ValueError as exc:
            raise BadRequestError("endTs and lookback are milliseconds") from exc
        edges = await run(
            store.dependencies, tenant, (end_ms - lookback_ms) * 1_000_000, end_ms * 1_000_000
        )
        return web.json_response(
            envelope([{"parent": p, "child": c, "callCount": n} for p, c, n in edges])
        )

    def time_range(
        request: web.Request, default_lookback_us: int = 3_600_000_000
    ) -> tuple[int, int]:
        try:
            end_us = int(request.query.get("end") or time.time_ns() // 1000)
            start_us = int(request.query.get("start") or end_us - default_lookback_us)
        except ValueError as exc:
            raise BadRequestError("start and end are Unix microseconds") from exc
        if start_us >= end_us:
            raise BadRequestError("start must be before end")
        return start_us * 1000, end_us * 1000

    async def red(request: web.Request, tenant: str) -> web.StreamResponse:
        service = request.query.get("service", "")
        if not service:
            raise BadRequestError("parameter 'service' is required")
        start_ns, end_ns = time_range(request)
        try:
            requested = int(request.query.get("step") or 0)
        except ValueError as exc:
            raise BadRequestError("step is whole seconds") from exc
        step = choose_step(start_ns, end_ns, requested)
        operation = request.query.get("operation", "")
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
        start_ns, end_ns = time_range(request)
        rows = await run(
            store.red_summary, tenant, request.query.get("service", ""), start_ns, end_ns
        )
        return web.json_response(envelope(summary_from_rows(rows, (end_ns - start_ns) / 1e9)))

    async def health(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    async def index(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(UI_DIR / "index.html")

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
    app.router.add_get("/", index)
    app.router.add_static("/ui/", UI_DIR)
    return app

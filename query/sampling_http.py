"""HTTP binding of remote sampling: ``GET /sampling?service=`` the way Jaeger serves it.

Served on its own port (Jaeger's 5778, where SDKs look by default: jaeger-client polls
``http://host:5778/sampling``, OTel's jaeger_remote samplers ``<endpoint>/sampling``) at
``/sampling`` and ``/`` (Jaeger's handler answers any path), and on the query port at
``/api/sampling`` (Jaeger's query service path). The body is Jaeger's JSON: api_v2 field
names, ``strategyType`` always present, absent sub-messages left out. A bad request is a
text/plain 400 as Jaeger's is; counters per outcome are on this port's ``/metrics``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from core.tenancy import token_from_headers
from query.sampling_service import SamplingService, Unauthenticated, check_service

log = logging.getLogger("query.sampling")


def sampling_handler(
    service: SamplingService, binding: str
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            name = check_service(request.query.getall("service", []))
        except ValueError as exc:
            service.counters[binding, "bad_request"] += 1
            return web.Response(status=400, text=str(exc))
        try:
            tenant = service.tenant(token_from_headers(request.headers.get))
        except Unauthenticated as exc:
            service.counters[binding, "unauthenticated"] += 1
            return web.Response(status=401, text=str(exc), headers={"WWW-Authenticate": "Bearer"})
        try:
            body = json.dumps(service.strategy(tenant, name).to_json(), separators=(",", ":"))
        except Exception:
            log.exception("sampling strategy for %r failed", name[:200])
            service.counters[binding, "error"] += 1
            return web.Response(status=500, text="internal error")
        service.counters[binding, "ok"] += 1
        return web.Response(text=body, content_type="application/json")

    return handle


def add_sampling_routes(app: web.Application, service: SamplingService) -> None:
    """``/api/sampling`` on an existing application (the query port)."""
    app.router.add_get("/api/sampling", sampling_handler(service, "query_http"))


def metrics_text(service: SamplingService) -> str:
    lines = [
        "# HELP tracehouse_sampling_requests_total Strategy requests by binding and outcome",
        "# TYPE tracehouse_sampling_requests_total counter",
    ]
    for (binding, outcome), n in sorted(service.counters.items()):
        lines.append(
            f'tracehouse_sampling_requests_total{{binding="{binding}",outcome="{outcome}"}} {n}'
        )
    lines += [
        "# TYPE tracehouse_sampling_file_reloads_total counter",
        f"tracehouse_sampling_file_reloads_total {service.file.reloads}",
        "# TYPE tracehouse_sampling_file_reload_errors_total counter",
        f"tracehouse_sampling_file_reload_errors_total {service.file.reload_errors}",
    ]
    return "\n".join(lines) + "\n"


def build_sampling_app(service: SamplingService) -> web.Application:
    """The dedicated port: ``/sampling``, ``/``, ``/health`` and ``/metrics``."""
    handle = sampling_handler(service, "http")

    async def health(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    async def metrics(_request: web.Request) -> web.StreamResponse:
        return web.Response(text=metrics_text(service), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/sampling", handle)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", handle)
    return app

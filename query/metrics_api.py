"""Jaeger's metrics API (the Monitor tab, "Service Performance Monitoring") from the RED table.

``GET /api/metrics/{latencies,calls,errors}`` and ``/api/metrics/minstep`` with Jaeger's
parameters (service repeatable and required, endTs/lookback/step/ratePer in milliseconds,
spanKind repeatable with default server, quantile for latencies, groupByOperation) and its
response: the ``jaeger.api_v2.metrics.MetricFamily`` message in the proto3 JSON mapping
(metric ``type`` as the enum name "GAUGE", timestamps RFC 3339), with Jaeger's metric names,
help texts and labels (``service_name``, plus ``operation`` when grouped). Errors use the v1
envelope, as Jaeger's handler does. query/spm.py holds the math.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from query.params import MAX_NAME_LENGTH, MAX_TIME_MS, BadRequestError, parse_int
from query.spm import (
    Slot,
    WindowTotals,
    error_fraction,
    latency_ms,
    per_second,
    window_totals,
)
from query.store import sql
from query.v3_params import format_rfc3339_ns, parse_bool

# Jaeger's defaults (its query service's default_params.go).
DEFAULT_LOOKBACK_MS = 3_600_000
DEFAULT_STEP_MS = 5_000
DEFAULT_RATE_PER_MS = 600_000
DEFAULT_SPAN_KINDS = ("server",)
# Prometheus refuses range queries of more points per series; so does this API (a 400).
MAX_POINTS = 11_000
MAX_SERVICES = 100
# Points computed per request over all series (series x points): a grouped query over
# thousands of operations at 11,000 points each would hold a thread for minutes.
MAX_SERIES_POINTS = 2_000_000
# A RED window is seconds long; rows are searched this far before the first window.
SCAN_SLACK_NS = 3_600_000_000_000
# minstep when no RED row was stored in the last day: the default streams window.
FALLBACK_MIN_STEP_MS = 10_000
log = logging.getLogger("query.metrics_api")
SPAN_KINDS = {
    "unspecified": "Unspecified",
    "internal": "Internal",
    "server": "Server",
    "client": "Client",
    "producer": "Producer",
    "consumer": "Consumer",
}


@dataclass(frozen=True)
class MetricsQuery:
    services: tuple[str, ...]
    span_kinds: tuple[str, ...]  # stored spelling ("Server")
    group_by_operation: bool
    end_ms: int
    lookback_ms: int
    step_ms: int
    rate_per_ms: int

    @property
    def points(self) -> int:
        return self.lookback_ms // self.step_ms + 1

    @property
    def start_ns(self) -> int:
        return (self.end_ms - self.lookback_ms) * 1_000_000

    @property
    def slot_ns(self) -> int:
        return math.gcd(self.step_ms, self.rate_per_ms) * 1_000_000

    @property
    def base_ns(self) -> int:
        return self.start_ns - self.rate_per_ms * 1_000_000


def _ms(params: Mapping[str, str], name: str, default: int, lo: int) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    return parse_int(raw, name, lo, MAX_TIME_MS, "milliseconds")


def parse_metrics_query(params: MultiMapping[str], now_ms: int | None = None) -> MetricsQuery:
    """The parameters shared by the three metric endpoints, validated and bounded."""
    services = tuple(params.getall("service", []))
    if not services or not all(services):
        raise BadRequestError(
            "unable to parse param 'service': please provide at least one service name"
        )
    if len(services) > MAX_SERVICES:
        raise BadRequestError(f"at most {MAX_SERVICES} services can be queried at once")
    if any(len(s) > MAX_NAME_LENGTH for s in services):
        raise BadRequestError(f"parameter 'service' is longer than {MAX_NAME_LENGTH} characters")
    kinds_raw = params.getall("spanKind", []) or list(DEFAULT_SPAN_KINDS)
    kinds = []
    for raw in kinds_raw:
        stored = SPAN_KINDS.get(raw)
        if stored is None:
            raise BadRequestError(
                f"unable to parse param 'spanKind': unsupported span kind: {raw[:40]!r}"
            )
        kinds.append(stored)
    group_raw = params.get("groupByOperation", "")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    q = MetricsQuery(
        services=services,
        span_kinds=tuple(dict.fromkeys(kinds)),
        group_by_operation=parse_bool(group_raw, "groupByOperation") if group_raw else False,
        end_ms=_ms(params, "endTs", min(now, MAX_TIME_MS), 0),
        lookback_ms=_ms(params, "lookback", DEFAULT_LOOKBACK_MS, 0),
        step_ms=_ms(params, "step", DEFAULT_STEP_MS, 1),
        rate_per_ms=_ms(params, "ratePer", DEFAULT_RATE_PER_MS, 1),
    )
    if q.lookback_ms > q.end_ms:
        raise BadRequestError("parameter 'lookback' reaches before 1970 (it exceeds 'endTs')")
    if q.points > MAX_POINTS:
        raise BadRequestError(
            f"parameter 'step' is too small: lookback/step gives {q.points} points, "
            f"at most {MAX_POINTS} are allowed"
        )
    return q


def parse_quantile(params: Mapping[str, str]) -> float:
    raw = params.get("quantile", "")
    try:
        value = float(raw) if len(raw) <= 32 else math.nan
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise BadRequestError(
            f"unable to parse param 'quantile': must be a number in (0, 1], got {raw[:40]!r}"
        )
    return value


SeriesKey = tuple[str, str]  # (service, operation or "")


def slots_by_series(
    rows: Sequence[Sequence[Any]],
) -> dict[SeriesKey, dict[tuple[float, ...], list[Slot]]]:
    """spm_slots.sql rows -> series -> bucket layout -> slots."""
    out: dict[SeriesKey, dict[tuple[float, ...], list[Slot]]] = {}
    for service, op, bounds, slot, calls, errors, max_ns, counts in rows:
        layouts = out.setdefault((str(service), str(op)), {})
        layouts.setdefault(tuple(float(b) for b in bounds), []).append(
            Slot(int(slot), int(calls), int(errors), int(max_ns), tuple(int(c) for c in counts))
        )
    return out


def _gauge(t_ns: int, value: float) -> dict[str, Any]:
    return {"gaugeValue": {"doubleValue": value}, "timestamp": format_rfc3339_ns(t_ns)}


def metric_family(
    kind: str,
    q: MetricsQuery,
    series: Mapping[SeriesKey, Mapping[tuple[float, ...], Sequence[Slot]]],
    quantile: float = 0.0,
) -> dict[str, Any]:
    """The MetricFamily JSON of one metric kind ("latencies", "calls" or "errors")."""
    name, help_text = {
        "latencies": (
            "service_latencies",
            f"{quantile:.2f}th quantile latency, grouped by service",
        ),
        "calls": ("service_call_rate", "calls/sec, grouped by service"),
        "errors": (
            "service_error_rate",
            "error rate, computed as a fraction of errors/sec over calls/sec, grouped by service",
        ),
    }[kind]
    if q.group_by_operation:
        name = name.replace("service", "service_operation", 1)
        help_text += " & operation"
    if len(series) * q.points > MAX_SERIES_POINTS:
        raise BadRequestError(
            f"{len(series)} series x {q.points} points exceeds {MAX_SERIES_POINTS:,} points; "
            "use a larger step, a shorter lookback or fewer services"
        )
    slot = q.slot_ns
    s, r = q.step_ms * 1_000_000 // slot, q.rate_per_ms * 1_000_000 // slot
    metrics = []
    for (service, op), layouts in sorted(series.items()):
        totals = window_totals(dict(layouts), s, r, q.points)
        points = []
        for k, window in enumerate(totals):
            value = _value(kind, window, q, quantile)
            if value is not None:
                points.append(_gauge(q.start_ns + k * q.step_ms * 1_000_000, value))
        if not points:
            continue
        labels = [{"name": "service_name", "value": service}]
        if q.group_by_operation:
            labels.append({"name": "operation", "value": op})
        metrics.append({"labels": labels, "metricPoints": points})
    return {"name": name, "type": "GAUGE", "help": help_text, "metrics": metrics}


def _value(kind: str, window: WindowTotals, q: MetricsQuery, quantile: float) -> float | None:
    if kind == "calls":
        return per_second(window.calls, q.rate_per_ms)
    if kind == "errors":
        return error_fraction(window.errors, window.calls)
    return latency_ms(window, quantile)


class MetricsReader:
    def __init__(self, client: Any) -> None:
        self._client = client

    def slots(self, tenant: str, q: MetricsQuery) -> list[Any]:
        params = {
            "tenant": tenant,
            "services": list(q.services),
            "kinds": list(q.span_kinds),
            "by_operation": int(q.group_by_operation),
            "base_ns": q.base_ns,
            "slot_ns": q.slot_ns,
            "scan_from_ns": max(0, q.base_ns - SCAN_SLACK_NS),
            "end_ns": q.end_ms * 1_000_000,
        }
        return list(self._client.query(sql("spm_slots"), parameters=params).result_rows)

    def family(self, tenant: str, kind: str, q: MetricsQuery, quantile: float) -> dict[str, Any]:
        return metric_family(kind, q, slots_by_series(self.slots(tenant, q)), quantile)

    def min_step_ms(self, tenant: str) -> int:
        rows = self._client.query(sql("spm_min_step"), parameters={"tenant": tenant}).result_rows
        value = int(rows[0][0]) if rows and rows[0][0] else 0
        return value or FALLBACK_MIN_STEP_MS


def _envelope_error(status: int, msg: str) -> web.Response:
    body = {
        "data": None,
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": [{"code": status, "msg": msg}],
    }
    return web.json_response(body, status=status)


def add_metrics_routes(
    app: web.Application,
    client: Any,
    tenant_of: Callable[[web.Request], str | None],
    executor: Executor | None = None,
) -> None:
    reader = MetricsReader(client)

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    def handler(
        fn: Callable[[web.Request, str], Awaitable[web.StreamResponse]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            tenant = tenant_of(request)
            if tenant is None:
                resp = _envelope_error(401, "missing or invalid credentials")
                resp.headers["WWW-Authenticate"] = "Bearer"
                return resp
            try:
                return await fn(request, tenant)
            except BadRequestError as exc:
                return _envelope_error(400, str(exc))
            except Exception:
                log.exception("metrics query failed: %s", request.path_qs[:200])
                return _envelope_error(500, "internal error")

        return wrapped

    def metric(kind: str) -> Callable[[web.Request, str], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request, tenant: str) -> web.StreamResponse:
            quantile = parse_quantile(request.query) if kind == "latencies" else 0.0
            q = parse_metrics_query(request.query)
            return web.json_response(await run(reader.family, tenant, kind, q, quantile))

        return serve

    async def min_step(request: web.Request, tenant: str) -> web.StreamResponse:
        step = await run(reader.min_step_ms, tenant)
        return web.json_response(
            {"data": step, "total": 0, "limit": 0, "offset": 0, "errors": None}
        )

    for kind in ("latencies", "calls", "errors"):
        app.router.add_get(f"/api/metrics/{kind}", handler(metric(kind)))
    app.router.add_get("/api/metrics/minstep", handler(min_step))

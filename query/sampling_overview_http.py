"""``GET /api/sampling/strategies``: the sampling overview on the query port, for the web UI.

A thin adapter: the tenant comes from the same resolver as every other query endpoint (a
missing or unknown token is the 401 envelope; unlike the SDKs' ``/api/sampling``, a person
reading the overview can send a token), each service's strategy from the
:class:`~query.sampling_service.SamplingService` the SDK bindings use, the history and the
throughput from two bounded ClickHouse reads, and the document from the pure
query/sampling_overview.py. The path sits below ``/api/sampling`` without touching it:
Jaeger's ``/api/sampling?service=`` keeps answering SDKs exactly as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from aiohttp import web

from query.api import reply
from query.jaeger_model import error_envelope
from query.params import BadRequestError
from query.sampling_overview import (
    MAX_ROWS,
    HistoryRow,
    OverviewQuery,
    ThroughputRow,
    build_overview,
    parse_overview_query,
    service_names,
)
from query.sampling_service import SamplingService

PATH = "/api/sampling/strategies"
TenantResolver = Callable[[web.Request], str | None]
log = logging.getLogger("query.sampling")

HISTORY_SQL = """
SELECT ServiceName, SpanName, toUnixTimestamp(IntervalEnd) AS e, Probability,
       PreviousProbability, SampledPerSecond, TargetPerSecond
FROM sampling_probabilities FINAL
WHERE TenantId = {tenant:String}
  AND ({service:String} = '' OR ServiceName = {service:String})
  AND IntervalEnd > toDateTime({start:Int64}) AND IntervalEnd <= toDateTime({end:Int64})
ORDER BY ServiceName, SpanName, e
LIMIT {limit:UInt64}
"""
# RED calls per calculation interval, keyed by the interval's end like the history rows, so
# the chart's two series line up: the spans the pipeline received from the SDKs.
THROUGHPUT_SQL = """
SELECT ServiceName, SpanName,
       intDiv(toUnixTimestamp(TimeUnix), {interval:Int64}) * {interval:Int64}
         + {interval:Int64} AS e,
       sum(Calls) AS calls
FROM red_metrics
WHERE TenantId = {tenant:String}
  AND ({service:String} = '' OR ServiceName = {service:String})
  AND TimeUnix >= toDateTime64({start:Int64}, 9) AND TimeUnix < toDateTime64({end:Int64}, 9)
  AND NOT Overflow
GROUP BY ServiceName, SpanName, e
ORDER BY ServiceName, SpanName, e
LIMIT {limit:UInt64}
"""


class OverviewReader:
    """The two reads; ``client`` is a session-less ClickHouse client (concurrent-safe)."""

    def __init__(self, client: Any, interval_seconds: int) -> None:
        self._client = client
        self.interval = interval_seconds

    def read(
        self, tenant: str, service: str, start: int, end: int
    ) -> tuple[list[HistoryRow], list[ThroughputRow], bool]:
        params = {
            "tenant": tenant,
            "service": service,
            "start": start,
            "end": end,
            "interval": self.interval,
            "limit": MAX_ROWS + 1,
        }
        history: list[HistoryRow] = [
            (str(s), str(o), int(e), float(p), float(prev), float(rate), float(target))
            for s, o, e, p, prev, rate, target in self._client.query(
                HISTORY_SQL, parameters=params
            ).result_rows
        ]
        # Throughput from the start of the first interval the lookback touches.
        aligned = dict(params, start=start - start % self.interval)
        throughput: list[ThroughputRow] = [
            (str(s), str(o), int(e), int(calls))
            for s, o, e, calls in self._client.query(THROUGHPUT_SQL, parameters=aligned).result_rows
        ]
        truncated = len(history) > MAX_ROWS or len(throughput) > MAX_ROWS
        return history[:MAX_ROWS], throughput[:MAX_ROWS], truncated


def overview_handler(
    sampling: SamplingService,
    reader: OverviewReader,
    tenant_of: TenantResolver,
    executor: Executor | None = None,
    adaptive: bool = False,
    clock: Callable[[], float] = time.time,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    def answer(tenant: str, q: OverviewQuery) -> dict[str, Any]:
        end = int(clock())
        start = max(0, end - q.lookback_seconds)
        history, throughput, truncated = reader.read(tenant, q.service, start, end)
        names = (
            [q.service]
            if q.service
            else service_names(sampling.named_services(tenant), history, throughput)
        )
        data = build_overview(
            start=start,
            end=end,
            interval_seconds=reader.interval,
            adaptive=adaptive,
            default=sampling.file.current.book(tenant).default,
            resolved={n: sampling.resolve(tenant, n) for n in names},
            history=history,
            throughput=throughput,
            truncated=truncated,
        )
        return {"data": data, "total": len(names), "limit": 0, "offset": 0, "errors": None}

    async def handle(request: web.Request) -> web.StreamResponse:
        tenant = tenant_of(request)
        if tenant is None:
            return web.json_response(
                error_envelope(401, "missing or invalid credentials"),
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            q = parse_overview_query(
                request.query.getall("service", []),
                request.query.getall("lookback", []),
                reader.interval,
            )
        except BadRequestError as exc:
            return reply(request, error_envelope(400, str(exc)), 400)
        try:
            doc = await asyncio.get_running_loop().run_in_executor(executor, answer, tenant, q)
        except Exception:
            log.exception("sampling overview failed: %s", request.path_qs[:200])
            return reply(request, error_envelope(500, "internal error"), 500)
        return reply(request, doc)

    return handle


def add_overview_routes(
    app: web.Application,
    sampling: SamplingService,
    reader: OverviewReader,
    tenant_of: TenantResolver,
    executor: Executor | None = None,
    adaptive: bool = False,
) -> None:
    """Register ``GET /api/sampling/strategies``; every answer is the v1 envelope."""
    app.router.add_get(PATH, overview_handler(sampling, reader, tenant_of, executor, adaptive))

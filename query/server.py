"""Entry point of the query service (`tracehouse query`).

Two bounds keep one slow or hostile client from holding the process:

- Read timeout: aiohttp arms its keep-alive timer when a connection opens and re-arms it after
  each response, and closes the connection if no complete request has arrived when it fires;
  with ``keepalive_timeout=READ_TIMEOUT_SECONDS`` a client that sends half a request (or
  trickles headers) is dropped after that long instead of the default hour.
- Shutdown grace: on SIGTERM/SIGINT the listener closes at once, in-flight requests get
  ``SHUTDOWN_GRACE_SECONDS`` to finish, and then the process exits even if a ClickHouse call
  is still running in a worker thread (the thread would otherwise keep the interpreter alive
  until the client's 60 s receive timeout).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from aiohttp import web

from core import logs
from core.settings import Settings
from query.adaptive_sampling import AdaptiveSampling, knobs_from
from query.api import build_app
from query.api_v3 import V3Reads
from query.auth import resolver, tenant_config
from query.grpc_query import start_grpc_server
from query.sampling_file import StrategiesFile
from query.sampling_grpc import start_sampling_grpc
from query.sampling_http import add_sampling_routes, build_sampling_app
from query.sampling_overview_http import OverviewReader, add_overview_routes
from query.sampling_service import SamplingService
from query.store import TraceStore, connect_for_queries
from query.v3_store import V3Store

READ_TIMEOUT_SECONDS = 10.0
SHUTDOWN_GRACE_SECONDS = 5.0
# Longest request line the API reads: 1 MiB, the whole header budget of Jaeger's Go server
# (net/http's default MaxHeaderBytes). aiohttp's own 8,190 bytes refused, with a text/plain
# 400 before any handler saw it, requests the API accepts: a multi-id lookup of more than ~190
# of its 1,500 trace ids, or a tags JSON near its 4,096-character limit once percent-encoded.
MAX_REQUEST_LINE_BYTES = 1 << 20
# Each header line, and how many: aiohttp reads them all before any handler or auth runs, so
# these bound what one unauthenticated request can make the server hold (64 x 64 KiB = 4 MiB;
# aiohttp's defaults, 128 x 8 KiB, refused the long Referer a browser sends from a long
# search URL).
MAX_HEADER_BYTES = 64 << 10
MAX_HEADERS = 64
# Threads running ClickHouse calls (and JSON rendering of span reads).
QUERY_THREADS = 8


async def serve(
    settings: Settings,
    *,
    read_timeout: float = READ_TIMEOUT_SECONDS,
    grace: float = SHUTDOWN_GRACE_SECONDS,
) -> None:
    """Serve until SIGTERM/SIGINT, then stop within ``grace`` seconds."""
    log = logs.setup("query")
    store = TraceStore(connect_for_queries(settings))
    auth = tenant_config(settings)
    executor = ThreadPoolExecutor(QUERY_THREADS, thread_name_prefix="query")
    adaptive = (
        AdaptiveSampling(
            connect_for_queries(settings),
            knobs_from(settings),
            settings.sampling_calculation_delay_seconds,
        )
        if settings.sampling_adaptive
        else None
    )
    sampling = SamplingService(
        StrategiesFile(settings.sampling_strategies_file, settings.sampling_default_probability),
        auth,
        adaptive,
    )
    app = build_app(
        store,
        resolver(auth),
        executor=executor,
        jaeger_ui_dir=settings.query_ui_dir,
        jaeger_ui_config=settings.query_ui_config,
    )
    add_sampling_routes(app, sampling)
    add_overview_routes(
        app,
        sampling,
        OverviewReader(
            connect_for_queries(settings), settings.sampling_calculation_interval_seconds
        ),
        resolver(auth),
        executor,
        settings.sampling_adaptive,
    )
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=read_timeout,
        # aiohttp waits up to this long twice per connection (for the handler to finish, then
        # for its cancelled task), so half the grace goes to in-flight requests; the deadline
        # below bounds the whole shutdown.
        shutdown_timeout=grace / 4,
        max_line_size=MAX_REQUEST_LINE_BYTES,
        max_field_size=MAX_HEADER_BYTES,
        max_headers=MAX_HEADERS,
    )
    await runner.setup()
    await web.TCPSite(runner, settings.query_host, settings.query_http_port).start()
    grpc_server = (
        start_grpc_server(
            V3Reads(V3Store(store._client)), auth, settings.query_host, settings.query_grpc_port
        )
        if settings.query_grpc_port
        else None
    )
    sampling_runner, sampling_grpc, sampling_tasks = await _start_sampling(settings, sampling)
    log.info(
        "query listening",
        extra={"fields": {"url": f"http://{settings.query_host}:{settings.query_http_port}/"}},
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    deadline = time.monotonic() + grace
    log.info("query stopping", extra={"fields": {"grace_seconds": grace}})
    for task in sampling_tasks:
        task.cancel()
    if sampling_grpc is not None:
        sampling_grpc.stop(grace * 0.4)
    if sampling_runner is not None:
        await sampling_runner.cleanup()
    if grpc_server is not None:
        grpc_server.stop(grace * 0.4)  # returns at once; in-flight calls get part of the grace
    try:
        await asyncio.wait_for(runner.cleanup(), timeout=grace * 0.8)
    except TimeoutError:
        log.warning("query: connections still open after the grace period; closing them")
    executor.shutdown(wait=False, cancel_futures=True)
    busy = [t for t in _executor_threads(executor) if t.is_alive()]
    for thread in busy:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in busy):
        # A ClickHouse call is still running; its thread would hold the interpreter's exit.
        log.warning("query: abandoning in-flight ClickHouse calls at the end of the grace period")
        logging.shutdown()
        os._exit(0)


async def _start_sampling(
    settings: Settings, sampling: SamplingService
) -> tuple[web.AppRunner | None, grpc.Server | None, list[asyncio.Task[None]]]:
    """The remote-sampling listeners (5778 HTTP, 5779 gRPC) and the strategies-file poll."""
    runner = None
    if settings.sampling_http_port:
        runner = web.AppRunner(
            build_sampling_app(sampling), access_log=None, keepalive_timeout=READ_TIMEOUT_SECONDS
        )
        await runner.setup()
        await web.TCPSite(runner, settings.query_host, settings.sampling_http_port).start()
    server = (
        start_sampling_grpc(sampling, settings.query_host, settings.sampling_grpc_port)
        if settings.sampling_grpc_port
        else None
    )

    async def poll_file() -> None:
        while True:
            await asyncio.sleep(settings.sampling_reload_seconds)
            await asyncio.to_thread(sampling.file.poll)

    tasks = [asyncio.create_task(poll_file())]
    if isinstance(sampling.adaptive, AdaptiveSampling):
        tasks.append(asyncio.create_task(sampling.adaptive.run()))
    return runner, server, tasks


def _executor_threads(executor: ThreadPoolExecutor) -> list[threading.Thread]:
    # ThreadPoolExecutor keeps its workers in a private set; there is no public accessor.
    return list(getattr(executor, "_threads", ()))


def main(settings: Settings | None = None) -> None:
    asyncio.run(serve(settings or Settings.from_env()))

"""Entry point of the query service (`tracehouse query`)."""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

from query.api import build_app
from query.auth import resolver, tenant_config
from query.store import TraceStore, connect_for_queries
from tracehouse import logs
from tracehouse.settings import Settings


async def serve(settings: Settings) -> None:
    log = logs.setup("query")
    store = TraceStore(connect_for_queries(settings))
    auth = tenant_config(settings)
    runner = web.AppRunner(build_app(store, resolver(auth)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.query_host, settings.query_http_port).start()
    log.info(
        "query listening",
        extra={"fields": {"url": f"http://{settings.query_host}:{settings.query_http_port}/"}},
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(settings: Settings | None = None) -> None:
    asyncio.run(serve(settings or Settings.from_env()))

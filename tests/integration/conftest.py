"""Fixtures shared by integration tests of the read side."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.stack import LocalStack
from sinks.batching import PartitionBatch
from sinks.clickhouse_store import BatchStore
from tracehouse.demo_traces import make_request
from tracehouse.span_tables import otel_traces_table, span_facts

NOW_NS = time.time_ns()  # spans end "now": the catalogue endpoints look back 7 days


@pytest.fixture
def query_api(services: LocalStack, pipeline_settings: Settings) -> Iterator[tuple[str, list]]:
    data = trace_pb2.TracesData.FromString(
        make_request(traces=40, seed=11, now_ns=NOW_NS).SerializeToString()
    )
    records = span_facts(data)
    store = BatchStore(
        connect(pipeline_settings.clickhouse_url, pipeline_settings.clickhouse_database), "test"
    )
    batch = PartitionBatch("t", 0, 0)
    batch.add(0, records, len(records))
    store.insert("otel_traces", otel_traces_table(data), batch)
    stack = LocalStack(pipeline_settings, services.run_dir / "query", say=lambda _m: None)
    try:
        stack.start_component(
            "query", f"http://127.0.0.1:{pipeline_settings.query_http_port}/health"
        )
        yield f"http://127.0.0.1:{pipeline_settings.query_http_port}", records
    finally:
        stack.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium and chromium-driver")
        pytest.skip("chromium/chromedriver not installed (CI installs them)")
    options = _webdriver().ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="th-chromium-")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    service = _webdriver().ChromeService(executable_path=driver)
    drv = _webdriver().Chrome(options=options, service=service)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _webdriver() -> Any:
    from selenium import webdriver

    return webdriver


@pytest.fixture
def main_thread_event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A current asyncio loop on the main thread for the duration of one test.

    The Python ``jaeger-client`` (tornado) creates futures on the calling thread in
    ``tracer.close()``, which needs a current loop there; an earlier test of the session that
    ran its own loop (``asyncio.run`` and the like) leaves none, and the client then fails
    with "There is no current event loop" (seen in CI, depending on test order)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()

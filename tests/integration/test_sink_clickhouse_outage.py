"""ClickHouse down for 20 s while data keeps arriving: the sink pauses, retries, loses nothing.

The session's ClickHouse is shared, so this test runs its own server on a data directory it
keeps, stops it (the process exits, like a crashed node) and restarts it on the same ports.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from core.clickhouse import connect
from deploy.local.clickhouse_server import start_clickhouse
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from tests.conftest import isolated_settings
from tests.integration.helpers import wait_until
from tests.integration.sink_data import Expected, metric, produce_round, start_sink, stored, want

OUTAGE_SECONDS = 20


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_clickhouse_outage_of_20s_loses_nothing(services: LocalStack, tmp_path: Path) -> None:
    http, tcp = free_port(), free_port()
    data_dir = tmp_path / "clickhouse"
    log = open(tmp_path / "clickhouse.log", "ab")  # noqa: SIM115 - closed in finally
    ch = start_clickhouse(data_dir, http, tcp, log, max_memory=1024**3)
    settings = isolated_settings(services).with_(
        clickhouse_url=f"http://127.0.0.1:{http}", sink_batch_rows=150
    )
    stack = LocalStack(settings, tmp_path / "run", say=lambda _m: None)
    expected = Expected()
    try:
        stack.prepare()
        client = connect(settings.clickhouse_url, settings.clickhouse_database)
        port = free_port()
        start_sink(stack, port)
        produce_round(settings, 0, expected, settings.partitions)
        wait_until(lambda: stored(client), lambda s: s == want(expected), timeout=30)

        _stop(ch)
        produce_round(settings, 1, expected, settings.partitions)
        wait_until(lambda: metric(port, "tracehouse_sink_paused"), lambda v: v == 1, timeout=15)
        time.sleep(OUTAGE_SECONDS)
        assert stack.dead() == [], "the sink must survive the outage"
        ch = start_clickhouse(data_dir, http, tcp, log, max_memory=1024**3)
        produce_round(settings, 2, expected, settings.partitions)

        client = connect(settings.clickhouse_url, settings.clickhouse_database)
        wait_until(lambda: stored(client), lambda s: s == want(expected), timeout=40)
        time.sleep(1.5)
        assert stored(client) == want(expected)
        assert metric(port, "tracehouse_sink_paused") == 0
        assert metric(port, "tracehouse_sink_batches_total") > 0
    finally:
        stack.stop()
        _stop(ch)
        log.close()

"""Exactly-once storage under a worker crash between insert and commit, and a rebalance.

A real sink process with a crashing store (tests/integration/crashing_sink.py) SIGKILLs itself
right after a ClickHouse insert and before its offsets are committed: the batch is in storage
but will be consumed again. The replacement must rebuild the same batch from its recorded
intent so the insert is deduplicated, in the base tables and in the materialized-view rollups.
"""

from __future__ import annotations

import signal

import pytest

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from tests.integration.crashing_sink import start_crashing_sink
from tests.integration.helpers import wait_until
from tests.integration.sink_data import (
    Expected,
    kill,
    metric,
    produce_round,
    start_sink,
    stored,
    want,
)


def _stack(services: LocalStack, settings: Settings) -> LocalStack:
    return LocalStack(
        settings, services.run_dir / settings.clickhouse_database, say=lambda _m: None
    )


def _settle(client: object, expected: Expected) -> None:
    """Wait for the exact figures, then check they stay exact (a late duplicate would show)."""
    wait_until(lambda: stored(client), lambda s: s == want(expected), timeout=40)
    import time

    time.sleep(1.5)
    assert stored(client) == want(expected)


@pytest.mark.slow
def test_sigkill_between_insert_and_commit_stores_each_row_once(
    services: LocalStack, pipeline_settings: Settings
) -> None:
    settings = pipeline_settings.with_(sink_batch_rows=120)
    stack = _stack(services, settings)
    client = connect(settings.clickhouse_url, settings.clickhouse_database)
    expected = Expected()
    produce_round(settings, 0, expected, settings.partitions)
    try:
        # 1st crash: right after the first insert into the raw RED table (feeds the rollup MV).
        first = start_crashing_sink(stack, free_port(), 1, "red_metrics")
        assert first.proc.wait(40) == -signal.SIGKILL
        produce_round(settings, 1, expected, settings.partitions)
        # 2nd crash: after the third span insert, with new data queued behind it.
        second = start_crashing_sink(stack, free_port(), 3, "otel_traces")
        assert second.proc.wait(40) == -signal.SIGKILL
        port = free_port()
        start_sink(stack, port)
        _settle(client, expected)
        # The survivor really replayed intents of the killed workers (the dedupe path ran).
        assert metric(port, "tracehouse_sink_replayed_batches_total") >= 1
    finally:
        stack.stop()


def test_workers_sharing_partitions_survive_rebalance_and_kill(
    services: LocalStack, pipeline_settings: Settings
) -> None:
    settings = pipeline_settings.with_(sink_batch_rows=200)
    stack = _stack(services, settings)
    client = connect(settings.clickhouse_url, settings.clickhouse_database)
    expected = Expected()
    try:
        a = start_sink(stack, free_port())
        produce_round(settings, 0, expected, settings.partitions)
        b_port = free_port()
        start_sink(stack, b_port)  # joins the group: partitions move between a and b
        produce_round(settings, 1, expected, settings.partitions)
        wait_until(lambda: stored(client)["spans"], lambda n: n > 0, timeout=30)
        kill(a)  # a's partitions (and any half-done batch) go to b
        produce_round(settings, 2, expected, settings.partitions)
        _settle(client, expected)
        assert metric(b_port, "tracehouse_sink_batches_total") > 0
    finally:
        stack.stop()


@pytest.mark.slow
def test_concurrent_partition_stores_are_exact_even_when_killed_mid_round(
    services: LocalStack, pipeline_settings: Settings
) -> None:
    """Large row limits and a 1 s timer make every partition's batch due in the same round,
    so intents and inserts run on the insert threads; a SIGKILL after the round's second
    insert (the others done or in flight, nothing committed) must still end exact."""
    settings = pipeline_settings.with_(
        sink_batch_rows=1_000_000, sink_batch_seconds=1.0, sink_insert_threads=4
    )
    stack = _stack(services, settings)
    client = connect(settings.clickhouse_url, settings.clickhouse_database)
    expected = Expected()
    produce_round(settings, 0, expected, settings.partitions)
    try:
        crashed = start_crashing_sink(stack, free_port(), 2, "otel_traces")
        assert crashed.proc.wait(40) == -signal.SIGKILL
        produce_round(settings, 1, expected, settings.partitions)
        port = free_port()
        start_sink(stack, port)
        _settle(client, expected)
        assert metric(port, "tracehouse_sink_concurrent_batches_total") >= 2
    finally:
        stack.stop()

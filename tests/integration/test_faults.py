"""Fault injection under load through the whole pipeline (ingest -> streams -> sink ->
ClickHouse), each on a private broker and ClickHouse so they can be killed.

Every test drives an SDK-like client (retries until acknowledged; only 2xx spans count) and
ends with the same checks (``check_consistent``): every acknowledged span is stored, no
(TraceId, SpanId) is stored twice, and the accounting identity
``received = stored + sampled_out + rejected`` over ``pipeline_counters`` balances, plus
ingest's own ``received = accepted + rejected`` from its /metrics.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clickhouse import connect
from core.topics import ensure_topics
from deploy.local.stack import LocalStack
from tests.integration.fault_support import (
    HEALTH,
    TcpProxy,
    check_consistent,
    child,
    kill9,
    restart_broker,
    restart_clickhouse,
    restart_component,
    running_clients,
    running_load,
    sink_retries,
    start_stack,
    stored_keys,
    wait_stored,
)

pytestmark = pytest.mark.slow


def launch(stack: LocalStack, sink_env: dict[str, str] | None = None) -> None:
    s = stack.settings
    stack.prepare()
    stack.start_component("ingest", HEALTH["ingest"].format(s=s))
    stack.start_component("streams", HEALTH["streams"].format(s=s))
    stack.start_component("sink", HEALTH["sink"].format(s=s), extra_env=sink_env)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    stack = start_stack(tmp_path)
    try:
        yield stack
    finally:
        stack.stop(timeout=10)


@pytest.mark.parametrize("worker", ["ingest", "streams", "sink"])
def test_kill9_worker_mid_load(stack: LocalStack, worker: str) -> None:
    """SIGKILL one worker while exports flow, start a replacement: clients retry what ingest
    did not acknowledge, streams replays its uncommitted raw offsets and restores decisions,
    the sink replays its batch intent; all acknowledged spans land exactly once."""
    launch(stack)
    with running_load(stack.settings) as load:
        load.wait_acked(8)
        kill9(stack, worker)
        time.sleep(1)
        restart_component(stack, worker)
        load.wait_acked(load.requests_acked + 8)
    load.stop()
    assert not stack.dead()
    if worker == "ingest":
        assert load.retries > 0  # the outage was seen by the client
    check_consistent(stack.settings, load.acked)


@pytest.mark.parametrize("worker", ["ingest", "streams", "sink"])
def test_repeated_kill9_under_16_clients(stack: LocalStack, worker: str) -> None:
    """Three SIGKILLs of one worker while 16 clients export and retry: ingest's half-written
    requests are retried by their clients (copies stored once, counted as duplicates),
    streams replays and restores its counters with its decisions (nothing counted twice), the
    sink replays its intents; the identity is exact and nothing is stored twice or lost."""
    launch(stack)
    with running_clients(stack.settings, 16, requests_per_second=2.0) as load:
        load.wait_acked(32)
        for _ in range(3):
            kill9(stack, worker)
            time.sleep(1)
            restart_component(stack, worker)
            load.wait_acked(load.requests_acked + 32)
    load.stop()
    assert not stack.dead()
    outcome = check_consistent(stack.settings, load.acked, timeout=120)
    assert outcome.stored == len(load.acked)


def test_broker_stall_retries_are_stored_once(stack: LocalStack) -> None:
    """The broker freezes (SIGSTOP) longer than ingest's Kafka timeout while 16 clients
    export: ingest answers 503, the clients retry, and the frozen appends land when the broker
    resumes, so the raw topic holds copies of acknowledged requests. Each span is stored once;
    the copies are counted as duplicates and the identity holds."""
    launch(stack)
    with running_clients(stack.settings, 16, requests_per_second=2.0) as load:
        load.wait_acked(32)
        broker = child(stack, "broker").proc
        broker.send_signal(signal.SIGSTOP)
        try:
            time.sleep(stack.settings.ingest_kafka_timeout_ms / 1000 + 3)
        finally:
            broker.send_signal(signal.SIGCONT)
        load.wait_acked(load.requests_acked + 32, timeout=90)
    load.stop()
    assert not stack.dead()
    assert load.retries > 0  # the stall was seen by the clients
    outcome = check_consistent(stack.settings, load.acked, timeout=120)
    assert outcome.stored == len(load.acked)
    print(f"copies absorbed as duplicates: {outcome.accounting['duplicate']}")


def test_clickhouse_restart_mid_load(stack: LocalStack) -> None:
    """ClickHouse stops (same data dir) for ~3 s and comes back: the sink retries/pauses
    without committing, then stores everything once; ingest and streams never notice."""
    launch(stack)
    _, http_port = stack.settings.clickhouse_host_port
    with running_load(stack.settings) as load:
        load.wait_acked(8)
        restart_clickhouse(stack, http_port, down_seconds=3)
        load.wait_acked(load.requests_acked + 8)
    load.stop()
    assert not stack.dead()
    assert sink_retries(stack.settings) > 0  # the outage was seen by the sink
    check_consistent(stack.settings, load.acked)


def test_slow_clickhouse_sigstop(stack: LocalStack) -> None:
    """ClickHouse frozen (SIGSTOP) for 10 s then resumed: inserts hang rather than fail, so
    the sink's timeouts and retries must not produce duplicates or lose a batch."""
    launch(stack)
    with running_load(stack.settings) as load:
        load.wait_acked(8)
        ch = child(stack, "clickhouse").proc
        ch.send_signal(signal.SIGSTOP)
        try:
            time.sleep(10)
        finally:
            ch.send_signal(signal.SIGCONT)
        load.wait_acked(load.requests_acked + 8)
    load.stop()
    assert not stack.dead()
    check_consistent(stack.settings, load.acked)


def test_network_cut_between_sink_and_clickhouse(stack: LocalStack) -> None:
    """The sink talks to ClickHouse through a proxy that is cut (connections reset, new ones
    refused) for 6 s: an insert may or may not have reached ClickHouse when its connection
    died, so the retry must be deduplicated, and nothing is committed before it succeeds."""
    _, http_port = stack.settings.clickhouse_host_port
    proxy = TcpProxy(http_port)
    try:
        launch(stack, sink_env={"TRACEHOUSE_CLICKHOUSE_URL": f"http://127.0.0.1:{proxy.port}"})
        with running_load(stack.settings) as load:
            load.wait_acked(8)
            proxy.cut()
            time.sleep(6)
            proxy.restore()
            load.wait_acked(load.requests_acked + 8)
        load.stop()
        assert not stack.dead()
        assert sink_retries(stack.settings) > 0  # the cut was seen by the sink
        check_consistent(stack.settings, load.acked)
    finally:
        proxy.close()


# Seconds from the broker's restart to `tracehouse init` re-creating the topics: 4 s brings
# them back about a second after the components rejoined their groups (librdkafka's sink
# consumer then kept an empty assignment, or an assignment it fetched nothing from, until it
# replaced its clients: sinks/topic_lives.py), 12 s after the components have seen the
# topics missing at a metadata refresh.
INIT_AFTER_RESTART_S = (4.0, 12.0)


@pytest.mark.parametrize("init_after_s", INIT_AFTER_RESTART_S)
def test_broker_restart_loses_only_unconsumed_data(stack: LocalStack, init_after_s: float) -> None:
    """Tansu keeps topics in memory, so a restart loses every topic, offset, producer id and
    the streams state log; spans acknowledged before it may be lost if not yet stored. What
    this checks: no crash loop (every component process stays up, none is restarted by the
    test), ingest, streams and sink reconnect on their own once the topics exist again (ingest
    replaces a producer whose id the new broker refuses), every span acknowledged *after*
    recovery lands, nothing is stored twice, and what was stored before the restart stays
    stored."""
    launch(stack)
    s = stack.settings
    client = connect(s.clickhouse_url, s.clickhouse_database)
    with running_load(s) as before:
        before.wait_acked(10)
    before.stop()
    wait_stored(s, client, before.acked)
    kept = stored_keys(client)

    restart_broker(stack)
    # The topics come back only when init runs again; meanwhile the components reconnect to
    # a broker without them (the sink once sat out 5 minutes of metadata refresh this way).
    time.sleep(init_after_s)
    ensure_topics(s)  # what `tracehouse init` / the k8s init job does
    with running_load(s, seed=50_000) as after:
        after.wait_acked(10, timeout=60)
    after.stop()
    client = connect(s.clickhouse_url, s.clickhouse_database)
    wait_stored(s, client, after.acked)
    time.sleep(1.5)
    assert not stack.dead(), [c.name for c in stack.dead()]
    assert kept <= stored_keys(client)
    dup = int(client.command("SELECT count() - uniqExact(TraceId, SpanId) FROM otel_traces"))
    assert dup == 0

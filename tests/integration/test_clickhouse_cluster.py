"""Cluster mode for real: two local ClickHouse servers as the shards of the sharded layout
(docs/adr/0013-clickhouse-cluster-mode.md), two streams workers and two sinks in front of them.

Checks, on a fixed set of spans: the accounting identity balances exactly with every span
stored once, both shards hold rows (each trace's rows on one shard), and a query service on the
cluster answers trace-by-id (v1 and v3), searches with filters, services, operations and
dependencies exactly as a query service on a single-node ClickHouse holding the same rows.
"""

from __future__ import annotations

import functools
import json
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.clickhouse_cluster import ClickHouseCluster, start_clickhouse_cluster
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from schemas.apply import apply_migrations
from sinks.batching import PartitionBatch
from sinks.clickhouse_errors import ErrorClass, classify
from sinks.clickhouse_store import BatchStore
from tests.conftest import isolated_settings
from tests.integration.fault_support import accounting, duplicates
from tests.integration.helpers import wait_until
from tests.integration.query_stack import request
from tests.integration.streams_support import produce_spans, start_streams, streams_settings
from tracehouse import status_retention
from tracehouse.demo_traces import make_request
from tracehouse.span_specs import CLIENT, ERROR, SERVER, SpanSpec, sid, tid
from tracehouse.span_tables import otel_traces_table, span_facts
from tracehouse.status import collect, render

TRACES = 900  # x 5 spans
POLICY = {"decision_wait": "1s", "policies": [{"name": "all", "type": "always_sample"}]}
T0 = (time.time_ns() // 10**9 - 600) * 10**9  # ten minutes ago: inside the catalogue's look-back
FRONTENDS = ("web", "mobile", "partner")
OPERATIONS = ("GET /cart", "GET /item", "POST /order")
# Tables the sinks write; the single node gets their rows, its views derive the rest.
SINK_TABLES = ("otel_traces", "red_metrics", "service_graph_edges", "pipeline_counters")


def trace_spans(n: int) -> list[SpanSpec]:
    """frontend -> cart -> (db | cache): five spans, three services, two cross-service calls."""
    t, b, start = tid(70_000 + n), n * 10, T0 + n * 1_000_000
    front, op = FRONTENDS[n % 3], OPERATIONS[n % len(OPERATIONS)]
    store = "db" if n % 2 else "cache"
    status = ERROR if n % 7 == 0 else 0
    attrs = {"user": f"u{n % 13}", "http.status_code": 500 if status else 200}
    return [
        SpanSpec(t, sid(b + 1), front, op, kind=SERVER, start_ns=start, duration_ms=9 + n % 5,
                 status=status, attributes=attrs),
        SpanSpec(t, sid(b + 2), front, "call cart", parent_id=sid(b + 1), kind=CLIENT,
                 start_ns=start + 10**6, duration_ms=6),
        SpanSpec(t, sid(b + 3), "cart", op, parent_id=sid(b + 2), kind=SERVER,
                 start_ns=start + 2 * 10**6, duration_ms=5),
        SpanSpec(t, sid(b + 4), "cart", f"query {store}", parent_id=sid(b + 3), kind=CLIENT,
                 start_ns=start + 3 * 10**6, duration_ms=2),
        SpanSpec(t, sid(b + 5), store, "select", parent_id=sid(b + 4), kind=SERVER,
                 start_ns=start + 3 * 10**6, duration_ms=1 + n % 3),
    ]  # fmt: skip


@dataclass
class Sides:
    cluster: ClickHouseCluster
    cluster_settings: Settings
    single_settings: Settings
    cluster_query: str
    single_query: str
    sink_ports: tuple[int, int]


@pytest.fixture
def sides(services: LocalStack, tmp_path: Path) -> Iterator[Sides]:
    base = streams_settings(isolated_settings(services), tmp_path, POLICY).with_(
        sink_batch_seconds=0.5, sampling_http_port=0, sampling_grpc_port=0
    )
    cluster = start_clickhouse_cluster(tmp_path / "cluster", shards=2)
    settings = cluster.settings_for(base)
    single = base.with_(query_http_port=free_port())
    stack = LocalStack(settings, tmp_path / "run", say=lambda _m: None)
    single_stack = LocalStack(single, tmp_path / "single", say=lambda _m: None)
    sink_b = free_port()
    try:
        stack.prepare()  # topics, and every shard's tables
        single_stack.prepare()
        for _ in range(2):
            start_streams(stack, free_port())
        stack.start_component("sink", f"http://127.0.0.1:{settings.sink_metrics_port}/metrics")
        stack.start_component(
            "sink",
            f"http://127.0.0.1:{sink_b}/metrics",
            extra_env={"TRACEHOUSE_SINK_METRICS_PORT": str(sink_b)},
        )
        wait_until(
            lambda: latest_assignments(stack.logs / "sink.log"),
            lambda a: sinks_share(a, settings),
            timeout=60,
        )
        stack.start_component("query", f"http://127.0.0.1:{settings.query_http_port}/health")
        single_stack.start_component("query", f"http://127.0.0.1:{single.query_http_port}/health")
        yield Sides(
            cluster,
            settings,
            single,
            f"http://127.0.0.1:{settings.query_http_port}",
            f"http://127.0.0.1:{single.query_http_port}",
            (settings.sink_metrics_port, sink_b),
        )
    finally:
        single_stack.stop()
        stack.stop()
        cluster.stop()


def total_calls(client: Any, table: str) -> int:
    return int(client.command(f"SELECT sum(Calls) FROM {table}"))


def latest_assignments(log_path: Path) -> list[set[str]]:
    """The partitions of each "assigned" line both sinks logged (they share one log file)."""
    lines = log_path.read_text().splitlines() if log_path.exists() else []
    return [
        set(record["partitions"])
        for record in (json.loads(line) for line in lines if '"msg": "assigned"' in line)
    ]


def sinks_share(assignments: list[set[str]], settings: Settings) -> bool:
    """The last two assignments split the spans topic between two sinks, each owning some."""
    if len(assignments) < 2:
        return False
    topic = settings.topics.sampled_spans
    a, b = ({p for p in x if p.rsplit("/", 1)[0] == topic} for x in assignments[-2:])
    return bool(a) and bool(b) and not a & b and len(a | b) == settings.partitions


def copy_to_single_node(sides: Sides) -> None:
    """The single node gets exactly the rows the shards hold, read from each shard's local
    table (not through the cluster's own tables, so a bug there cannot hide itself)."""
    single = connect(
        sides.single_settings.clickhouse_url, sides.single_settings.clickhouse_database
    )
    db = sides.single_settings.clickhouse_database
    shards = ",".join(sides.cluster.addresses)
    for table in SINK_TABLES:
        columns = ", ".join(
            f"`{name}`"
            for (name,) in single.query(
                "SELECT name FROM system.columns WHERE database = {db:String} "
                "AND table = {t:String} AND default_kind != 'ALIAS' ORDER BY position",
                parameters={"db": db, "t": table},
            ).result_rows
        )
        single.command(
            f"INSERT INTO `{db}`.{table} ({columns}) "
            f"SELECT {columns} FROM remote('{shards}', '{db}', '{table}_local')",
            settings={"insert_allow_materialized_columns": 1},
        )


def get(base: str, path: str) -> Any:
    status, _ctype, body = request(base + path)
    assert status == 200, (base + path, body[:300])
    return json.loads(body)


def rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def comparable_paths() -> list[str]:
    start_us, end_us = (T0 - 10**9) // 1000, (T0 + (TRACES + 60) * 10**6) // 1000
    window = f"start={start_us}&end={end_us}"
    v3_window = (
        f"query.start_time_min={urllib.parse.quote(rfc3339(start_us * 1000))}"
        f"&query.start_time_max={urllib.parse.quote(rfc3339(end_us * 1000))}"
    )
    end_ms = end_us // 1000 + 60_000
    paths = [
        "/api/services",
        "/api/v3/services",
        f"/api/dependencies?endTs={end_ms}&lookback=7200000",
    ]
    for service in (*FRONTENDS, "cart", "db", "cache"):
        paths += [
            f"/api/services/{urllib.parse.quote(service)}/operations",
            f"/api/operations?service={service}",
            f"/api/v3/operations?service={service}",
        ]
    for n in (0, 1, 2, 7, 450, TRACES - 1):
        trace_id = tid(70_000 + n).hex()
        paths += [f"/api/traces/{trace_id}", f"/api/v3/traces/{trace_id}"]
    tags = urllib.parse.quote(json.dumps({"user": "u3"}))
    op = urllib.parse.quote("GET /item")
    paths += [
        f"/api/traces?service=web&{window}&limit=1500",
        f"/api/traces?service=mobile&operation={op}&{window}&limit=1500",
        f"/api/traces?service=partner&tags={tags}&{window}&limit=1500",
        f"/api/traces?service=web&tags={urllib.parse.quote(json.dumps({'error': 'true'}))}"
        f"&{window}&limit=1500",
        f"/api/traces?service=cart&minDuration=5ms&{window}&limit=1500",
        f"/api/traces?service=db&{window}&limit=20",
        f"/api/v3/traces?query.service_name=web&{v3_window}&query.num_traces=1500",
        f"/api/v3/traces?query.service_name=cart&query.operation_name={op}&{v3_window}"
        f"&query.num_traces=1500",
    ]
    # RED windows are stamped when streams closes them: a window around the whole run.
    now_us = time.time_ns() // 1000
    red = f"start={start_us - 3600 * 10**6}&end={now_us + 3600 * 10**6}"
    paths += [
        f"/api/red/summary?{red}",
        f"/api/red?service=web&{red}&step=60",
        f"/api/red?service=cart&operation={op}&{red}&step=60",
        f"/api/red?service=cart&{red}&step=3600",  # the hourly rollup
    ]
    return paths


def sorted_search(body: Any) -> Any:
    """An answer's list of results in a fixed order: a search's limit, or the RED summary's
    ``ORDER BY calls DESC``, may break ties differently on any two servers (one node too)."""
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        data = body["data"]
        if data and all(isinstance(d, dict) for d in data):
            return {**body, "data": sorted(data, key=lambda d: json.dumps(d, sort_keys=True))}
    return body


class OneBatch(NamedTuple):
    """``traces`` demo traces as one sink batch, and a sink store on the sharded tables."""

    data: trace_pb2.TracesData
    records: list[dict[str, Any]]
    store: BatchStore
    batch: PartitionBatch


def one_batch(settings: Settings, name: str, traces: int, seed: int) -> OneBatch:
    data = trace_pb2.TracesData.FromString(
        make_request(traces=traces, seed=seed).SerializeToString()
    )
    records = span_facts(data)
    store = BatchStore(connect(settings.clickhouse_url, settings.clickhouse_database), name)
    batch = PartitionBatch(name, 0, 0)
    batch.add(0, records, len(records))
    return OneBatch(data, records, store, batch)


def check_replayed_batch_stored_once(sides: Sides) -> None:
    """The sink's exactly-once step on the sharded table: a batch re-inserted with its token
    (a retry, or a replay after a crash) is split over the shards identically, so each shard
    drops its copy of the sub-block; the insert returns only once the shards have the rows."""
    settings = sides.cluster_settings
    data, records, store, batch = one_batch(settings, "replay-check", traces=40, seed=5)
    shards = [connect(url, settings.clickhouse_database) for url in sides.cluster.urls]

    def per_shard() -> list[int]:
        return [int(c.command("SELECT count() FROM otel_traces_local")) for c in shards]

    before = per_shard()
    for _ in range(2):
        store.insert("otel_traces", otel_traces_table(data), batch)
        after = per_shard()  # no wait: the insert was synchronous on every shard
        added = [a - b for a, b in zip(after, before, strict=True)]
        assert sum(added) == len(records) and all(n > 0 for n in added), added


def has_rows(body: Any) -> bool:
    """Does an answer hold any non-empty list (errors aside)? Comparing two empty answers
    would prove nothing."""
    if isinstance(body, dict):
        return any(has_rows(v) for k, v in body.items() if k != "errors")
    return isinstance(body, list) and len(body) > 0


def test_two_shards_two_sinks_answer_like_one_node(sides: Sides) -> None:
    settings = sides.cluster_settings
    spans = [s for n in range(TRACES) for s in trace_spans(n)]
    started = time.monotonic()
    produce_spans(settings, spans)
    client = connect(settings.clickhouse_url, settings.clickhouse_database)
    wait_until(
        lambda: accounting(client),
        lambda a: a["stored"] == len(spans) and a["received"] == len(spans) and a["balanced"],
        timeout=90,
    )
    # RED windows and edges trail the spans (window close, graph wait); both must be complete
    # before the copy, or the two sides would compare different rows.
    for table, calls in (("red_metrics", len(spans)), ("service_graph_edges", 2 * TRACES)):
        wait_until(functools.partial(total_calls, client, table), calls.__le__, timeout=60)
    time.sleep(1.5)  # a late duplicate (or a late counter) would land by now
    acc = accounting(client)
    print(f"cluster drain: {time.monotonic() - started:.1f} s, accounting {acc}")
    assert acc["received"] == acc["stored"] == len(spans) and acc["balanced"], acc
    assert acc["sampled_out"] == acc["evicted"] == acc["rejected"] == acc["duplicate"] == 0
    assert duplicates(client) == 0

    # Both shards hold rows, and every trace lives on exactly one of them.
    per_shard = []
    for url in sides.cluster.urls:
        shard = connect(url, settings.clickhouse_database)
        per_shard.append(int(shard.command("SELECT count() FROM otel_traces_local")))
    assert all(n > 0 for n in per_shard) and sum(per_shard) == len(spans), per_shard
    split = client.command(
        f"SELECT count() FROM (SELECT TraceId FROM remote('{','.join(sides.cluster.addresses)}',"
        f" '{settings.clickhouse_database}', 'otel_traces_local') "
        "GROUP BY TraceId HAVING uniqExact(_shard_num) > 1)"
    )
    assert int(split) == 0
    # Both sinks stored part of it (each owns some partitions).
    for port in sides.sink_ports:
        status, _ctype, body = request(f"http://127.0.0.1:{port}/metrics")
        stored = sum(
            float(line.split()[-1])
            for line in body.decode().splitlines()
            if line.startswith("tracehouse_sink_rows_stored_total{") and "otel_traces" in line
        )
        assert status == 200 and stored > 0, port

    copy_to_single_node(sides)
    empty = []
    for path in comparable_paths():
        on_cluster = sorted_search(get(sides.cluster_query, path))
        on_single = sorted_search(get(sides.single_query, path))
        assert on_cluster == on_single, path
        if not has_rows(on_cluster):
            empty.append((path, on_cluster))
    assert not empty  # the comparisons are not of empty answers

    check_replayed_batch_stored_once(sides)

    # `tracehouse status` works against the cluster and sees the shards' tables.
    report = render(collect(settings))
    assert "otel_traces" in report and "server differs" not in report, report


def test_shard_loss_is_an_outage_then_the_retry_stores_once(tmp_path: Path) -> None:
    """A shard down: the sink's insert and the reads fail with errors the sink classifies as
    an outage (retry the same batch; never dead-letter it), nothing is half-visible, and once
    the shard is back the retry with the same token leaves every row stored exactly once."""
    cluster = start_clickhouse_cluster(tmp_path / "cluster", shards=2)
    try:
        settings = cluster.settings_for(Settings(clickhouse_database="shardloss"))
        apply_migrations(settings)
        data, records, store, batch = one_batch(settings, "loss", traces=60, seed=9)
        client = connect(settings.clickhouse_url, settings.clickhouse_database)

        # Default retention: the TTLs are on the shards' local tables, and status sees them.
        retention = {r["table"]: r for r in status_retention.collect(client, settings)}
        assert retention["otel_traces"]["keep_days"] == 7 and retention["otel_traces"]["server_ttl"]

        cluster.stop_shard(1)
        for attempt in (
            lambda: store.insert("otel_traces", otel_traces_table(data), batch),
            lambda: client.query("SELECT count() FROM otel_traces"),
            lambda: client.query("SELECT * FROM sink_batches FINAL"),
        ):
            with pytest.raises(Exception) as failed:
                attempt()
            assert classify(failed.value) is ErrorClass.OUTAGE, failed.value

        cluster.start_shard(1)
        for _ in range(2):  # the sink's retry, then a replay after a crash
            store.insert("otel_traces", otel_traces_table(data), batch)
        assert int(client.command("SELECT count() FROM otel_traces")) == len(records)
        assert duplicates(client) == 0
        per_shard = [
            int(connect(url, "shardloss").command("SELECT count() FROM otel_traces_local"))
            for url in cluster.urls
        ]
        assert all(n > 0 for n in per_shard), per_shard
    finally:
        cluster.stop()

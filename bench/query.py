"""Query latency on 1M stored spans: trace by id and search, through the HTTP API.

Starts its own ClickHouse (chdb-core server) on free 127.0.0.1 ports, loads N spans of
realistic demo traces spread over the last 24 h with the sink's own insert code, starts the
query service, then measures latency percentiles of /api/traces/{id} and /api/traces searches.
The baseline, measured in the same run, is the bare ClickHouse query for the same trace via
clickhouse-connect, so the ratio shows what the API layer adds.

    .venv/bin/python -m bench.query --spans 1000000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from opentelemetry.proto.trace.v1 import trace_pb2

from bench.harness import quantile
from core.clickhouse import connect
from core.settings import Settings
from deploy.local.clickhouse_server import start_clickhouse
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from schemas.migrations import migrate
from sinks.batching import PartitionBatch
from sinks.clickhouse_store import BatchStore
from tracehouse.demo_traces import make_request
from tracehouse.span_tables import otel_traces_table

DAY_NS = 86_400 * 10**9


def load(store: BatchStore, spans: int, chunk_traces: int = 20_000) -> list[str]:
    now = time.time_ns()
    trace_ids: list[str] = []
    loaded, seed = 0, 0
    while loaded < spans:
        seed += 1
        end_ns = now - random.Random(seed).randint(0, DAY_NS)
        data = trace_pb2.TracesData.FromString(
            make_request(chunk_traces, seed=seed, now_ns=end_ns).SerializeToString()
        )
        table = otel_traces_table(data).slice(0, spans - loaded)
        batch = PartitionBatch("bench", 0, seed)
        batch.add(seed, table, table.num_rows)
        store.insert("otel_traces", table, batch)
        trace_ids.extend(sorted(set(table["TraceId"].to_pylist())))
        loaded += table.num_rows
        print(f"\rloaded {loaded:,}/{spans:,} spans", end="", flush=True)
    print()
    return trace_ids


def timed_get(url: str) -> tuple[float, dict]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        body = json.loads(resp.read())
    return (time.perf_counter() - started) * 1000, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--searches", type=int, default=100)
    args = parser.parse_args()
    random.seed(42)
    with tempfile.TemporaryDirectory(prefix="th-bench-query-") as tmp:
        settings = Settings(
            clickhouse_url=f"http://127.0.0.1:{free_port()}",
            clickhouse_database="bench",
            query_http_port=free_port(),
        )
        _, http_port = settings.clickhouse_host_port
        ch = start_clickhouse(Path(tmp) / "ch", http_port, free_port())
        stack = LocalStack(settings, Path(tmp), say=lambda _m: None)
        try:
            migrate(connect(settings.clickhouse_url, "default"), "bench")
            client = connect(settings.clickhouse_url, "bench")
            started = time.perf_counter()
            trace_ids = load(BatchStore(client, "bench"), args.spans)
            load_s = time.perf_counter() - started
            client.command("OPTIMIZE TABLE otel_traces_trace_id_ts FINAL")
            stored = int(client.command("SELECT count() FROM otel_traces"))
            stack.start_component("query", f"http://127.0.0.1:{settings.query_http_port}/health")
            base = f"http://127.0.0.1:{settings.query_http_port}"

            sample = random.sample(trace_ids, args.lookups)
            baseline = []
            for tid in sample:
                t0 = time.perf_counter()
                client.query(
                    "SELECT * FROM otel_traces WHERE TraceId = {t:String}", parameters={"t": tid}
                )
                baseline.append((time.perf_counter() - t0) * 1000)
            by_id = []
            for tid in sample:
                ms, body = timed_get(f"{base}/api/traces/{tid}")
                assert body["data"] and body["data"][0]["traceID"] == tid
                by_id.append(ms)
            searches = []
            services = ["frontend", "checkout", "cart", "payment", "inventory", "shipping"]
            for i in range(args.searches):
                service = services[i % len(services)]
                extra = [
                    "",
                    "&minDuration=50ms",
                    "&tags=%7B%22error%22%3A%22true%22%7D",
                    "&operation=GET%20%2F",
                ][i % 4]
                ms, body = timed_get(
                    f"{base}/api/traces?service={service}&lookback=24h&limit=20{extra}"
                )
                searches.append(ms)
        finally:
            stack.stop()
            ch.terminate()
            ch.wait(10)
    print(
        f"stored spans: {stored:,} (generated in Python and inserted in {load_s:.1f} s, "
        f"{stored / load_s:,.0f} spans/s)"
    )
    print(
        f"trace by id  p50 {statistics.median(by_id):6.1f} ms  p95 {quantile(by_id, 0.95):6.1f} ms"
        f"  (goal p95 < 50 ms)"
    )
    print(
        f"  baseline: bare ClickHouse SELECT by TraceId p50 "
        f"{statistics.median(baseline):6.1f} ms p95 {quantile(baseline, 0.95):6.1f} ms; "
        f"ratio API/baseline p95 = {quantile(by_id, 0.95) / quantile(baseline, 0.95):.2f}"
    )
    print(
        f"search       p50 {statistics.median(searches):6.1f} ms  p95 "
        f"{quantile(searches, 0.95):6.1f} ms  (goal p95 < 300 ms)"
    )


if __name__ == "__main__":
    main()

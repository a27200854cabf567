"""Query latency on 1M stored spans: trace by id, search, api_v3 search and the metrics API.

Starts its own ClickHouse (chdb-core server) on free 127.0.0.1 ports, loads N spans of
realistic demo traces spread over the last 24 h with the sink's own insert code, starts the
query service, then measures latency percentiles of /api/traces/{id} and /api/traces searches,
of api_v3 searches (/api/v3/traces and /api/v3/trace-summaries) and of the metrics API
(/api/metrics/*, the queries Jaeger UI's Monitor tab sends) over RED windows that streams'
RedAggregator computed from the same spans and the sink's table builder stored.
The baseline, measured in the same run, is the bare ClickHouse query for the same trace via
clickhouse-connect, so the ratio shows what the API layer adds.

    .venv/bin/python -m bench.query --spans 1000000
    .venv/bin/python -m bench.query --spans 1250000 --doublings 3   # 10M spans

``--doublings R`` grows the generated spans and their RED rows 2^R times inside ClickHouse
(bench/replicate.py: new ids, times shifted within the same 24 h) before measuring.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from opentelemetry.proto.trace.v1 import trace_pb2

from bench.harness import quantile
from bench.replicate import double
from core.clickhouse import connect
from core.settings import Settings
from deploy.local.clickhouse_server import start_clickhouse
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from query.v3_params import format_rfc3339_ns
from schemas.migrations import migrate
from sinks.batching import PartitionBatch
from sinks.clickhouse_store import BatchStore
from sinks.window_columns import red_metrics_arrow, red_rows
from streams.red_metrics import RedAggregator
from streams.span_views import SpanView, span_views
from tracehouse.demo_traces import make_request
from tracehouse.span_tables import otel_traces_table

DAY_NS = 86_400 * 10**9
RED_WINDOW_NS = 10 * 10**9  # the streams default


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
        store.insert_block(
            "red_metrics", red_table(span_views(data)[: table.num_rows]), f"bench-red-{seed}"
        )
        trace_ids.extend(sorted(set(table["TraceId"].to_pylist())))
        loaded += table.num_rows
        print(f"\rloaded {loaded:,}/{spans:,} spans", end="", flush=True)
    print()
    return trace_ids


def red_table(views: list[SpanView]) -> object:
    """RED rows of the spans as the streams workers would cut them: one window per 10 s."""
    windows: dict[int, list[SpanView]] = {}
    for v in views:
        windows.setdefault(v.end_time_unix_nano // RED_WINDOW_NS, []).append(v)
    rows: list[dict] = []
    for w, spans in windows.items():
        agg = RedAggregator()
        agg.add(spans)
        rows += red_rows(agg.drain("bench/0", w * RED_WINDOW_NS, (w + 1) * RED_WINDOW_NS))
    return red_metrics_arrow(rows)


def timed_get(url: str) -> tuple[float, dict]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        body = json.loads(resp.read())
    return (time.perf_counter() - started) * 1000, body


def timed_get_any(url: str) -> float:
    """ms of a GET whose status may be 404 (api_v3 answers "No traces found" with a 404)."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            json.loads(resp.read())
    except urllib.error.HTTPError as err:
        assert err.code == 404, err.read()
        json.loads(err.read())
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--searches", type=int, default=100)
    parser.add_argument("--metrics", type=int, default=100, help="metrics API queries")
    parser.add_argument(
        "--doublings", type=int, default=0, help="double the generated spans R times in SQL"
    )
    args = parser.parse_args()
    random.seed(42)
    with tempfile.TemporaryDirectory(prefix="th-bench-query-") as tmp:
        settings = Settings(
            clickhouse_url=f"http://127.0.0.1:{free_port()}",
            clickhouse_database="bench",
            query_http_port=free_port(),
            query_grpc_port=free_port(),
            sampling_http_port=0,
            sampling_grpc_port=0,
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
            if args.doublings:
                started = time.perf_counter()
                span_window = (time.time_ns() - DAY_NS - 60 * 10**9, DAY_NS + 120 * 10**9)
                double(client, args.doublings, *span_window, with_red=True)
                print(f"doubled {args.doublings}x in SQL in {time.perf_counter() - started:.1f} s")
                client.command("OPTIMIZE TABLE otel_traces FINAL")
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
            v3_searches, summaries = [], []
            window = {
                "query.startTimeMin": format_rfc3339_ns(time.time_ns() - DAY_NS),
                "query.startTimeMax": format_rfc3339_ns(time.time_ns()),
                "query.searchDepth": "20",
            }
            for i in range(args.searches):
                params = {**window, "query.serviceName": services[i % len(services)]}
                params.update(
                    [
                        {},
                        {"query.durationMin": "50ms"},
                        {"query.attributes": '{"error":"true"}'},
                        {"query.operationName": "GET /", "query.durationMax": "1s"},
                    ][i % 4]
                )
                qs = urllib.parse.urlencode(params)
                v3_searches.append(timed_get_any(f"{base}/api/v3/traces?{qs}"))
                summaries.append(timed_get_any(f"{base}/api/v3/trace-summaries?{qs}"))
            metrics = []
            now_ms = time.time_ns() // 1_000_000
            for i in range(args.metrics):
                kind = ["latencies", "calls", "errors"][i % 3]
                metric_params: dict[str, object] = {
                    "service": services[i % len(services)],
                    "endTs": now_ms,
                    "lookback": [3_600_000, 86_400_000][(i // 3) % 2],
                    "step": 60_000,
                    "ratePer": 600_000,
                    "spanKind": "server",
                    "groupByOperation": ["false", "true"][(i // 6) % 2],
                }
                if kind == "latencies":
                    metric_params["quantile"] = 0.95
                ms, body = timed_get(
                    f"{base}/api/metrics/{kind}?{urllib.parse.urlencode(metric_params)}"
                )
                assert body["name"], body
                metrics.append(ms)
        finally:
            stack.stop()
            ch.terminate()
            ch.wait(10)
    print(
        f"stored spans: {stored:,} ({args.spans:,} generated in Python and inserted in"
        f" {load_s:.1f} s, {args.spans / load_s:,.0f} spans/s; doubled {args.doublings}x)"
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
    for name, values in (("v3 search", v3_searches), ("v3 summaries", summaries)):
        print(
            f"{name:13}p50 {statistics.median(values):6.1f} ms  p95 "
            f"{quantile(values, 0.95):6.1f} ms  (goal p95 < 300 ms)"
        )
    print(
        f"metrics API  p50 {statistics.median(metrics):6.1f} ms  p95 "
        f"{quantile(metrics, 0.95):6.1f} ms  (goal p95 < 200 ms)"
    )


if __name__ == "__main__":
    main()

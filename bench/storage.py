"""Bytes per span on disk and analyst query latency, with the exporter's indexes in place.

Starts its own ClickHouse (chdb-core server) on free 127.0.0.1 ports, creates tracehouse's
tables twice (one database with the ``text`` indexes ClickHouse >= 26.2 gets, one with the
bloom filters older servers get; migration 0008), loads the same N spans of realistic demo
traces into both with the sink's insert code, merges them (``OPTIMIZE ... FINAL``, as
background merges eventually do), then reports:

- bytes per span: all of ``otel_traces`` on disk, and split into column data and skip indexes;
- the largest columns and every skip index;
- latency (p50 / p95 over repeats) of each query in tests/data/upstream_query_corpus.sql (SQL
  written for the exporter's schema) on both layouts.

    .venv/bin/python -m bench.storage --spans 1000000
    .venv/bin/python -m bench.storage --spans 1250000 --doublings 3   # 10M spans

``--doublings R`` grows the generated set 2^R times inside ClickHouse (bench/replicate.py: new
ids, shifted times) before merging and measuring; the second layout gets a copy of the first's
rows, so both hold the same spans.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from opentelemetry.proto.trace.v1 import trace_pb2

from bench.harness import quantile
from bench.replicate import double
from core.clickhouse import connect
from deploy.local.clickhouse_server import start_clickhouse
from deploy.local.ports import free_port
from schemas.migrations import migrate
from sinks.batching import PartitionBatch
from sinks.clickhouse_store import BatchStore
from tracehouse.demo_traces import make_request
from tracehouse.span_tables import otel_traces_table

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "upstream_query_corpus.sql"
HOUR_NS = 3_600 * 10**9
LAYOUTS = {"text": True, "bloom": False}
SLOW_S = 50  # a corpus query running longer is reported as "> 50 s"


def corpus() -> dict[str, str]:
    out = {}
    for block in re.split(r"\n(?=-- query: )", CORPUS.read_text()):
        name = re.match(r"-- query: (\w+)\n", block)
        if name and name.group(1) != "select_star":  # a full dump, not an analyst query
            out[name.group(1)] = block[name.end() :].strip()
    return out


def load(client: Any, spans: int, now_ns: int, chunk_traces: int = 10_000) -> list[str]:
    """N spans of demo traces over the last hour, inserted as the sink does."""
    store = BatchStore(client, "bench")
    loaded, seed, trace_ids = 0, 0, []
    while loaded < spans:
        seed += 1
        end_ns = now_ns - random.Random(seed).randint(0, HOUR_NS)
        data = trace_pb2.TracesData.FromString(
            make_request(chunk_traces, seed=seed, now_ns=end_ns).SerializeToString()
        )
        table = otel_traces_table(data).slice(0, spans - loaded)
        batch = PartitionBatch("bench", 0, seed)
        batch.add(seed, table, table.num_rows)
        store.insert("otel_traces", table, batch)
        trace_ids.extend(sorted(set(table["TraceId"].to_pylist()))[:50])
        loaded += table.num_rows
    return trace_ids


def sizes(client: Any, db: str) -> dict[str, Any]:
    rows, on_disk, data, indexes = client.query(
        "SELECT sum(rows), sum(bytes_on_disk), sum(data_compressed_bytes),"
        " sum(secondary_indices_compressed_bytes) FROM system.parts"
        " WHERE database = {db:String} AND table = 'otel_traces' AND active",
        parameters={"db": db},
    ).result_rows[0]
    columns = client.query(
        "SELECT column, sum(column_data_compressed_bytes) AS size FROM system.parts_columns"
        " WHERE database = {db:String} AND table = 'otel_traces' AND active"
        " GROUP BY column ORDER BY size DESC LIMIT 8",
        parameters={"db": db},
    ).result_rows
    skip = client.query(
        "SELECT name, type_full, data_compressed_bytes FROM system.data_skipping_indices"
        " WHERE database = {db:String} AND table = 'otel_traces' ORDER BY name",
        parameters={"db": db},
    ).result_rows
    return {
        "rows": int(rows),
        "on_disk": int(on_disk),
        "data": int(data),
        "indexes": int(indexes),
        "columns": columns,
        "skip": skip,
    }


def latency(
    client: Any, sql: str, params: dict[str, Any], repeats: int
) -> tuple[float, float] | None:
    """p50 / p95 ms over ``repeats`` runs; None when a run exceeds ``SLOW_S`` (ClickHouse stops
    it). A query slower than 5 s runs twice only: its p95 says nothing a second run doesn't."""
    times: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            client.query(
                sql,
                parameters=params,
                settings={"use_query_cache": 0, "max_execution_time": SLOW_S},
            )
        except Exception as err:  # the server's TIMEOUT_EXCEEDED, or the HTTP read timeout
            if "TIMEOUT" in str(err).upper() or "timed out" in str(err):
                return None
            raise
        times.append((time.perf_counter() - started) * 1000)
        if times[-1] > 5_000 and len(times) >= 2:
            break
    return quantile(times, 0.5), quantile(times, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--doublings", type=int, default=0, help="double the generated spans R times in SQL"
    )
    args = parser.parse_args()
    http_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        ch = start_clickhouse(Path(tmp) / "ch", http_port, free_port())
        try:
            run(f"http://127.0.0.1:{http_port}", args.spans, args.repeats, args.doublings)
        finally:
            ch.terminate()
            ch.wait(30)


def run(url: str, spans: int, repeats: int, doublings: int = 0) -> None:
    admin = connect(url, "default")
    now_ns = time.time_ns()
    clients, trace_ids = {}, []
    for layout, text in LAYOUTS.items():
        migrate(admin, f"bench_{layout}", 0, text_indexes=text)
        clients[layout] = connect(url, f"bench_{layout}")
    first, *others = LAYOUTS
    started = time.perf_counter()
    trace_ids = load(clients[first], spans, now_ns)
    rate = spans / (time.perf_counter() - started)
    print(f"{first}: loaded {spans:,} spans ({rate:,.0f} spans/s incl. Arrow build)")
    if doublings:
        started = time.perf_counter()
        window = (now_ns - HOUR_NS - 60 * 10**9, HOUR_NS + 120 * 10**9)
        total = double(clients[first], doublings, *window)
        print(
            f"{first}: doubled {doublings}x to {total:,} spans in SQL"
            f" ({time.perf_counter() - started:.1f} s)"
        )
    for layout in others:
        started = time.perf_counter()
        clients[layout].command(f"INSERT INTO otel_traces SELECT * FROM bench_{first}.otel_traces")
        print(f"{layout}: copied the same rows ({time.perf_counter() - started:.1f} s)")
    for layout, client in clients.items():
        started = time.perf_counter()
        client.command("OPTIMIZE TABLE otel_traces FINAL")
        client.command("OPTIMIZE TABLE otel_traces_trace_id_ts FINAL")
        print(f"{layout}: merged in {time.perf_counter() - started:.1f} s")
    for layout, client in clients.items():
        s = sizes(client, f"bench_{layout}")
        n = max(1, s["rows"])
        print(
            f"\n{layout} indexes: {s['on_disk'] / n:.1f} B/span on disk"
            f" (column data {s['data'] / n:.1f}, skip indexes {s['indexes'] / n:.1f})"
        )
        for name, size in s["columns"]:
            print(f"  column {name:<24} {int(size) / n:7.2f} B/span")
        for name, kind, size in s["skip"]:
            print(f"  index  {name:<24} {int(size) / n:7.2f} B/span  {kind}")
    t0 = (now_ns - HOUR_NS - 60 * 10**9) // 10**9
    t1 = (now_ns + 60 * 10**9) // 10**9
    print(f"\nquery latency, ms p50 / p95 over {repeats} runs (trace ids drawn per query)")
    print(f"  {'query':<28} {'text':>17} {'bloom':>17}")
    rng = random.Random(7)
    for name, sql in corpus().items():
        params: dict[str, Any] = {
            "trace_id": rng.choice(trace_ids),
            "t0": t0,
            "t1": t1,
            "service": "frontend",
        }
        params = {k: v for k, v in params.items() if "{" + k + ":" in sql}
        cells = []
        for client in clients.values():
            measured = latency(client, sql, params, repeats)
            cells.append(
                f"{measured[0]:8.1f} / {measured[1]:6.1f}" if measured else f"> {SLOW_S} s"
            )
        print(f"  {name:<28} {cells[0]:>17} {cells[1]:>17}")


if __name__ == "__main__":
    main()

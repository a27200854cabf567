"""Sink throughput: one worker end to end vs a direct clickhouse-connect insert.

Starts its own broker and ClickHouse (pinned wheels), publishes N spans to spans.sampled as
Avro batches, then measures

1. one in-process ``SinkWorker`` (consume -> Avro decode -> Arrow columns -> insert with the
   intent/dedup protocol -> commit), from its first message to the last row stored, once per
   wire version of ``span_batch`` (``--wire both``: v3 packed columns, then v2 typed columns;
   ``--wire all`` adds v1 rows; each from its own topic into its own database, back to back);
2. a direct ``client.insert_arrow`` of the same spans as one Arrow table, in the same batch
   size, into a second database: the ceiling the worker is compared with;
3. the two columnar insert paths the issue asked about for otel_traces: Python column lists
   with ``insert(column_oriented=True)`` vs an Arrow table with ``insert_arrow`` (build + send);
4. the worker's CPU stages alone (Avro decode, Arrow build) for each wire version.

Usage: .venv/bin/python bench/sink.py [--spans 200000] [--batch-rows 50000]
       [--wire v1|v2|v3|both|all] [--repeat 1] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Producer

from core.clickhouse import connect
from core.settings import Settings
from core.topics import ensure_topics
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from schemas import avro_codec
from schemas.migrations import migrate
from sinks.span_columns import OTEL_TRACES_COLUMNS, otel_traces_arrow, otel_traces_columns
from sinks.worker import SinkWorker
from sinks.writers import WRITERS
from streams.packed_batch import pack_columns
from tests.span_batch_rows import columns_from_rows

T0 = 1_764_000_000_000_000_000
SPANS_PER_MESSAGE = 1000


def make_span(i: int) -> dict[str, Any]:
    """A span of typical size: 4 span attributes, 3 resource attributes, every 4th an event."""
    trace = i // 8
    start = T0 + i * 1000
    return {
        "tenant_id": "",
        "trace_id": f"{trace:032x}",
        "span_id": f"{i:016x}",
        "parent_span_id": f"{i - 1:016x}" if i % 8 else "",
        "trace_state": "",
        "name": f"operation-{i % 40}",
        "kind": 2 + i % 2,
        "service_name": f"service-{i % 12}",
        "start_time_unix_nano": start,
        "end_time_unix_nano": start + (i * 7919) % 500_000_000,
        "status_code": 2 if i % 50 == 0 else 0,
        "status_message": "",
        "resource_attributes": {
            "service.name": f"service-{i % 12}",
            "host.name": f"host-{i % 30}",
            "deployment.environment": "prod",
        },
        "scope_name": "io.opentelemetry.http",
        "scope_version": "1.2.3",
        "attributes": {
            "http.request.method": "GET",
            "http.route": f"/api/v1/items/{i % 100}",
            "http.response.status_code": "200",
            "net.peer.name": f"peer-{i % 20}",
        },
        "events": [{"time_unix_nano": start + 10, "name": "retry", "attributes": {"n": "1"}}]
        if i % 4 == 0
        else [],
        "links": [],
    }


WIRES = ("v3", "v2", "v1")
WIRE_SETS = {"both": ["v3", "v2"], "all": ["v3", "v2", "v1"]}


def encode_message(spans: list[dict[str, Any]], wire: str) -> bytes:
    if wire == "v1":
        return avro_codec.encode("span_batch", {"spans": spans}, 1)
    if wire == "v2":
        return avro_codec.encode("span_batch", columns_from_rows(spans), 2)
    return avro_codec.encode("span_batch", pack_columns(columns_from_rows(spans)), 3)


def messages_of(spans: list[dict[str, Any]], wire: str) -> list[bytes]:
    return [
        encode_message(spans[i : i + SPANS_PER_MESSAGE], wire)
        for i in range(0, len(spans), SPANS_PER_MESSAGE)
    ]


def publish(settings: Settings, spans: list[dict[str, Any]], wire: str) -> None:
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20, "compression.type": "lz4"}
    )
    for n, value in enumerate(messages_of(spans, wire)):
        producer.produce(settings.topics.sampled_spans, value, partition=n % settings.partitions)
        producer.poll(0)
    assert producer.flush(60) == 0


def run_worker(settings: Settings, expected: int, profile: str = "") -> float:
    """Seconds from the worker's first fetched messages (before decoding) to the last row
    stored: consume, decode, columns, intents, inserts and commits, without group-join time."""
    worker = SinkWorker(settings)
    first_message: list[float] = []
    decode = worker._decode

    def timed_decode(messages: list[Any]) -> Any:
        if messages and not first_message:
            first_message.append(time.perf_counter())
        return decode(messages)

    worker._decode = timed_decode  # type: ignore[method-assign]

    def run() -> None:
        # cProfile sees only the thread it is enabled in: the worker loop's own thread.
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        try:
            worker.run()
        finally:
            if profiler:
                profiler.disable()
                profiler.dump_stats(profile)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    client = connect(settings.clickhouse_url, settings.clickhouse_database)
    deadline = time.monotonic() + 300
    while client.command("SELECT count() FROM otel_traces") < expected:
        if time.monotonic() > deadline:
            raise RuntimeError("worker did not store all rows within 300 s")
        time.sleep(0.05)
    done = time.perf_counter()
    worker.stop()
    thread.join(30)
    return done - first_message[0]


def direct_insert(client: Any, spans: list[dict[str, Any]], batch_rows: int) -> float:
    table = otel_traces_arrow(spans)
    started = time.perf_counter()
    for offset in range(0, table.num_rows, batch_rows):
        client.insert_arrow("otel_traces", table.slice(offset, batch_rows))
    return time.perf_counter() - started


def compare_insert_paths(client: Any, spans: list[dict[str, Any]]) -> dict[str, float]:
    """rows/s of build + insert for both columnar paths, best of 3 each."""
    out = {}
    for name in ("column_oriented", "insert_arrow"):
        best = float("inf")
        for _ in range(3):
            client.command("TRUNCATE TABLE otel_traces")
            started = time.perf_counter()
            if name == "insert_arrow":
                client.insert_arrow("otel_traces", otel_traces_arrow(spans))
            else:
                client.insert(
                    "otel_traces",
                    otel_traces_columns(spans),
                    column_names=list(OTEL_TRACES_COLUMNS),
                    column_oriented=True,
                )
            best = min(best, time.perf_counter() - started)
        out[name] = len(spans) / best
    return out


def stage_rates(spans: list[dict[str, Any]], wire: str) -> dict[str, float]:
    """rows/s of the worker's two CPU stages alone, to name the bottleneck."""
    messages = messages_of(spans, wire)
    build = WRITERS["spans"].by_version[int(wire[1:])]  # what the worker calls per message
    build(avro_codec.decode_as_written("span_batch", messages[0])[1])  # lazy imports, caches
    started = time.perf_counter()
    decoded = [avro_codec.decode_as_written("span_batch", m)[1] for m in messages]
    decode_s = time.perf_counter() - started
    started = time.perf_counter()
    for rec in decoded:
        build(rec)
    build_s = time.perf_counter() - started
    return {
        f"{wire} Avro decode (fastavro)": len(spans) / decode_s,
        f"{wire} Arrow build": len(spans) / build_s,
    }


def settings_for(settings: Settings, wire: str, run: int) -> Settings:
    """Own topic, consumer group and database per wire version and run, so runs do not mix."""
    return settings.with_(
        topics=replace(settings.topics, sampled_spans=f"spans.sampled.{wire}.{run}"),
        sink_group=f"bench-sink-{wire}-{run}",
        clickhouse_database=f"bench_sink_{wire}_{run}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument("--decode-processes", type=int, default=0)
    parser.add_argument(
        "--insert-threads",
        type=int,
        default=Settings().sink_insert_threads,
        help="batches of different partitions stored at once (sink_insert_threads)",
    )
    parser.add_argument("--wire", choices=[*WIRES, *WIRE_SETS], default="both")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="worker runs per wire and direct inserts, best kept; order alternates",
    )
    parser.add_argument(
        "--profile", default="", help="cProfile the worker thread into FILE.<wire> (pstats)"
    )
    args = parser.parse_args()
    wires = WIRE_SETS.get(args.wire, [args.wire])
    with tempfile.TemporaryDirectory(prefix="bench-sink-") as tmp:
        settings = Settings(
            kafka_bootstrap=f"127.0.0.1:{free_port()}",
            clickhouse_url=f"http://127.0.0.1:{free_port()}",
            clickhouse_database="bench_sink",
            sink_streams="spans",
            sink_decode_processes=args.decode_processes,
            sink_insert_threads=args.insert_threads,
            sink_batch_rows=args.batch_rows,
            sink_batch_seconds=1.0,
            partitions=4,
        )
        stack = LocalStack(settings, Path(tmp), free_port(), say=lambda _m: None)
        try:
            stack.start_services()
            spans = [make_span(i) for i in range(args.spans)]
            worker_s: dict[str, float] = dict.fromkeys(wires, float("inf"))
            for run in range(args.repeat):
                for wire in wires:
                    wire_settings = settings_for(settings, wire, run)
                    ensure_topics(wire_settings)
                    migrate(
                        connect(settings.clickhouse_url, "default"),
                        wire_settings.clickhouse_database,
                    )
                    publish(wire_settings, spans, wire)
            for run in range(args.repeat):
                # Alternate which wire goes first: the first worker run of a round pays warm-up.
                for wire in wires if run % 2 == 0 else wires[::-1]:
                    profile = f"{args.profile}.{wire}" if args.profile else ""
                    seconds = run_worker(settings_for(settings, wire, run), len(spans), profile)
                    worker_s[wire] = min(worker_s[wire], seconds)
            admin = connect(settings.clickhouse_url, "default")
            migrate(admin, "bench_direct")
            direct = connect(settings.clickhouse_url, "bench_direct")
            # Best of --repeat as for the worker: the insert alone is as noisy as the worker.
            direct_s = float("inf")
            for _ in range(args.repeat):
                direct.command("TRUNCATE TABLE otel_traces")
                direct_s = min(direct_s, direct_insert(direct, spans, args.batch_rows))
            paths = compare_insert_paths(direct, spans[: min(len(spans), 100_000)])
            stages = {k: v for w in wires for k, v in stage_rates(spans[:100_000], w).items()}
        finally:
            stack.stop()
    direct_rate = len(spans) / direct_s
    print(
        f"spans: {len(spans)} in messages of {SPANS_PER_MESSAGE}, batch rows {args.batch_rows},"
        f" decode processes {args.decode_processes}, insert threads {args.insert_threads},"
        f" worker runs per wire {args.repeat} (best)"
    )
    for wire, seconds in worker_s.items():
        rate = len(spans) / seconds
        print(f"sink worker (1 process), {wire}:   {rate:>10,.0f} rows/s  ({seconds:.2f} s)")
        print(f"ratio worker {wire}/direct:         {rate / direct_rate:>10.2f}")
    print(f"direct insert_arrow, same data: {direct_rate:>10,.0f} rows/s  ({direct_s:.2f} s)")
    for name, rate in paths.items():
        print(f"otel_traces build+insert via {name:<16} {rate:>10,.0f} rows/s")
    for name, rate in stages.items():
        print(f"stage alone: {name:<30} {rate:>10,.0f} rows/s")


if __name__ == "__main__":
    main()

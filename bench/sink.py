"""Sink throughput: one worker end to end vs a direct clickhouse-connect insert.

Starts its own broker and ClickHouse (pinned wheels), publishes N spans to spans.sampled as
Avro batches, then measures

1. one in-process ``SinkWorker`` (consume -> Avro decode -> Arrow columns -> insert with the
   intent/dedup protocol -> commit), from its first message to the last row stored; the
   messages are ``span_batch`` v3, written by streams' own encoder from OTLP spans;
2. a direct ``client.insert_arrow`` of the same spans as one Arrow table, in the same batch
   size, into a second database: the ceiling the worker is compared with;
3. the worker's CPU stages alone (Avro decode, Arrow build).

Usage: .venv/bin/python -m bench.sink [--spans 200000] [--batch-rows 50000] [--repeat 1]
       [--insert-threads N] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
from confluent_kafka import Producer

from bench.harness import bench_settings, running_services
from core.clickhouse import connect
from core.settings import Settings
from core.topics import ensure_topics
from schemas import avro_codec
from schemas.migrations import migrate
from sinks.clickhouse_store import INSERT_SETTINGS
from sinks.decoding import decode_message
from sinks.worker import SinkWorker
from sinks.writers import WRITERS
from tracehouse.span_specs import traces_from_rows
from tracehouse.span_tables import span_messages

T0 = 1_764_000_000_000_000_000
SPANS_PER_MESSAGE = 1000


def make_span(i: int) -> dict[str, Any]:
    """A span of typical size: 4 span attributes, 3 resource attributes, every 4th an event."""
    trace = i // 8 + 1  # ids count from 1: all-zero ids are invalid
    start = T0 + i * 1000
    return {
        "tenant_id": "",
        "trace_id": f"{trace:032x}",
        "span_id": f"{i + 1:016x}",
        "parent_span_id": f"{i:016x}" if i % 8 else "",
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


def encode_message(spans: list[dict[str, Any]]) -> bytes:
    """One v3 message by streams' encoder; spans grouped by resource as an SDK batches them
    (one ResourceSpans per service and host), so each resource travels once per message."""
    grouped = sorted(spans, key=lambda s: tuple(s["resource_attributes"].items()))
    [message] = span_messages(traces_from_rows(grouped))
    return message


def messages_of(spans: list[dict[str, Any]]) -> list[bytes]:
    return [
        encode_message(spans[i : i + SPANS_PER_MESSAGE])
        for i in range(0, len(spans), SPANS_PER_MESSAGE)
    ]


def table_of(messages: list[bytes]) -> pa.Table:
    """The otel_traces rows of the messages, as the sink decodes them."""
    tables = [decode_message("spans", m).table for m in messages]
    return pa.concat_tables([t for t in tables if t is not None])


def publish(settings: Settings, messages: list[bytes]) -> None:
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20, "compression.type": "lz4"}
    )
    for n, value in enumerate(messages):
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


def direct_insert(client: Any, table: pa.Table, batch_rows: int) -> float:
    started = time.perf_counter()
    for offset in range(0, table.num_rows, batch_rows):
        client.insert_arrow(
            "otel_traces", table.slice(offset, batch_rows), settings=INSERT_SETTINGS
        )
    return time.perf_counter() - started


def stage_rates(messages: list[bytes], spans: int) -> dict[str, float]:
    """rows/s of the worker's two CPU stages alone, to name the bottleneck."""
    build = WRITERS["spans"].by_version[3]  # what the worker calls per message
    build(avro_codec.decode_as_written("span_batch", messages[0])[1])  # lazy imports, caches
    started = time.perf_counter()
    decoded = [avro_codec.decode_as_written("span_batch", m)[1] for m in messages]
    decode_s = time.perf_counter() - started
    started = time.perf_counter()
    for rec in decoded:
        build(rec)
    build_s = time.perf_counter() - started
    return {
        "v3 Avro decode (fastavro)": spans / decode_s,
        "v3 Arrow build": spans / build_s,
    }


def settings_for(settings: Settings, run: int) -> Settings:
    """Own topic, consumer group and database per run, so runs do not mix."""
    return settings.with_(
        topics=replace(settings.topics, sampled_spans=f"spans.sampled.{run}"),
        sink_group=f"bench-sink-{run}",
        clickhouse_database=f"bench_sink_{run}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument(
        "--insert-threads",
        type=int,
        default=Settings().sink_insert_threads,
        help="batches of different partitions stored at once (sink_insert_threads)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="worker runs and direct inserts, best kept"
    )
    parser.add_argument("--profile", default="", help="cProfile the worker thread into FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sink-") as tmp:
        settings = bench_settings(
            clickhouse_database="bench_sink",
            sink_streams="spans",
            sink_insert_threads=args.insert_threads,
            sink_batch_rows=args.batch_rows,
            sink_batch_seconds=1.0,
            partitions=4,
        )
        with running_services(settings, Path(tmp)):
            spans = args.spans
            messages = messages_of([make_span(i) for i in range(spans)])
            worker_s = float("inf")
            for run in range(args.repeat):
                run_settings = settings_for(settings, run)
                ensure_topics(run_settings)
                admin = connect(settings.clickhouse_url, "default")
                migrate(admin, run_settings.clickhouse_database)
                publish(run_settings, messages)
            for run in range(args.repeat):
                profile = f"{args.profile}.{run}" if args.profile else ""
                seconds = run_worker(settings_for(settings, run), spans, profile)
                worker_s = min(worker_s, seconds)
            admin = connect(settings.clickhouse_url, "default")
            migrate(admin, "bench_direct")
            direct = connect(settings.clickhouse_url, "bench_direct")
            # Best of --repeat as for the worker: the insert alone is as noisy as the worker.
            direct_s = float("inf")
            table = table_of(messages)
            for _ in range(args.repeat):
                direct.command("TRUNCATE TABLE otel_traces")
                direct_s = min(direct_s, direct_insert(direct, table, args.batch_rows))
            stage_messages = messages[: 100_000 // SPANS_PER_MESSAGE]
            stages = stage_rates(stage_messages, min(spans, 100_000))
    direct_rate = spans / direct_s
    print(
        f"spans: {spans} in messages of {SPANS_PER_MESSAGE}, batch rows {args.batch_rows},"
        f" insert threads {args.insert_threads}, worker runs {args.repeat} (best)"
    )
    rate = spans / worker_s
    print(f"sink worker (1 process), v3:   {rate:>10,.0f} rows/s  ({worker_s:.2f} s)")
    print(f"ratio worker v3/direct:         {rate / direct_rate:>10.2f}")
    print(f"direct insert_arrow, same data: {direct_rate:>10,.0f} rows/s  ({direct_s:.2f} s)")
    for name, rate in stages.items():
        print(f"stage alone: {name:<30} {rate:>10,.0f} rows/s")


if __name__ == "__main__":
    main()

"""Ingest throughput: spans/s through one ingest process vs a raw confluent-kafka produce.

Starts its own Tansu broker and one ingest process (OTLP/HTTP only), then for ``--seconds``
posts pre-built OTLP protobuf requests with ``--concurrency`` connections and counts spans
Kafka acknowledged (HTTP 200). In the same run it produces exactly the bytes ingest writes
(each request pre-split by partition, same producer settings) with a bare confluent-kafka
producer, and prints both rates and their ratio. CPU seconds of the ingest process are read
from /proc so spans per CPU-second (per core) is reported too; the load generator runs in
this process and competes for the same cores.

    .venv/bin/python -m bench.ingest --seconds 10 --concurrency 16 --traces 100
    .venv/bin/python -m bench.ingest --profile /tmp/ingest.prof   # cProfile the ingest process
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from confluent_kafka import Producer

from bench.harness import cpu_seconds
from core.kafka import KafkaConnection
from core.settings import Settings, Topics
from core.topics import ensure_topics
from deploy.local.broker import start_broker
from deploy.local.ports import free_port
from deploy.local.stack import http_ok
from ingest.kafka_publisher import producer_config
from ingest.otlp_split import bounded_chunks, split_by_partition
from tracehouse.demo_traces import make_request

ROOT = Path(__file__).resolve().parents[1]


async def load(
    url: str, bodies: list[bytes], spans_per_body: int, seconds: float, concurrency: int
) -> tuple[int, int, float]:
    ok = failed = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Content-Type": "application/x-protobuf"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(i: int) -> None:
            nonlocal ok, failed
            n = i
            while time.perf_counter() < deadline:
                async with session.post(url, data=bodies[n % len(bodies)], headers=headers) as r:
                    await r.read()
                    if r.status == 200:
                        ok += spans_per_body
                    else:
                        failed += 1
                n += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return ok, failed, time.perf_counter() - started


def raw_produce(
    bootstrap: str, topic: str, messages: list[tuple[int, bytes, bytes]], rounds: int
) -> float:
    """Seconds to produce ``rounds`` x ``messages`` with the same producer settings, acked."""
    producer = Producer(producer_config(KafkaConnection(bootstrap)))
    errors: list[object] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    started = time.perf_counter()
    for _ in range(rounds):
        for partition, key, value in messages:
            while True:
                try:
                    producer.produce(topic, value, key, partition=partition, on_delivery=report)
                    break
                except BufferError:
                    producer.poll(0.01)
            producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"raw produce failed: {errors[0]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--traces", type=int, default=100, help="traces (x5 spans) per request")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--profile", help="write a cProfile of the ingest process here")
    args = parser.parse_args()

    broker_port = free_port()
    broker = start_broker(broker_port)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    settings = Settings(
        kafka_bootstrap=f"127.0.0.1:{broker_port}",
        topics=Topics(raw_spans="otlp_spans_bench"),
        partitions=args.partitions,
        ingest_http_port=free_port(),
        ingest_grpc_port=0,
        ingest_zipkin_port=0,
    )
    ingest = None
    finished = False
    try:
        ensure_topics(settings)
        env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable]
        if args.profile:
            cmd += ["-m", "cProfile", "-o", args.profile]
            cmd += [str(ROOT / "tracehouse" / "cli.py"), "ingest"]
        else:
            cmd += ["-m", "tracehouse.cli", "ingest"]
        log = open(run_dir / "ingest.log", "wb")  # noqa: SIM115
        ingest = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        base = f"http://127.0.0.1:{settings.ingest_http_port}"
        deadline = time.monotonic() + 30
        while not http_ok(f"{base}/health"):
            if time.monotonic() > deadline or ingest.poll() is not None:
                raise RuntimeError(f"ingest did not start; see {run_dir / 'ingest.log'}")
            time.sleep(0.1)

        requests = [make_request(args.traces, seed=i) for i in range(20)]
        bodies = [r.SerializeToString() for r in requests]
        spans_per_body = args.traces * 5
        cpu_before = cpu_seconds(ingest.pid)
        ok, failed, elapsed = asyncio.run(
            load(f"{base}/v1/traces", bodies, spans_per_body, args.seconds, args.concurrency)
        )
        ingest_cpu = cpu_seconds(ingest.pid) - cpu_before

        # The exact messages ingest writes for these requests.
        messages: list[tuple[int, bytes, bytes]] = []
        for req in requests:
            split = split_by_partition(req, args.partitions)
            for p, td in split.by_partition.items():
                for chunk in bounded_chunks(td, settings.ingest_max_message_bytes)[0]:
                    messages.append((p, chunk.first_trace_id, chunk.payload))
        rounds = max(1, round(ok / (spans_per_body * len(requests))))
        raw_cpu_before = time.process_time()
        raw_elapsed = raw_produce(settings.kafka_bootstrap, "otlp_spans_bench", messages, rounds)
        raw_cpu = time.process_time() - raw_cpu_before
        raw_spans = rounds * spans_per_body * len(requests)

        ingest_rate = ok / elapsed
        raw_rate = raw_spans / raw_elapsed
        body_kib = sum(len(b) for b in bodies) / len(bodies) / 1024
        print(f"date           {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(
            f"request        {spans_per_body} spans, {body_kib:.0f} KiB protobuf, "
            f"{args.partitions} partitions, concurrency {args.concurrency}"
        )
        print(
            f"ingest         {ok} spans in {elapsed:.1f} s = {ingest_rate:,.0f} spans/s "
            f"({failed} failed requests)"
        )
        print(
            f"ingest cpu     {ingest_cpu:.1f} s = {ok / max(ingest_cpu, 1e-9):,.0f} spans per "
            f"CPU-second"
        )
        print(
            f"raw produce    {raw_spans} spans in {raw_elapsed:.1f} s = {raw_rate:,.0f} spans/s "
            f"({raw_cpu:.1f} CPU-s in this process)"
        )
        print(f"ratio          ingest / raw = {ingest_rate / raw_rate:.2f}")
        finished = True
    finally:
        if ingest is not None and ingest.poll() is None:
            ingest.terminate()
            ingest.wait(30)
        broker.kill()
        broker.wait()
        if finished:  # keep the ingest log only when something went wrong
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

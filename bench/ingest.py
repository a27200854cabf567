"""Ingest throughput: spans/s through one ingest process vs a raw confluent-kafka produce.

Starts its own Tansu broker and one ingest process (OTLP/HTTP only), then for ``--seconds``
posts pre-built OTLP protobuf requests with ``--concurrency`` connections and counts spans
Kafka acknowledged (HTTP 200). ``--protocol jaeger_thrift`` posts the same spans as Jaeger
Thrift binary batches to ``/api/traces`` instead (one batch per service, as a Jaeger client
sends them; 202), written with Apache Thrift's library and jaeger-client's Thrift classes.
In the same run it produces exactly the bytes ingest writes (each request pre-split by
partition, same producer settings) with a bare confluent-kafka producer, and prints both
rates and their ratio. CPU seconds of the ingest process are read from /proc so spans per
CPU-second (per core) is reported too; the load generator runs in this process and competes
for the same cores.

    .venv/bin/python -m bench.ingest --seconds 10 --concurrency 16 --traces 100
    .venv/bin/python -m bench.ingest --profile /tmp/ingest.prof   # cProfile the ingest process
    .venv/bin/python -m bench.ingest --protocol jaeger_thrift --seconds 3
    .venv/bin/python -m bench.ingest --protocol zipkin_v2_proto --seconds 3

``--protocol zipkin_v1_json`` / ``zipkin_v2_json`` / ``zipkin_v2_proto`` post the same spans
as Zipkin, encoded by py_zipkin (the Zipkin client from PyPI), to ``/api/v1/spans`` or
``/api/v2/spans``; the raw baseline then produces what ingest writes for those bodies.
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
from typing import Any

import aiohttp
from confluent_kafka import Producer
from opentelemetry.proto.trace.v1 import trace_pb2

from bench.harness import cpu_seconds
from bench.jaeger_bodies import jaeger_thrift_bodies
from core.kafka import KafkaConnection
from core.settings import Settings, Topics
from core.topics import ensure_topics
from deploy.local.broker import start_broker
from deploy.local.ports import free_port
from deploy.local.stack import http_ok
from ingest import zipkin, zipkin_proto, zipkin_v1
from ingest.jaeger_decode import decode_thrift_batch
from ingest.kafka_publisher import producer_config
from ingest.otlp_split import bounded_chunks, split_by_partition
from tracehouse.demo_traces import make_request

ROOT = Path(__file__).resolve().parents[1]

# Zipkin protocol -> (path, content type, py_zipkin encoding name, ingest's decoder)
ZIPKIN = {
    "zipkin_v1_json": ("/api/v1/spans", "application/json", "V1_JSON", zipkin_v1.decode_request),
    "zipkin_v2_json": ("/api/v2/spans", "application/json", "V2_JSON", zipkin.decode_request),
    "zipkin_v2_proto": (
        "/api/v2/spans",
        "application/x-protobuf",
        "V2_PROTO3",
        zipkin_proto.decode_request,
    ),
}


def _text(value: Any) -> str:
    return str(getattr(value, value.WhichOneof("value") or "string_value"))


def zipkin_body(request: trace_pb2.TracesData, encoding_name: str) -> bytes:
    """The request's spans as a py_zipkin client would post them."""
    from py_zipkin import Kind
    from py_zipkin.encoding import Encoding, get_encoder
    from py_zipkin.encoding._helpers import Span, create_endpoint

    kinds = {2: Kind.SERVER, 3: Kind.CLIENT, 4: Kind.PRODUCER, 5: Kind.CONSUMER}
    encoder = get_encoder(Encoding[encoding_name])
    encoded = []
    for rs in request.resource_spans:
        service = next(
            (a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), ""
        )
        endpoint = create_endpoint(0, service, "10.0.0.1")
        for ss in rs.scope_spans:
            for span in ss.spans:
                start = span.start_time_unix_nano / 1e9
                encoded.append(
                    encoder.encode_span(
                        Span(
                            trace_id=span.trace_id.hex(),
                            name=span.name,
                            parent_id=span.parent_span_id.hex() or None,
                            span_id=span.span_id.hex(),
                            kind=kinds.get(span.kind, Kind.LOCAL),
                            timestamp=start,
                            duration=max(span.end_time_unix_nano / 1e9 - start, 1e-6),
                            local_endpoint=endpoint,
                            annotations={e.name: e.time_unix_nano / 1e9 for e in span.events},
                            tags={a.key: _text(a.value) for a in span.attributes},
                        )
                    )
                )
    body = encoder.encode_queue(encoded)
    return body.encode() if isinstance(body, str) else body


async def load(
    url: str,
    bodies: list[tuple[bytes, int]],
    content_type: str,
    seconds: float,
    concurrency: int,
) -> tuple[int, int, float]:
    """(spans acknowledged, failed requests, seconds); ``bodies`` are (body, spans in it)."""
    ok = failed = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Content-Type": content_type}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(i: int) -> None:
            nonlocal ok, failed
            n = i
            while time.perf_counter() < deadline:
                body, spans = bodies[n % len(bodies)]
                async with session.post(url, data=body, headers=headers) as r:
                    await r.read()
                    if r.status in (200, 202):
                        ok += spans
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
    parser.add_argument(
        "--protocol",
        choices=("otlp", "jaeger_thrift", *ZIPKIN),
        default="otlp",
        help="OTLP/HTTP protobuf, Jaeger Thrift binary over HTTP (/api/traces), or Zipkin",
    )
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
        ingest_zipkin_port=free_port() if args.protocol in ZIPKIN else 0,
        ingest_jaeger_enabled=args.protocol == "jaeger_thrift",
        ingest_jaeger_http_port=free_port(),
        ingest_jaeger_grpc_port=0,
        ingest_jaeger_compact_port=0,
        ingest_jaeger_binary_port=0,
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
        if args.protocol == "jaeger_thrift":
            bodies = [b for r in requests for b in jaeger_thrift_bodies(r)]
            url = f"http://127.0.0.1:{settings.ingest_jaeger_http_port}/api/traces"
            content_type = "application/x-thrift"
            # What ingest publishes: the Jaeger translation of each body.
            requests = [decode_thrift_batch(body).data for body, _ in bodies]
        elif args.protocol in ZIPKIN:
            path, content_type, encoding_name, decode = ZIPKIN[args.protocol]
            bodies = [(zipkin_body(r, encoding_name), args.traces * 5) for r in requests]
            url = f"http://127.0.0.1:{settings.ingest_zipkin_port}{path}"
            # What ingest publishes (py_zipkin rounds times to microseconds).
            requests = [decode(body).data for body, _ in bodies]
        else:
            bodies = [(r.SerializeToString(), args.traces * 5) for r in requests]
            url, content_type = f"{base}/v1/traces", "application/x-protobuf"
        spans_per_round = sum(spans for _, spans in bodies)
        cpu_before = cpu_seconds(ingest.pid)
        ok, failed, elapsed = asyncio.run(
            load(url, bodies, content_type, args.seconds, args.concurrency)
        )
        ingest_cpu = cpu_seconds(ingest.pid) - cpu_before

        # The exact messages ingest writes for these requests.
        messages: list[tuple[int, bytes, bytes]] = []
        for req in requests:
            split = split_by_partition(req, args.partitions)
            for p, td in split.by_partition.items():
                for chunk in bounded_chunks(td, settings.ingest_max_message_bytes)[0]:
                    messages.append((p, chunk.first_trace_id, chunk.payload))
        rounds = max(1, round(ok / spans_per_round))
        raw_cpu_before = time.process_time()
        raw_elapsed = raw_produce(settings.kafka_bootstrap, "otlp_spans_bench", messages, rounds)
        raw_cpu = time.process_time() - raw_cpu_before
        raw_spans = rounds * spans_per_round

        ingest_rate = ok / elapsed
        raw_rate = raw_spans / raw_elapsed
        body_kib = sum(len(b) for b, _ in bodies) / len(bodies) / 1024
        spans_per_body = spans_per_round / len(bodies)
        print(f"date           {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(
            f"request        {args.protocol}: {spans_per_body:.0f} spans, {body_kib:.0f} KiB, "
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

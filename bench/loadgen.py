"""Load generator: realistic traces over OTLP/gRPC, OTLP/HTTP (protobuf) or straight to Kafka.

Traces come from ``tracehouse.loadgen_traces`` (fan-out trees over ``--services`` services,
errors, slow traces, late spans, bounded attribute cardinality), deterministic for a ``--seed``
(same ids, trees and attributes; timestamps are placed relative to the time of the run).
All requests are built before the clock starts, so generation never throttles the send rate;
the generation rate is printed as well. Late spans of a trace are sent ``--late-delay`` seconds
after the request carrying the rest of it. ``--rate`` paces on-time spans (0 = as fast as
possible); ``--concurrency`` requests are in flight at once.

Kafka mode writes what ingest writes: each request split by partition with
``ingest.otlp_split.split_by_partition`` (one ``TracesData`` per partition), key = the 16 raw
bytes of the first trace id, ``partitioner: murmur2_random`` (librdkafka picks the partition
from the key; a mismatch with ingest's mapping is counted as an error).

    .venv/bin/python -m bench.loadgen --target http://127.0.0.1:4318/v1/traces --spans 100000
    .venv/bin/python -m bench.loadgen --target grpc://127.0.0.1:4317 --rate 20000
    .venv/bin/python -m bench.loadgen --target kafka://127.0.0.1:9092/otlp_spans --partitions 8
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from core.kafka import KafkaConnection
from core.settings import Settings
from ingest.kafka_publisher import producer_config
from ingest.otlp_split import bounded_chunks, split_by_partition
from tracehouse.loadgen_traces import LoadProfile, TraceGenerator

ROOT = Path(__file__).resolve().parents[1]

GRPC_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
Message = tuple[int, bytes, bytes]  # partition, key, value


@dataclass
class Item:
    """One request (or its Kafka messages), pre-serialized, plus its late follow-up."""

    body: bytes
    spans: int
    messages: list[Message] = field(default_factory=list)
    late: Item | None = None
    probe: bytes = b""  # a trace id whose arrival in storage measures end-to-end latency


@dataclass
class Result:
    sent: int = 0
    acked: int = 0
    rejected: int = 0  # spans the receiver reported as rejected (partial success)
    failed_requests: int = 0
    failed_spans: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    generate_seconds: float = 0.0
    generated: int = 0
    bytes_sent: int = 0
    # probe trace id (hex) -> monotonic time its request was sent
    probes: dict[str, float] = field(default_factory=dict)

    def note(self, error: str) -> None:
        if len(self.errors) < 5:
            self.errors.append(error)


def build_items(
    profile: LoadProfile,
    seed: int,
    spans: int,
    traces_per_request: int,
    partitions: int = 0,
    probe_every: int = 0,
    probe_filter: Callable[[bytes], bool] | None = None,
) -> tuple[list[Item], float]:
    """Requests holding at least ``spans`` spans; Kafka messages too when ``partitions`` > 0.

    A probe is the first trace of a request that ``probe_filter`` accepts: with tail sampling
    only kept traces ever become queryable, so e2e picks probes its policy will keep.
    """
    gen = TraceGenerator(profile, seed)
    items: list[Item] = []
    total = 0
    started = time.perf_counter()
    while total < spans:
        batch = gen.batch(traces_per_request, time.time_ns())
        item = _item(batch.request, batch.spans, partitions)
        if batch.late_request is not None:
            item.late = _item(batch.late_request, batch.late_spans, partitions)
        if probe_every and len(items) % probe_every == 0:
            item.probe = next(
                (t for t in batch.trace_ids if probe_filter is None or probe_filter(t)), b""
            )
        items.append(item)
        total += batch.spans + batch.late_spans
    return items, time.perf_counter() - started


def _item(
    request: trace_service_pb2.ExportTraceServiceRequest, spans: int, partitions: int
) -> Item:
    item = Item(request.SerializeToString(), spans)
    if partitions:
        split = split_by_partition(request, partitions)  # type: ignore[arg-type,unused-ignore]
        for p, data in split.by_partition.items():
            for chunk in bounded_chunks(data, 1_000_000)[0]:
                item.messages.append((p, chunk.first_trace_id, chunk.payload))
    return item


Send = Callable[[Item], Awaitable[int]]  # returns spans the receiver rejected; raises on failure


async def run_load(
    items: list[Item],
    send: Send,
    result: Result,
    rate: float = 0.0,
    concurrency: int = 8,
    late_delay: float = 2.0,
    progress: bool = True,
) -> Result:
    """Send every item (and its late part ``late_delay`` s later) with bounded concurrency."""
    total = sum(i.spans + (i.late.spans if i.late else 0) for i in items)
    late: list[tuple[float, int, Item]] = []
    next_index = 0
    paced = 0
    started = time.monotonic()

    async def send_one(item: Item) -> None:
        result.sent += item.spans
        result.bytes_sent += len(item.body)
        try:
            rejected = await send(item)
        except Exception as exc:  # every failure is counted, the load goes on
            result.failed_requests += 1
            result.failed_spans += item.spans
            result.note(f"{type(exc).__name__}: {exc}")
            return
        result.rejected += rejected
        result.acked += item.spans - rejected

    async def worker() -> None:
        nonlocal next_index, paced
        while True:
            now = time.monotonic()
            if late and late[0][0] <= now:
                await send_one(heapq.heappop(late)[2])
            elif next_index < len(items):
                item = items[next_index]
                next_index += 1
                if rate > 0:
                    due = started + paced / rate
                    paced += item.spans
                    if due > now:
                        await asyncio.sleep(due - now)
                if item.late is not None:
                    heapq.heappush(late, (time.monotonic() + late_delay, next_index, item.late))
                if item.probe:
                    result.probes[item.probe.hex()] = time.monotonic()
                await send_one(item)
            elif late:
                await asyncio.sleep(max(0.0, late[0][0] - now))
            else:
                return

    reporter = asyncio.create_task(_report(result, total, started)) if progress else None
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.monotonic() - started
    if reporter is not None:
        reporter.cancel()
        _progress_line(result, total, started, final=True)
    return result


async def _report(result: Result, total: int, started: float) -> None:
    tty = sys.stderr.isatty()
    while True:
        await asyncio.sleep(0.5 if tty else 5.0)
        _progress_line(result, total, started)


def _progress_line(result: Result, total: int, started: float, final: bool = False) -> None:
    done = result.acked + result.rejected + result.failed_spans
    elapsed = max(time.monotonic() - started, 1e-9)
    width = 30
    filled = int(width * min(done, total) / max(total, 1))
    line = (
        f"[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} spans "
        f"{done / elapsed:,.0f}/s  errors {result.failed_requests}"
    )
    end = "\n" if final or not sys.stderr.isatty() else ""
    sys.stderr.write(("\r" if sys.stderr.isatty() else "") + line + end)
    sys.stderr.flush()


# -- senders ----------------------------------------------------------------------------------


async def http_sender(url: str, concurrency: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
    headers = {"Content-Type": "application/x-protobuf"}

    async def send(item: Item) -> int:
        async with session.post(url, data=item.body, headers=headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
        answer = trace_service_pb2.ExportTraceServiceResponse.FromString(body)
        return int(answer.partial_success.rejected_spans)

    return send, session.close


async def grpc_sender(target: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import grpc

    channel = grpc.aio.insecure_channel(target)
    export = channel.unary_unary(GRPC_EXPORT)

    async def send(item: Item) -> int:
        body = await export(item.body, timeout=60)
        answer = trace_service_pb2.ExportTraceServiceResponse.FromString(body)
        return int(answer.partial_success.rejected_spans)

    async def close() -> None:
        await channel.close()

    return send, close


async def kafka_sender(bootstrap: str, topic: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    from confluent_kafka import Producer

    # Linger pinned at 5 ms: ingest's 25 ms default trades ack latency for fewer produce
    # requests, but this producer waits for each request's acks with bounded concurrency, so a
    # longer linger would cap its rate (and e2e's raw-produce baseline) below the broker's.
    producer = Producer(producer_config(KafkaConnection(bootstrap), linger_ms=5))
    running = True

    async def poll() -> None:
        while running:
            producer.poll(0)
            await asyncio.sleep(0.002)

    poller = asyncio.create_task(poll())

    async def send(item: Item) -> int:
        loop = asyncio.get_running_loop()
        futures = []
        for partition, key, value in item.messages:
            fut: asyncio.Future[None] = loop.create_future()

            def done(err: Any, msg: Any, fut: Any = fut, want: int = partition) -> None:
                if fut.done():
                    return
                if err is not None:
                    fut.set_exception(RuntimeError(str(err)))
                elif msg.partition() != want:
                    fut.set_exception(
                        RuntimeError(f"murmur2 put key on {msg.partition()}, ingest uses {want}")
                    )
                else:
                    fut.set_result(None)

            while True:
                try:
                    producer.produce(topic, value, key, on_delivery=done)
                    break
                except BufferError:
                    await asyncio.sleep(0.01)
            futures.append(fut)
        await asyncio.gather(*futures)
        return 0

    async def close() -> None:
        nonlocal running
        await asyncio.get_running_loop().run_in_executor(None, producer.flush, 30)
        running = False
        await poller

    return send, close


async def open_sender(target: str, concurrency: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    if target.startswith(("http://", "https://")):
        return await http_sender(target, concurrency)
    if target.startswith("grpc://"):
        return await grpc_sender(target.removeprefix("grpc://"))
    if target.startswith("kafka://"):
        bootstrap, _, topic = target.removeprefix("kafka://").partition("/")
        return await kafka_sender(bootstrap, topic or "otlp_spans")
    raise ValueError(f"unknown target {target!r}: use http://, grpc:// or kafka://")


async def send_all(target: str, items: list[Item], result: Result, **options: Any) -> Result:
    send, close = await open_sender(target, options.get("concurrency", 8))
    try:
        return await run_load(items, send, result, **options)
    finally:
        await close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared with bench/e2e.py."""
    parser.add_argument("--spans", type=int, default=100_000, help="spans to send (at least)")
    parser.add_argument("--rate", type=float, default=0, help="spans/s, 0 = as fast as possible")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--services", type=int, default=10, help="5-20 typical (2-20)")
    parser.add_argument("--traces-per-request", type=int, default=20)
    parser.add_argument("--max-fanout", type=int, default=3)
    parser.add_argument("--max-depth", type=int, default=4)
    parser.add_argument("--error-rate", type=float, default=0.01)
    parser.add_argument("--slow-rate", type=float, default=0.01)
    parser.add_argument("--late-rate", type=float, default=0.05, help="traces with late spans")
    parser.add_argument("--late-share", type=float, default=0.3, help="of a late trace's spans")
    parser.add_argument("--late-delay", type=float, default=2.0, help="seconds")
    parser.add_argument("--cardinality", type=int, default=1000, help="distinct user.id values")
    parser.add_argument("--no-progress", action="store_true")


def profile_from(args: argparse.Namespace) -> LoadProfile:
    return LoadProfile(
        services=args.services,
        max_fanout=args.max_fanout,
        max_depth=args.max_depth,
        error_rate=args.error_rate,
        slow_rate=args.slow_rate,
        late_trace_rate=args.late_rate,
        late_share=args.late_share,
        cardinality=args.cardinality,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--target",
        required=True,
        help="http://host:port/v1/traces | grpc://host:port | kafka://host:port/topic",
    )
    parser.add_argument(
        "--partitions", type=int, default=Settings().partitions, help="of the topic (kafka://)"
    )
    add_arguments(parser)
    args = parser.parse_args()
    kafka = args.target.startswith("kafka://")
    items, gen_seconds = build_items(
        profile_from(args),
        args.seed,
        args.spans,
        args.traces_per_request,
        partitions=args.partitions if kafka else 0,
    )
    result = Result(generate_seconds=gen_seconds)
    result.generated = sum(i.spans + (i.late.spans if i.late else 0) for i in items)
    asyncio.run(
        send_all(
            args.target,
            items,
            result,
            rate=args.rate,
            concurrency=args.concurrency,
            late_delay=args.late_delay,
            progress=not args.no_progress,
        )
    )
    print_result(result)
    return 1 if result.failed_requests or result.rejected else 0


def print_result(result: Result) -> None:
    print(
        f"generated     {result.generated:,} spans in {result.generate_seconds:.1f} s = "
        f"{result.generated / max(result.generate_seconds, 1e-9):,.0f} spans/s"
    )
    print(
        f"sent          {result.sent:,} spans, {result.bytes_sent / 1e6:.1f} MB, "
        f"in {result.seconds:.1f} s"
    )
    print(
        f"acked         {result.acked:,} spans = {result.acked / max(result.seconds, 1e-9):,.0f}"
        f" spans/s (incl. the late-span wait)"
    )
    print(
        f"errors        {result.failed_requests} failed requests ({result.failed_spans:,} spans), "
        f"{result.rejected:,} spans rejected"
    )
    for error in result.errors:
        print(f"  e.g.        {error}")


if __name__ == "__main__":
    sys.exit(main())

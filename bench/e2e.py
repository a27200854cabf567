"""End to end: the whole local stack on this machine, N spans in, every span accounted for.

Starts ``deploy.local.stack.LocalStack`` on free ports in a temp run dir (Tansu broker, chdb
ClickHouse server, ingest, streams, sink, query: what ``tracehouse up --auto-ports`` runs), sends
``--spans`` spans with ``bench/loadgen.py``'s generator over ``--protocol``, waits for the
pipeline to drain and prints:

- ingest-acked spans/s (acked spans / send time, incl. the final late-span delay) and
  end-to-end stored spans/s (stored spans / time from first send until the span count in
  ``otel_traces`` reached its final value);
- end-to-end latency p50/p99, span sent -> queryable: the first trace of every k-th request is
  a probe; its send time is taken just before its request goes out, and a poller thread asks
  ClickHouse every 0.2 s which outstanding probe trace ids are in ``otel_traces_trace_id_ts``
  (filled by the same insert as ``otel_traces``). Resolution ~0.2 s + query time;
- CPU seconds (user+sys from /proc/<pid>/stat, incl. each process's children) during the
  load and drain, and peak RSS (VmHWM from /proc/<pid>/status) per component;
- bytes per span on disk (``system.parts`` active parts of ``otel_traces``);
- the accounting identity ``received = stored + sampled_out + rejected`` (terms printed; exit
  code 1 if it fails or the pipeline does not drain);
- a baseline from the same run: the same spans, split by partition as ingest does, produced
  straight to a separate topic with confluent-kafka (``bench/loadgen.py``'s Kafka sender),
  and the loadgen's own generation rate; plus the ratio stored rate / raw produce rate.

    .venv/bin/python bench/e2e.py --spans 300000 [--protocol http|grpc|kafka] [--policy tail]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.harness import (
    bench_settings,
    cpu_seconds,
    machine_busy_seconds,
    metric_sum,
    peak_rss_mb,
    quantile,
    run_queue_seconds,
    scrape,
)
from core.clickhouse import connect
from core.settings import Settings, Topics
from core.topics import ensure_topics
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from streams.trace_hash import in_sample

ROOT = Path(__file__).resolve().parents[1]

TAIL_SAMPLE_PERCENT = 10
TAIL_POLICY = {
    "decision_wait": "5s",
    "policies": [
        {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
        {"name": "slow", "type": "latency", "latency": {"threshold_ms": 1000}},
        {
            "name": "sample",
            "type": "probabilistic",
            "probabilistic": {"sampling_percentage": TAIL_SAMPLE_PERCENT},
        },
    ],
}


def kept_by_tail_policy(trace_id: bytes) -> bool:
    """Whether TAIL_POLICY's probabilistic policy keeps the trace, whatever its spans hold.

    Probes are chosen this way under tail sampling: a dropped probe never becomes queryable,
    and the ~10 % that happened to be kept were too few for a latency trend.
    """
    return in_sample(trace_id, TAIL_SAMPLE_PERCENT)


KEEP_ALL = {"policies": [{"name": "keep-all", "type": "always_sample"}]}


# -- ClickHouse and metrics probes -------------------------------------------------------------


@dataclass
class Watcher:
    """Polls ClickHouse during the run: probe traces' first appearance and the span count."""

    settings: Settings
    probes: dict[str, float]
    seen: dict[str, float] = field(default_factory=dict)
    counts: list[tuple[float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        client = connect(self.settings.clickhouse_url, self.settings.clickhouse_database)
        last_count = 0.0
        while not self.stop.is_set():
            waiting = [t for t in list(self.probes) if t not in self.seen]
            if waiting:
                found = client.query(
                    "SELECT DISTINCT TraceId FROM otel_traces_trace_id_ts "
                    "WHERE TraceId IN {ids:Array(String)}",
                    parameters={"ids": waiting},
                ).result_rows
                now = time.monotonic()
                for (trace_id,) in found:
                    self.seen.setdefault(trace_id, now)
            if time.monotonic() - last_count >= 0.5:
                last_count = time.monotonic()
                count = int(client.command("SELECT count() FROM otel_traces"))
                self.counts.append((last_count, count))
            self.stop.wait(0.2)

    def latencies(self, part: slice = slice(None)) -> list[float]:
        """Sorted latencies of the seen probes among ``part`` of them in send order."""
        chosen = sorted(self.probes.items(), key=lambda kv: kv[1])[part]
        return sorted(self.seen[t] - sent for t, sent in chosen if t in self.seen)


CLICKHOUSE_EVENTS = (
    "SelectQuery",
    "InsertQuery",
    "InsertedRows",
    "Merge",
    "MergedRows",
    "MergeTotalMilliseconds",
)


def clickhouse_events(client: Any) -> dict[str, int]:
    """The server's cumulative ProfileEvents that explain its CPU: queries, inserts, merges."""
    rows = client.query(
        "SELECT event, value FROM system.events WHERE event IN {names:Array(String)}",
        parameters={"names": list(CLICKHOUSE_EVENTS)},
    ).result_rows
    return {str(name): int(value) for name, value in rows}


@dataclass
class Accounting:
    received: int
    stored: int
    sampled_out: int
    rejected: int
    detail: dict[str, int]

    @property
    def balanced(self) -> bool:
        return self.received == self.stored + self.sampled_out + self.rejected


def accounting(settings: Settings, client: Any, protocol: str, kafka_acked: int) -> Accounting:
    """The identity's terms; see bench/README.md for which counter forms which term."""
    counters: dict[str, int] = {}
    for name, value in client.query(
        "SELECT Name, sum(Value) FROM pipeline_counters FINAL GROUP BY Name"
    ).result_rows:
        counters[str(name)] = int(value)
    stored = int(client.command("SELECT count() FROM otel_traces"))
    ingest = scrape(f"http://127.0.0.1:{settings.ingest_http_port}/metrics")
    detail = {
        "ingest spans_received": metric_sum(ingest, "tracehouse_ingest_spans_received_total"),
        "ingest spans_accepted": metric_sum(ingest, "tracehouse_ingest_spans_accepted_total"),
        "ingest spans_rejected": metric_sum(ingest, "tracehouse_ingest_spans_rejected_total"),
        "ingest spans_sampled_out": metric_sum(ingest, "tracehouse_ingest_spans_sampled_out_total"),
        "loadgen acked": kafka_acked,
        "streams spans_received": counters.get("spans_received", 0),
        "streams spans_sampled": counters.get("spans_sampled", 0),
        "streams spans_sampled_out": counters.get("spans_sampled_out", 0),
        "streams spans_evicted": counters.get("spans_evicted", 0),
        "streams messages_rejected": counters.get("messages_rejected", 0),
        "counters spans_rejected": counters.get("spans_rejected", 0),
        "streams spans_duplicate": counters.get("spans_duplicate", 0),
    }
    # Straight to the topic there is no ingest in the path: the broker's acks are the input.
    received = kafka_acked if protocol == "kafka" else detail["ingest spans_received"]
    sampled_out = (
        detail["ingest spans_sampled_out"]
        + detail["streams spans_sampled_out"]
        + detail["streams spans_evicted"]
    )
    # Copies of spans (client retries) are stored once: they count with the rejected here.
    rejected = (
        detail["ingest spans_rejected"]
        + detail["counters spans_rejected"]
        + detail["streams spans_duplicate"]
    )
    return Accounting(received, stored, sampled_out, rejected, detail)


# -- the run -----------------------------------------------------------------------------------


def make_settings(args: argparse.Namespace, run_dir: Path) -> tuple[Settings, int]:
    overrides: dict[str, Any] = {}
    defaults = Settings()
    for item in args.setting:
        name, _, value = item.partition("=")
        kind = type(getattr(defaults, name))
        overrides[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    settings = bench_settings(
        partitions=args.partitions, streams_otlp_scan=args.otlp_scan, **overrides
    )
    if args.policy == "tail" or args.decision_wait is not None:
        doc: dict[str, Any] = dict(TAIL_POLICY) if args.policy == "tail" else dict(KEEP_ALL)
        if args.decision_wait is not None:
            doc["decision_wait"] = f"{args.decision_wait}s"
        policy = run_dir / "policy.json"  # JSON is YAML
        policy.write_text(json.dumps(doc))
        settings = settings.with_(sampling_policy_file=str(policy))
    return settings, free_port()


def target_for(protocol: str, s: Settings) -> str:
    if protocol == "http":
        return f"http://127.0.0.1:{s.ingest_http_port}/v1/traces"
    if protocol == "grpc":
        return f"grpc://127.0.0.1:{s.ingest_grpc_port}"
    return f"kafka://{s.kafka_bootstrap}/{s.topics.raw_spans}"


def wait_for_drain(
    settings: Settings, protocol: str, acked: int, timeout: float
) -> tuple[Accounting, float]:
    """Until the identity holds and the stored count did not change for two polls."""
    client = connect(settings.clickhouse_url, settings.clickhouse_database)
    started = time.monotonic()
    stable = 0
    previous = -1
    acc = accounting(settings, client, protocol, acked)
    while time.monotonic() - started < timeout:
        acc = accounting(settings, client, protocol, acked)
        stable = stable + 1 if acc.stored == previous else 0
        previous = acc.stored
        if acc.balanced and acc.received and stable >= 2:
            break
        time.sleep(1.0)
    return acc, time.monotonic() - started


def run(args: argparse.Namespace) -> int:
    run_dir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    settings, ch_tcp = make_settings(args, run_dir)
    stack = LocalStack(settings, run_dir, ch_tcp, say=lambda m: print(m, file=sys.stderr))
    ok = False
    try:
        stack.start()
        for kind, count in (("streams", args.streams), ("sink", args.sinks)):
            if count > 1:
                stack.scale(kind, count)
        kafka = args.protocol == "kafka"
        items, gen_seconds = loadgen.build_items(
            loadgen.profile_from(args),
            args.seed,
            args.spans,
            args.traces_per_request,
            partitions=settings.partitions if kafka else 0,
            probe_every=1,
            probe_filter=kept_by_tail_policy if args.policy == "tail" else None,
        )
        every = max(1, len(items) // max(args.probes, 1))
        for n, item in enumerate(items):
            if n % every:
                item.probe = b""
        result = loadgen.Result(generate_seconds=gen_seconds)
        result.generated = sum(i.spans + (i.late.spans if i.late else 0) for i in items)
        pids = {c.name: c.proc.pid for c in stack.children}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        wait_before = {name: run_queue_seconds(pid) for name, pid in pids.items()}
        ch_before = clickhouse_events(
            connect(settings.clickhouse_url, settings.clickhouse_database)
        )
        own_before = time.process_time()
        machine_before = machine_busy_seconds()
        watcher = Watcher(settings, result.probes)
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        send_started = time.monotonic()
        asyncio.run(
            loadgen.send_all(
                target_for(args.protocol, settings),
                items,
                result,
                rate=args.rate,
                concurrency=args.concurrency,
                late_delay=args.late_delay,
                progress=not args.no_progress,
            )
        )
        acc, drain_seconds = wait_for_drain(settings, args.protocol, result.acked, args.timeout)
        # Let the watcher see the last probes (the drain already waited for every span).
        time.sleep(0.5)
        watcher.stop.set()
        thread.join(10)
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        waited = {name: run_queue_seconds(pid) - wait_before[name] for name, pid in pids.items()}
        cpu["loadgen (this process)"] = time.process_time() - own_before
        machine_cpu = machine_busy_seconds() - machine_before
        rss = {name: peak_rss_mb(pid) for name, pid in pids.items()}
        client = connect(settings.clickhouse_url, settings.clickhouse_database)
        ch_after = clickhouse_events(client)
        ch = {name: ch_after.get(name, 0) - ch_before.get(name, 0) for name in CLICKHOUSE_EVENTS}
        disk_bytes, disk_rows = client.query(
            "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts "
            "WHERE database = {db:String} AND table = 'otel_traces' AND active",
            parameters={"db": settings.clickhouse_database},
        ).result_rows[0]
        final = acc.stored
        reached = next((t for t, c in watcher.counts if c >= final), time.monotonic())
        e2e_seconds = max(reached - send_started, 1e-9)
        first_row = next((t for t, c in watcher.counts if c > 0), reached)
        store_seconds = max(reached - first_row, 1e-9)
        run_seconds = max(time.monotonic() - send_started, 1e-9)
        baseline = raw_produce_baseline(args, settings, items)
        lat = watcher.latencies()

        # Keep-all decides each trace on its first message (docs/adr/0017).
        wait = (
            "decided on arrival"
            if args.policy == "keep-all"
            else f"decision wait {args.decision_wait or 5:g} s"
        )
        print(f"date            {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(
            f"setup           {args.protocol}, {settings.partitions} partitions, policy "
            f"{args.policy} ({wait}), {args.services} "
            f"services, concurrency {args.concurrency}, {args.streams} streams + {args.sinks} sink "
            f"workers, "
            f"rate {'max' if not args.rate else f'{args.rate:,.0f}/s'}"
        )
        loadgen.print_result(result)
        print(f"ingest-acked    {result.acked / max(result.seconds, 1e-9):,.0f} spans/s")
        print(
            f"stored          {final:,} spans, e2e {final / e2e_seconds:,.0f} spans/s "
            f"(first send -> last row, {e2e_seconds:.1f} s; drain check {drain_seconds:.1f} s)"
        )
        print(
            f"processed       {acc.received / e2e_seconds:,.0f} received spans/s decided and "
            f"stored or dropped (first send -> last row)"
        )
        if store_seconds >= 0.5:
            print(
                f"storing         {final / store_seconds:,.0f} spans/s from first to last stored "
                f"row ({store_seconds:.1f} s: the drain rate without the fixed decision wait)"
            )
        else:  # every row landed in one poll: no rate to speak of
            print(f"storing         all rows appeared within {store_seconds:.1f} s (one batch)")
        print(
            f"latency         sent -> queryable p50 {quantile(lat, 0.5):.2f} s, "
            f"p99 {quantile(lat, 0.99):.2f} s, max {quantile(lat, 1.0):.2f} s "
            f"({len(lat)}/{len(result.probes)} probe traces seen)"
        )
        send_end = send_started + result.seconds
        print(
            f"after sending   last row {reached - send_end:.1f} s after the last span was sent "
            f"({wait} + tick + sink batch when the "
            f"pipeline keeps up; more means a backlog)"
        )
        half = len(result.probes) // 2
        early, late = watcher.latencies(slice(None, half)), watcher.latencies(slice(half, None))
        print(
            f"latency trend   p50 of the first half of probes {quantile(early, 0.5):.2f} s, "
            f"second half {quantile(late, 0.5):.2f} s (growing means the pipeline falls behind)"
        )
        print(
            f"baseline        raw Kafka produce of the same spans {baseline:,.0f} spans/s; "
            f"generation {result.generated / max(gen_seconds, 1e-9):,.0f} spans/s; "
            f"e2e / raw = {final / e2e_seconds / baseline:.3f}"
        )
        if disk_rows:
            print(
                f"disk            otel_traces {int(disk_bytes) / 1e6:.1f} MB on disk, "
                f"{int(disk_bytes) / int(disk_rows):.1f} bytes/span ({int(disk_rows):,} rows)"
            )
        print(
            f"clickhouse work {ch['InsertQuery']:,} inserts of {ch['InsertedRows']:,} rows (all "
            f"tables and views), {ch['SelectQuery']:,} selects (with this benchmark's pollers), "
            f"{ch['Merge']:,} merges of {ch['MergedRows']:,} rows taking "
            f"{ch['MergeTotalMilliseconds'] / 1000:.1f} s"
        )
        print(
            f"component       cpu-s  %of-core over {run_seconds:.1f} s  peak-RSS-MB  us/recv-span  "
            "runq-wait-s"
        )
        for name in cpu:
            print(
                f"  {name:<22}{cpu[name]:7.1f}  {100 * cpu[name] / run_seconds:14.0f}%"
                f"  {rss.get(name, 0.0):11.0f}  {1e6 * cpu[name] / max(acc.received, 1):7.1f}"
                f"  {waited.get(name, float('nan')):11.1f}"
            )
        total_cpu = sum(cpu.values())
        print(
            f"  {'total':<22}{total_cpu:7.1f}  {100 * total_cpu / run_seconds:14.0f}%"
            f"  {'':>11}  {1e6 * total_cpu / max(acc.received, 1):7.1f}"
        )
        cores = os.cpu_count() or 1
        print(
            f"machine         {machine_cpu:.1f} CPU-s busy on {cores} cores "
            f"({100 * machine_cpu / run_seconds / cores:.0f}% of the machine); "
            f"{machine_cpu - total_cpu:.1f} s of it outside this benchmark"
        )
        per_span = max(total_cpu / max(acc.received, 1), 1e-12)
        print(
            f"cpu bound       {cores} cores / {per_span * 1e6:.1f} us per received span = "
            f"{cores / per_span:,.0f} spans/s if the pipeline had every core to itself"
        )
        print("accounting      received = stored + sampled_out + rejected")
        print(
            f"  {acc.received:,} = {acc.stored:,} + {acc.sampled_out:,} + {acc.rejected:,}  "
            f"-> {'HOLDS' if acc.balanced else 'FAILS'}"
        )
        for key, value in acc.detail.items():
            print(f"  {key:<28}{value:,}")
        ok = acc.balanced and result.failed_requests == 0
        return 0 if ok else 1
    finally:
        stack.stop()
        if ok and not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            print(f"run dir kept: {run_dir}", file=sys.stderr)


def raw_produce_baseline(
    args: argparse.Namespace, settings: Settings, items: list[loadgen.Item]
) -> float:
    """Spans/s of producing the same spans, pre-split by partition, to a fresh topic."""
    topic = "otlp_spans_baseline"
    ensure_topics(settings.with_(topics=Topics(raw_spans=topic)))
    if not items[0].messages:
        for item in items:
            for part in (item, item.late):
                if part is not None:
                    fresh = loadgen._item(
                        loadgen.trace_service_pb2.ExportTraceServiceRequest.FromString(part.body),
                        part.spans,
                        settings.partitions,
                    )
                    part.messages = fresh.messages
    for item in items:
        item.probe = b""
    result = loadgen.Result()
    asyncio.run(
        loadgen.send_all(
            f"kafka://{settings.kafka_bootstrap}/{topic}",
            items,
            result,
            concurrency=args.concurrency,
            late_delay=0.0,
            progress=False,
        )
    )
    return result.acked / max(result.seconds, 1e-9)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--protocol", choices=["http", "grpc", "kafka"], default="http")
    parser.add_argument("--policy", choices=["keep-all", "tail"], default="keep-all")
    parser.add_argument(
        "--decision-wait", type=float, help="streams' decision_wait, s (default: the policy's, 5)"
    )
    parser.add_argument("--partitions", type=int, default=Settings().partitions)
    parser.add_argument("--streams", type=int, default=1, help="streams worker processes")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any core.settings.Settings field, e.g. sink_batch_seconds=2 (repeatable)",
    )
    parser.add_argument(
        "--no-otlp-scan",
        dest="otlp_scan",
        action="store_false",
        help="streams reads OTLP with the protobuf path only (the compiled pass's baseline)",
    )
    parser.add_argument("--sinks", type=int, default=1, help="sink worker processes")
    parser.add_argument("--probes", type=int, default=200, help="latency probe traces (about)")
    parser.add_argument("--timeout", type=float, default=180, help="drain timeout, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the run dir (logs, data)")
    loadgen.add_arguments(parser)
    parser.set_defaults(spans=300_000, concurrency=16)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

"""Head versus tail sampling, measured side by side on the same load.

Three configurations run one after another, each on a fresh local stack (Tansu broker, chdb
ClickHouse, ingest, streams, sink, query on free ports), with the same generated traces
(``bench/loadgen.py``'s generator, same seed):

- **head**: the SDKs sample: each trace is kept with probability ``--head-ratio`` before it is
  sent, by consistent probability sampling (``core.consistent_sampling``, which also writes the
  ``ot=th`` threshold, as an SDK's consistent sampler does). Streams keeps whatever arrives;
- **tail**: everything is sent; streams keeps error traces, slow traces (root > 1 s) and a
  ``--tail-percent`` share of the rest (bench/e2e.py's policy);
- **head+tail**: both, the tail policy's share applied to what the head kept.

Per configuration it prints: spans offered (generated before head sampling) and sent, spans
stored, bytes of ``otel_traces`` on disk, CPU seconds of the pipeline's processes per offered
span (ingest, streams, sink, query, broker and ClickHouse, from /proc), the share of error
traces and of slow traces that were stored, and the RED call count against the offered spans
(RED weights spans by their adjusted count, so head sampling should not change it).

    .venv/bin/python -m bench.sampling_tradeoff --spans 200000
    .venv/bin/python -m bench.sampling_tradeoff --spans 2000 --configs head  # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from bench import loadgen
from bench.e2e import TAIL_POLICY, wait_for_drain
from bench.harness import bench_settings, cpu_seconds
from core.clickhouse import connect
from core.consistent_sampling import ratio_threshold, sample
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from tracehouse.loadgen_traces import LoadProfile

CONFIGS = ("head", "tail", "head+tail")
SLOW_NS = 1_000_000_000  # the tail policy's latency threshold


@dataclass
class Outcome:
    config: str
    offered: int
    sent: int
    stored: int
    disk_bytes: int
    cpu_seconds: float
    error_kept: float
    slow_kept: float
    red_calls: int
    seconds: float


def trace_facts(items: list[loadgen.Item]) -> tuple[set[str], set[str]]:
    """Hex ids of the error traces and of the slow traces (root longer than SLOW_NS)."""
    errors: set[str] = set()
    slow: set[str] = set()
    for item in items:
        for part in (item, item.late):
            if part is None:
                continue
            req = trace_service_pb2.ExportTraceServiceRequest.FromString(part.body)
            for rs in req.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        tid = span.trace_id.hex()
                        if span.status.code == trace_pb2.Status.STATUS_CODE_ERROR:
                            errors.add(tid)
                        duration = span.end_time_unix_nano - span.start_time_unix_nano
                        if not span.parent_span_id and duration > SLOW_NS:
                            slow.add(tid)
    return errors, slow


def head_sampled(item: loadgen.Item, threshold: int) -> loadgen.Item | None:
    """What an SDK sampling consistently at the threshold would have sent of ``item``."""
    req = trace_pb2.TracesData.FromString(item.body)  # same fields as the export request
    sample(req, threshold)
    spans = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
    late = head_sampled(item.late, threshold) if item.late is not None else None
    if not spans and late is None:
        return None
    out = loadgen.Item(req.SerializeToString(), spans)
    out.late = late
    return out


def run_config(
    config: str, items: list[loadgen.Item], args: argparse.Namespace, run_root: Path
) -> Outcome:
    run_dir = run_root / config.replace("+", "-")
    run_dir.mkdir(parents=True)
    settings = bench_settings(partitions=args.partitions)
    if "tail" in config:
        rules: list[dict[str, Any]] = list(TAIL_POLICY["policies"])  # type: ignore[arg-type]
        policy = {
            **TAIL_POLICY,
            "policies": [
                p
                if p["name"] != "sample"
                else {**p, "probabilistic": {"sampling_percentage": args.tail_percent}}
                for p in rules
            ],
        }
        path = run_dir / "policy.json"
        path.write_text(json.dumps(policy))
        settings = settings.with_(sampling_policy_file=str(path))
    offered = sum(i.spans + (i.late.spans if i.late else 0) for i in items)
    if "head" in config:
        threshold = ratio_threshold(args.head_ratio)
        items = [s for s in (head_sampled(i, threshold) for i in items) if s is not None]
    sent = sum(i.spans + (i.late.spans if i.late else 0) for i in items)
    stack = LocalStack(settings, run_dir, free_port(), say=lambda m: print(m, file=sys.stderr))
    try:
        stack.start()
        pids = {c.name: c.proc.pid for c in stack.children}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.monotonic()
        result = loadgen.Result()
        asyncio.run(
            loadgen.send_all(
                f"http://127.0.0.1:{settings.ingest_http_port}/v1/traces",
                items,
                result,
                concurrency=args.concurrency,
                late_delay=args.late_delay,
                progress=False,
            )
        )
        acc, _ = wait_for_drain(settings, "http", result.acked, args.timeout)
        # RED windows and edges flush on the streams timer after the last span.
        time.sleep(settings.red_window_seconds + 2)
        cpu = sum(cpu_seconds(pid) - before[name] for name, pid in pids.items())
        seconds = time.monotonic() - started
        client = connect(settings.clickhouse_url, settings.clickhouse_database)
        disk = int(
            client.query(
                "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {db:String}"
                " AND table = 'otel_traces' AND active",
                parameters={"db": settings.clickhouse_database},
            ).result_rows[0][0]
            or 0
        )
        stored_ids = {
            str(r[0]) for r in client.query("SELECT DISTINCT TraceId FROM otel_traces").result_rows
        }
        red = int(client.command("SELECT sum(Calls) FROM red_metrics") or 0)
    finally:
        stack.stop()
    errors, slow = args.facts
    return Outcome(
        config,
        offered,
        sent,
        acc.stored,
        disk,
        cpu,
        len(errors & stored_ids) / max(1, len(errors)),
        len(slow & stored_ids) / max(1, len(slow)),
        red,
        seconds,
    )


def print_table(outcomes: list[Outcome]) -> None:
    header = (
        f"{'config':<10} {'offered':>9} {'sent':>9} {'stored':>9} {'disk MB':>8}"
        f" {'CPU us/offered':>14} {'errors kept':>11} {'slow kept':>9} {'RED/offered':>11}"
    )
    print(header)
    for o in outcomes:
        print(
            f"{o.config:<10} {o.offered:>9,} {o.sent:>9,} {o.stored:>9,}"
            f" {o.disk_bytes / 1e6:>8.2f} {o.cpu_seconds / max(1, o.offered) * 1e6:>14.1f}"
            f" {o.error_kept:>11.1%} {o.slow_kept:>9.1%} {o.red_calls / max(1, o.offered):>11.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=200_000, help="offered spans per config")
    parser.add_argument(
        "--configs", default=",".join(CONFIGS), help="comma list of " + "/".join(CONFIGS)
    )
    parser.add_argument("--head-ratio", type=float, default=0.1)
    parser.add_argument("--tail-percent", type=float, default=10.0)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--error-rate", type=float, default=0.01)
    parser.add_argument("--slow-rate", type=float, default=0.01)
    parser.add_argument("--traces-per-request", type=int, default=50)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--late-delay", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}")
    profile = LoadProfile(
        services=args.services, error_rate=args.error_rate, slow_rate=args.slow_rate
    )
    items, _ = loadgen.build_items(profile, args.seed, args.spans, args.traces_per_request)
    args.facts = trace_facts(items)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bench-sampling-") as tmp:
        for config in configs:
            outcomes.append(run_config(config, items, args, Path(tmp)))
    print(f"date     {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"load     {args.spans:,} spans, {args.services} services, errors {args.error_rate:.0%}"
        f" and slow {args.slow_rate:.0%} of traces; head ratio {args.head_ratio:g},"
        f" tail keeps errors + slow + {args.tail_percent:g} %"
    )
    print_table(outcomes)
    report: dict[str, Any] = {o.config: o.__dict__ for o in outcomes}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

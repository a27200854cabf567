"""Streams worker's per-message path under realistic buffering, per GC threshold.

``bench/streams.py`` decides every trace at once, so little is ever alive and the garbage
collector hardly runs. A real worker holds every span for ``decision_wait`` (and the service
graph for its wait), and then CPython's young-generation collections walk hundreds of thousands
of live objects. This benchmark replays the load generator's traces (``bench/loadgen.py``'s
profile, split by partition as ingest does) through four partition processors with a simulated
clock at ``--rate`` spans/s per worker and the e2e tail policy (5 s decision wait; or keep-all,
the default pipeline's, which holds spans only until the next tick, docs/adr/0017, with
``--policy keep-all``), once per gen-0 threshold, in fresh
processes, and prints spans/s, seconds in GC and collections per generation, with the first
threshold as the baseline.

    .venv/bin/python -m bench.streams_gc [--spans 1200000] [--thresholds 700,50000,200000]
        [--policy tail|keep-all]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

PARTITIONS = 8
WORKER_PARTITIONS = 4  # one of two workers over 8 partitions, as in bench/e2e.py --streams 2


def run_one(spans: int, rate: float, threshold: int, policy: str = "tail") -> dict[str, Any]:
    from bench import e2e, loadgen
    from streams.counters import CounterSet
    from streams.partition_processor import AggregationOptions, PartitionProcessor
    from streams.sampling_config import parse_config
    from streams.span_batch_messages import encode_span_batches
    from tracehouse.loadgen_traces import LoadProfile

    cfg = parse_config(e2e.TAIL_POLICY if policy == "tail" else {"decision_wait": "5s"})
    items, _ = loadgen.build_items(LoadProfile(), 1, spans, 20, partitions=PARTITIONS)
    every = [(p, v) for item in items for (p, _, v) in item.messages]
    spans_per_message = spans / len(every)
    messages = [v for p, v in every if p < WORKER_PARTITIONS]
    del items, every
    gc.collect()
    gc.freeze()  # the generated requests are not the worker's heap
    gc.set_threshold(threshold, 20, 20)
    in_gc = [0.0, 0.0]

    def timer(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            in_gc[1] = time.perf_counter()
        else:
            in_gc[0] += time.perf_counter() - in_gc[1]

    gc.callbacks.append(timer)
    before = [g["collections"] for g in gc.get_stats()]
    counters = CounterSet()
    procs = [
        PartitionProcessor(f"raw/{p}", cfg, cfg.policies, AggregationOptions(), counters)
        for p in range(WORKER_PARTITIONS)
    ]
    step = spans_per_message / rate  # simulated seconds per message
    ticks_every = max(1, int(0.5 / step))  # the worker ticks every 0.5 s
    now = 1000.0
    received = 0
    started = time.perf_counter()
    for offset, payload in enumerate(messages):
        procs[offset % WORKER_PARTITIONS].process(offset, payload, now)
        now += step
        if offset % ticks_every == 0:
            for proc in procs:
                out = proc.tick(now)
                received += out.counters.get(("spans_received", ""), 0)
                encode_span_batches(out.sampled)
                proc.delivered(out)
    # Decide and encode what is still waiting, inside the timing: a run that left the last
    # decision wait's traces unencoded would charge a waiting policy less work than keep-all,
    # which encodes on arrival. The final tick also closes the last RED windows, which
    # publish the received spans they cover.
    for proc in procs:
        out = proc.tick(now + 3600)
        received += out.counters.get(("spans_received", ""), 0)
        encode_span_batches(out.sampled)
    elapsed = time.perf_counter() - started
    return {
        "threshold": threshold,
        "spans": received,
        "spans_per_s": received / elapsed,
        "gc_seconds": in_gc[0],
        "seconds": elapsed,
        "collections": [g["collections"] - b for g, b in zip(gc.get_stats(), before, strict=True)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--spans", type=int, default=1_200_000, help="generated (half reach the worker)"
    )
    ap.add_argument("--rate", type=float, default=25_000, help="simulated spans/s per worker")
    ap.add_argument("--thresholds", default="700,50000,200000", help="gen-0 thresholds")
    ap.add_argument("--policy", choices=["tail", "keep-all"], default="tail")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process mode
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.spans, args.rate, args.one, args.policy)))
        return
    results = []
    for threshold in [int(t) for t in args.thresholds.split(",")]:
        out = subprocess.run(
            # As a module from the repository root: run as a file, ``bench`` would not import.
            [sys.executable, "-m", "bench.streams_gc", "--spans", str(args.spans),
             "--rate", str(args.rate), "--policy", args.policy, "--one", str(threshold)],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        results.append(json.loads(out.stdout))
    base = results[0]["spans_per_s"]
    print(
        f"spans={results[0]['spans']:,} per run, simulated {args.rate:,.0f} spans/s per worker,"
        f" policy {args.policy}"
    )
    for r in results:
        print(
            f"gen0 threshold {r['threshold']:>7}: {r['spans_per_s']:>9,.0f} spans/s "
            f"({r['spans_per_s'] / base:.2f} x first), {r['gc_seconds']:.2f} s of "
            f"{r['seconds']:.2f} s in GC, collections per generation {r['collections']}"
        )


if __name__ == "__main__":
    main()

"""Spans/s through one streams worker's per-message path, without a broker.

Measures, on the same pre-built raw messages: (1) the baseline, a bare protobuf decode of each
``TracesData``; (2) the full path a worker runs per message: decode -> span views -> RED ->
service graph -> trace buffer, then the ticks' sampling decisions and Avro encoding of the
sampled spans (``span_batch`` v3), RED and edge batches. Prints spans/s for each and the ratio
to the baseline, and the rate of encoding all spans alone.

    .venv/bin/python -m bench.streams [--messages 200] [--spans 500] [--policy keep-all|tail]
        [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import time

from opentelemetry.proto.trace.v1 import trace_pb2

from schemas import avro_codec
from streams.counters import CounterSet
from streams.gc_tuning import tune_gc
from streams.partition_processor import AggregationOptions, PartitionProcessor
from streams.sampling_config import SamplingConfig, parse_config
from streams.span_batch_messages import encode_span_batches
from streams.span_views import span_views
from tracehouse.span_specs import CLIENT, ERROR, SERVER, SpanSpec, payload

SERVICES = ["frontend", "cart", "checkout", "payment", "shipping"]
TAIL_POLICY = {
    "decision_wait": 0,
    "policies": [
        {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
        {"name": "slow", "type": "latency", "latency": {"threshold_ms": 1000}},
        {"name": "sample", "type": "probabilistic", "probabilistic": {"sampling_percentage": 10}},
    ],
}


def build_messages(count: int, spans_per_message: int, seed: int = 7) -> list[bytes]:
    """Messages of 10-span traces over 5 services with typical HTTP/RPC attributes."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        specs: list[SpanSpec] = []
        while len(specs) < spans_per_message:
            trace = rng.randbytes(16)
            parent = b""
            for i in range(10):
                span_id = rng.randbytes(8)
                svc = SERVICES[i // 2]
                specs.append(
                    SpanSpec(
                        trace, span_id, svc, f"{svc} op{i % 3}", parent_id=parent,
                        kind=SERVER if i % 2 == 0 else CLIENT,
                        duration_ms=rng.uniform(0.5, 300),
                        status=ERROR if rng.random() < 0.01 else 0,
                        attributes={"http.request.method": "GET", "http.route": f"/api/{i}",
                                    "http.response.status_code": 200, "net.peer.port": 443},
                    )
                )  # fmt: skip
                parent = span_id
        out.append(payload(specs[:spans_per_message]))
    return out


def run_baseline(messages: list[bytes]) -> tuple[int, float]:
    spans = 0
    started = time.perf_counter()
    for m in messages:
        data = trace_pb2.TracesData.FromString(m)
        spans += sum(len(ss.spans) for rs in data.resource_spans for ss in rs.scope_spans)
    return spans, time.perf_counter() - started


def encode_alone(messages: list[bytes]) -> float:
    """spans/s of turning every span's view into spans.sampled bytes, nothing else."""
    views = [span_views(trace_pb2.TracesData.FromString(m)) for m in messages]
    started = time.perf_counter()
    for v in views:
        encode_span_batches(v)
    return sum(len(v) for v in views) / (time.perf_counter() - started)


def run_full(messages: list[bytes], cfg: SamplingConfig) -> tuple[int, float, int]:
    counters = CounterSet()
    proc = PartitionProcessor(
        "otlp_spans/0", cfg, cfg.policies, AggregationOptions(red_window_seconds=1), counters
    )
    now = 1000.0
    sampled = 0
    received = 0
    started = time.perf_counter()
    for offset, m in enumerate(messages):
        proc.process(offset, m, now)
        now += 0.05  # 20 messages per simulated second; a tick after each message
        out = proc.tick(now + cfg.decision_wait)
        received += out.counters.get(("spans_received", ""), 0)
        sampled += len(out.sampled)
        encode_span_batches(out.sampled)
        if out.red is not None:
            avro_codec.encode("red_metrics", out.red)
        if out.edges is not None:
            avro_codec.encode("graph_edges", out.edges)
        proc.delivered(out)
    elapsed = time.perf_counter() - started
    # Received spans are published with the RED window that covers them: close the last one.
    received += proc.tick(now + 3600).counters.get(("spans_received", ""), 0)
    return received, elapsed, sampled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--spans", type=int, default=500, help="spans per raw message")
    ap.add_argument("--policy", choices=["keep-all", "tail"], default="tail")
    ap.add_argument("--repeat", type=int, default=3, help="best of N")
    args = ap.parse_args()
    cfg = (
        SamplingConfig(decision_wait=0) if args.policy == "keep-all" else parse_config(TAIL_POLICY)
    )
    messages = build_messages(args.messages, args.spans)
    tune_gc()  # as the worker does
    run_full(messages[:10], cfg)  # warm caches and imports
    base_spans, base_s = run_baseline(messages)
    base_rate = base_spans / base_s
    print(f"messages={args.messages} spans/message={args.spans} policy={args.policy}")
    print(f"baseline protobuf decode : {base_rate:>12,.0f} spans/s")
    # A shared, noisy machine: keep the best run.
    full_rate = 0.0
    for _ in range(args.repeat):
        spans, full_s, sampled = run_full(messages, cfg)
        assert spans == base_spans, (spans, base_spans)
        full_rate = max(full_rate, spans / full_s)
    share = f"{full_rate / base_rate:.3f} x baseline; {sampled / spans:.1%} sampled"
    print(f"full streams path, v3    : {full_rate:>12,.0f} spans/s  ({share})")
    alone = max(encode_alone(messages) for _ in range(args.repeat))
    print(f"encode alone, v3         : {alone:>12,.0f} spans/s")


if __name__ == "__main__":
    main()

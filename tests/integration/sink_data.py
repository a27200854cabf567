"""Deterministic Avro records for the four sunk topics, produced with confluent-kafka.

The sink tests publish contract-conforming records themselves instead of running streams.
Spans are described as readable rows (:func:`span`) and encoded by streams' own encoder
(:func:`tracehouse.span_tables.span_message`), so the sink sees exactly what streams writes.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from core.kafka import KafkaConnection
from core.settings import Settings
from core.topics import partition_count
from deploy.local.stack import Child, LocalStack
from schemas import avro_codec
from tracehouse.span_tables import span_message

BOUNDS_MS = [2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 250.0, 1000.0]
T0 = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z in ns
SERVICES = ("frontend", "cart", "payments")
OPS = ("GET /", "AddItem", "Charge", "SELECT")


def span(trace: int, i: int, tenant: str = "") -> dict[str, Any]:
    """Span ``i`` of trace number ``trace``; ids count from 1 (all-zero ids are invalid)."""
    start = T0 + trace * 1_000_000 + i * 1000
    return {
        "tenant_id": tenant,
        "trace_id": f"{trace + 1:032x}",
        "span_id": f"{trace + 1:08x}{i + 1:08x}",
        "parent_span_id": f"{trace + 1:08x}{i:08x}" if i else "",
        "name": OPS[(trace + i) % len(OPS)],
        "kind": 2 if i == 0 else 3,
        "service_name": SERVICES[(trace + i) % len(SERVICES)],
        "start_time_unix_nano": start,
        "end_time_unix_nano": start + (trace % 97 + 1) * 1_000_000 + i,
        "status_code": 2 if (trace + i) % 11 == 0 else 0,
        "status_message": "boom" if (trace + i) % 11 == 0 else "",
        "resource_attributes": {"service.name": SERVICES[(trace + i) % len(SERVICES)]},
        "attributes": {"http.route": f"/r{trace % 5}", "customer.tier": ("gold", "free")[i % 2]},
        "events": [{"time_unix_nano": start + 5, "name": "retry", "attributes": {"n": "1"}}]
        if i % 3 == 0
        else [],
        "links": [],
    }


def span_batch(first_trace: int, traces: int, spans_per_trace: int) -> dict[str, Any]:
    return {
        "spans": [
            span(t, i)
            for t in range(first_trace, first_trace + traces)
            for i in range(spans_per_trace)
        ]
    }


def red_batch(window: int, source: str) -> dict[str, Any]:
    series = []
    for n, (svc, op) in enumerate((s, o) for s in SERVICES for o in OPS[:2]):
        counts = [(window + n + b) % 4 for b in range(len(BOUNDS_MS) + 1)]
        calls = sum(counts)
        series.append(
            {
                "service_name": svc,
                "span_name": op,
                "span_kind": 2,
                "status_code": 0,
                "calls": calls,
                "errors": calls // 4,
                "duration_sum_ns": calls * 7_000_000,
                "duration_max_ns": 2_000_000_000,  # some calls land in +Inf (> 1 s)
                "bucket_counts": counts,
            }
        )
    return {
        "source": source,
        "window_start_unix_nano": T0 + window * 60 * 10**9,
        "window_end_unix_nano": T0 + (window + 1) * 60 * 10**9,
        "bucket_bounds_ms": BOUNDS_MS,
        "series": series,
    }


def edge_batch(window: int) -> dict[str, Any]:
    edges = [
        {
            "client_service": a,
            "server_service": b,
            "calls": 10 + window,
            "errors": window % 3,
            "duration_sum_ns": (10 + window) * 3_000_000,
            "duration_max_ns": 40_000_000,
            "bucket_counts": [0, 10 + window] + [0] * (len(BOUNDS_MS) - 1),
        }
        for a, b in (("frontend", "cart"), ("cart", "payments"))
    ]
    return {
        "source": f"otlp_spans/{window % 4}",
        "window_start_unix_nano": T0 + window * 60 * 10**9,
        "window_end_unix_nano": T0 + (window + 1) * 60 * 10**9,
        "bucket_bounds_ms": BOUNDS_MS,
        "edges": edges,
    }


def counter_batch(instance: str, seq: int) -> dict[str, Any]:
    return {
        "component": "streams",
        "instance": instance,
        "seq": seq,
        "time_unix_nano": T0 + seq * 10**9,
        "counters": [
            {"name": "spans_received", "value": 100},
            {"name": "spans_sampled_out", "value": 60},
            {"name": "spans_rejected", "reason": "too_large", "value": 5},
        ],
    }


@dataclass
class Expected:
    """What a set of produced messages must become in ClickHouse."""

    spans: int = 0
    traces: set[str] = field(default_factory=set)
    red_rows: int = 0
    red_calls: int = 0
    red_buckets: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS_MS) + 1))
    edges: int = 0
    edge_calls: int = 0
    counters: int = 0


def produce(bootstrap: str, topic: str, values: list[tuple[int, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for partition, value in values:
        producer.produce(topic, value, partition=partition)
    assert producer.flush(30) == 0


def produce_round(settings: Settings, round_no: int, expected: Expected, partitions: int) -> None:
    """Spans, RED, edges and counters for one round, spread over all partitions."""
    t = settings.topics
    spans, red, edges, counters = [], [], [], []
    for p in range(partitions):
        for m in range(3):
            first = (round_no * 1000 + p * 100 + m * 10) * 10
            rec = span_batch(first, traces=10, spans_per_trace=6)
            expected.spans += len(rec["spans"])
            expected.traces.update(s["trace_id"] for s in rec["spans"])
            spans.append((p, span_message(rec["spans"])))
        window = round_no * partitions + p
        red_rec = red_batch(window, f"otlp_spans/{p}")
        expected.red_rows += len(red_rec["series"])
        for s in red_rec["series"]:
            expected.red_calls += s["calls"]
            expected.red_buckets = [
                a + b for a, b in zip(expected.red_buckets, s["bucket_counts"], strict=True)
            ]
        red.append((p, avro_codec.encode("red_metrics", red_rec)))
        edge_rec = edge_batch(window)
        expected.edges += len(edge_rec["edges"])
        expected.edge_calls += sum(e["calls"] for e in edge_rec["edges"])
        edges.append((p, avro_codec.encode("graph_edges", edge_rec)))
        cnt = counter_batch(f"streams-{p}", round_no)
        expected.counters += len(cnt["counters"])
        counters.append((p, avro_codec.encode("pipeline_counters", cnt)))
    produce(settings.kafka_bootstrap, t.sampled_spans, spans)
    produce(settings.kafka_bootstrap, t.red_metrics, red)
    produce(settings.kafka_bootstrap, t.graph_edges, edges)
    produce(settings.kafka_bootstrap, t.accounting, counters)


def stored(client: Any) -> dict[str, Any]:
    """The same figures as :class:`Expected`, read from ClickHouse."""
    q = client.query(
        "SELECT (SELECT count() FROM otel_traces), (SELECT uniqExact(TraceId) FROM otel_traces),"
        " (SELECT count() FROM red_metrics), (SELECT sum(Calls) FROM red_metrics),"
        " (SELECT sumForEach(BucketCounts) FROM red_metrics),"
        " (SELECT sum(Calls) FROM red_metrics_1h),"
        " (SELECT sumForEachMerge(BucketCounts) FROM red_metrics_1h),"
        " (SELECT count() FROM service_graph_edges), (SELECT sum(Calls) FROM service_graph_edges),"
        " (SELECT count() FROM pipeline_counters),"
        " (SELECT uniqExact(TraceId) FROM otel_traces_trace_id_ts)"
    ).result_rows[0]
    return {
        "spans": q[0],
        "traces": q[1],
        "red_rows": q[2],
        "red_calls": q[3],
        "red_buckets": list(q[4]),
        "rollup_calls": q[5],
        "rollup_buckets": list(q[6]),
        "edges": q[7],
        "edge_calls": q[8],
        "counters": q[9],
        "lookup_traces": q[10],
    }


def want(e: Expected) -> dict[str, Any]:
    return {
        "spans": e.spans,
        "traces": len(e.traces),
        "red_rows": e.red_rows,
        "red_calls": e.red_calls,
        "red_buckets": e.red_buckets,
        "rollup_calls": e.red_calls,
        "rollup_buckets": e.red_buckets,
        "edges": e.edges,
        "edge_calls": e.edge_calls,
        "counters": e.counters,
        "lookup_traces": len(e.traces),
    }


def start_sink(stack: LocalStack, port: int, extra_env: dict[str, str] | None = None) -> Child:
    """A real `tracehouse sink` process on the stack's settings with its own metrics port."""
    stack.settings = stack.settings.with_(sink_metrics_port=port)
    return stack.start_component("sink", f"http://127.0.0.1:{port}/metrics", extra_env=extra_env)


def metric(port: int, name: str) -> float:
    """Sum of all samples of one metric family from a sink's /metrics endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name:
                total += float(value)
    return total


def kill(child: Child, sig: int = signal.SIGKILL) -> None:
    os.kill(child.proc.pid, sig)
    child.proc.wait(30)


def read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 30) -> list[Any]:
    """Every message of ``topic`` (assigned directly: no group join, which is slow on Tansu)."""
    partitions = partition_count(KafkaConnection(bootstrap), topic)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{topic}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(msg)
        # Anything more would be a duplicate: give it a moment to show up.
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            msg = consumer.poll(0.3)
            if msg is not None and msg.error() is None:
                out.append(msg)
    finally:
        consumer.close()
    return out

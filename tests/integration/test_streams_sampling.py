"""Tail sampling, RED and the service graph on the real broker, ClickHouse behind the sink.

Traces arrive in pieces across several raw messages; the policy keeps errors and slow traces
but drops health checks even when they fail. Exactly the expected traces must be stored, whole,
and RED must count every span that came in, sampled or not.
"""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from core.settings import Settings
from deploy.local.stack import LocalStack
from tests.integration.helpers import wait_until
from tests.integration.streams_support import (
    TopicReader,
    counter_totals,
    produce_spans,
    start_streams,
    stored_spans,
    streams_settings,
)
from tracehouse.span_specs import CLIENT, ERROR, INTERNAL, SERVER, SpanSpec, sid, tid

POLICY = {
    "decision_wait": "1s",
    "policies": [
        {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
        {"name": "slow", "type": "latency", "latency": {"threshold_ms": 500}},
        {
            "name": "no-health",
            "type": "drop",
            "drop": {
                "drop_sub_policy": [
                    {
                        "name": "health-route",
                        "type": "string_attribute",
                        "string_attribute": {"key": "http.route", "values": ["/health"]},
                    }
                ]
            },
        },
    ],
}


def trace_spans(n: int, kind: str) -> list[SpanSpec]:
    """4 spans over 2 services: shop server -> shop client -> pay server -> pay internal."""
    t = tid(10_000 + n)
    base = n * 10
    slow = kind == "slow"
    route = "/health" if kind == "health" else "/checkout"
    error = ERROR if kind in ("error", "health") else 0
    return [
        SpanSpec(t, sid(base + 1), "shop", "GET", kind=SERVER, duration_ms=900 if slow else 30,
                 attributes={"http.route": route}),
        SpanSpec(t, sid(base + 2), "shop", "charge", parent_id=sid(base + 1), kind=CLIENT,
                 duration_ms=20),
        SpanSpec(t, sid(base + 3), "pay", "Charge", parent_id=sid(base + 2), kind=SERVER,
                 duration_ms=15, status=error),
        SpanSpec(t, sid(base + 4), "pay", "db", parent_id=sid(base + 3), kind=INTERNAL,
                 duration_ms=5),
    ]  # fmt: skip


@pytest.fixture
def sampling_stack(
    services: LocalStack, pipeline_settings: Settings, tmp_path: Path
) -> Iterator[LocalStack]:
    settings = streams_settings(pipeline_settings, tmp_path, POLICY)
    stack = LocalStack(
        settings, services.run_dir / settings.clickhouse_database, say=lambda _: None
    )
    try:
        start_streams(stack, settings.streams_metrics_port)
        stack.start_component("sink", f"http://127.0.0.1:{settings.sink_metrics_port}/metrics")
        yield stack
    finally:
        stack.stop()


def test_policy_set_keeps_exactly_errors_and_slow_traces_whole(sampling_stack: LocalStack) -> None:
    settings = sampling_stack.settings
    kinds = ["error"] * 12 + ["slow"] * 12 + ["normal"] * 30 + ["health"] * 6
    traces = {tid(10_000 + n).hex(): (kind, trace_spans(n, kind)) for n, kind in enumerate(kinds)}
    # Server side first, client side later: each trace spans several messages.
    produce_spans(settings, [s for _, spans in traces.values() for s in spans[:2]])
    produce_spans(settings, [s for _, spans in traces.values() for s in spans[2:]])
    total_spans = 4 * len(traces)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(settings.topics.raw_spans, b"\xff not protobuf", key=b"junk", partition=0)
    assert producer.flush(10) == 0

    accounting = TopicReader(settings, settings.topics.accounting, "pipeline_counters")
    totals = wait_until(
        lambda: counter_totals(accounting.poll()),
        lambda t: t[("traces_sampled", "errors")] + t[("traces_sampled", "slow")]
        + t[("traces_not_sampled", "no_policy_matched")] + t[("traces_not_sampled", "no-health")]
        >= len(traces),
        timeout=60,
    )  # fmt: skip
    assert totals[("spans_received", "")] == total_spans, totals
    assert totals[("traces_sampled", "errors")] == 12, totals
    assert totals[("traces_sampled", "slow")] == 12
    assert totals[("traces_not_sampled", "no-health")] == 6
    assert totals[("traces_not_sampled", "no_policy_matched")] == 30
    assert totals[("spans_sampled_out", "no-health")] == 6 * 4
    dropped = sum(v for (name, _), v in totals.items() if name == "spans_sampled_out")
    assert totals[("spans_sampled", "")] + dropped == total_spans  # accounting balances

    rejected = wait_until(
        lambda: counter_totals(accounting.poll())[("messages_rejected", "malformed")],
        lambda n: n >= 1,
    )
    assert rejected == 1
    dlq = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "dlq-check"})
    dlq.assign([TopicPartition(settings.topics.streams_dlq, p, OFFSET_BEGINNING) for p in range(4)])
    dead = wait_until(lambda: dlq.consume(10, 0.5), lambda m: len(m) >= 1)
    assert dead[0].value() == b"\xff not protobuf"
    reason = dict(dead[0].headers() or [])["reason"]
    assert isinstance(reason, bytes) and b"OTLP" in reason
    dlq.close()

    url = f"http://127.0.0.1:{settings.streams_metrics_port}/metrics"
    exposed = wait_until(
        lambda: urllib.request.urlopen(url, timeout=2).read().decode(),
        lambda text: 'tracehouse_streams_traces_sampled_total{reason="slow"} 12.0' in text,
        timeout=10,
    )
    assert 'tracehouse_streams_traces_sampled_total{reason="errors"} 12.0' in exposed
    assert f'tracehouse_streams_spans_received_total{{reason=""}} {total_spans}.0' in exposed

    expected = {t for t, (kind, _) in traces.items() if kind in ("error", "slow")}
    rows = wait_until(lambda: stored_spans(settings), lambda r: len(r) >= 4 * len(expected))
    per_trace = Counter(t for t, _ in rows)
    assert set(per_trace) == expected
    assert all(n == 4 for n in per_trace.values()), per_trace
    assert {s for _, s in rows} == {s.span_id.hex() for t in expected for s in traces[t][1]}

    red = TopicReader(settings, settings.topics.red_metrics, "red_metrics")
    calls = wait_until(
        lambda: (
            Counter(
                {(s["service_name"], s["status_code"]): 0 for b in red.poll() for s in b["series"]}
            )
            + _calls(red.records)
        ),
        lambda c: sum(c.values()) >= total_spans,
    )
    assert calls == Counter({("shop", 0): 120, ("pay", 0): 120 - 18, ("pay", ERROR): 18})
    errors = sum(s["errors"] for b in red.records for s in b["series"])
    assert errors == 18
    # Histogram: the 12 slow root spans (900 ms) fall in (800, 1000], the other 48 in (10, 50].
    roots = [s for b in red.records for s in b["series"] if s["span_name"] == "GET"]
    bounds = red.records[0]["bucket_bounds_ms"]
    buckets = [sum(s["bucket_counts"][i] for s in roots) for i in range(len(bounds) + 1)]
    assert buckets[bounds.index(1000.0)] == 12 and buckets[bounds.index(50.0)] == 48
    assert sum(buckets) == 60
    assert max(s["duration_max_ns"] for s in roots) == 900 * 1_000_000

    edges_reader = TopicReader(settings, settings.topics.graph_edges, "graph_edges")
    edges = wait_until(
        lambda: _edge_calls(edges_reader.poll()), lambda e: sum(e.values()) >= len(traces)
    )
    assert edges == Counter({("shop", "pay", ""): len(traces)})
    for reader in (accounting, red, edges_reader):
        reader.close()


def _calls(batches: list[dict[str, Any]]) -> Counter[tuple[str, int]]:
    out: Counter[tuple[str, int]] = Counter()
    for b in batches:
        for s in b["series"]:
            out[(s["service_name"], s["status_code"])] += s["calls"]
    return out


def _edge_calls(batches: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    for b in batches:
        for e in b["edges"]:
            out[(e["client_service"], e["server_service"], e["connection_type"])] += e["calls"]
    return out

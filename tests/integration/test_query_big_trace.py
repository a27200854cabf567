"""A 100k-span trace against the real query service and ClickHouse: capped, warned, bounded.

The spans are written straight into ClickHouse with the sink's own code (as the query_api
fixture does), then read through a real `tracehouse query` process whose memory is sampled from
/proc: the issue measured 34 MB of JSON and 47 -> 328 MB RSS for this trace before the cap.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.stack import LocalStack
from query.store import MAX_SPANS_PER_TRACE
from sinks.clickhouse_store import BatchStore
from tracehouse.span_tables import otel_traces_table

BIG_SPANS = 100_000
SERVICES = ["frontend", "cart", "checkout", "payments", "inventory"]
# JSON per span of this test data is ~600 bytes; the cap must bound the body accordingly.
MAX_BODY_BYTES_PER_SPAN = 800


def kv(key: str, value: str) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def big_trace(spans: int, now_ns: int, seed: int = 7) -> tuple[str, trace_pb2.TracesData]:
    """One trace of ``spans`` spans in a 10-ary call tree over five services."""
    rng = random.Random(seed)
    trace_id = rng.randbytes(16)
    data = trace_pb2.TracesData()
    scopes = {}
    for service in SERVICES:
        rs = data.resource_spans.add()
        rs.resource.attributes.extend([kv("service.name", service), kv("host.name", "h1")])
        ss = rs.scope_spans.add()
        ss.scope.name = "big-trace"
        scopes[service] = ss
    ids = [rng.randbytes(8) for _ in range(spans)]
    start = now_ns - 60_000_000_000
    for i in range(spans):
        service = SERVICES[i % len(SERVICES)]
        span = scopes[service].spans.add()
        span.trace_id = trace_id
        span.span_id = ids[i]
        if i:
            span.parent_span_id = ids[(i - 1) // 10]
        span.name = f"GET /items/{i % 50}"
        span.kind = trace_pb2.Span.SPAN_KIND_SERVER
        span.start_time_unix_nano = start + i * 100_000
        span.end_time_unix_nano = start + i * 100_000 + 5_000_000
        span.attributes.extend(
            [kv("http.route", span.name), kv("user.id", f"u{i % 500}"), kv("http.method", "GET")]
        )
    return trace_id.hex(), data


def write_spans(settings: Settings, data: trace_pb2.TracesData, chunk: int = 25_000) -> None:
    table = otel_traces_table(data)
    store = BatchStore(connect(settings.clickhouse_url, settings.clickhouse_database), "big")
    for i in range(0, table.num_rows, chunk):
        store.insert_block("otel_traces", table.slice(i, chunk), f"big-trace-{i}")


@dataclass
class QueryProcess:
    base: str
    pid: int

    def memory_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) in MB, from /proc/<pid>/status."""
        fields = {}
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                fields[key] = value
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


@pytest.fixture
def big_trace_api(
    services: LocalStack, pipeline_settings: Settings
) -> Iterator[tuple[QueryProcess, str]]:
    trace_id, data = big_trace(BIG_SPANS, time.time_ns())
    write_spans(pipeline_settings, data)
    stack = LocalStack(pipeline_settings, services.run_dir / "query-big", say=lambda _m: None)
    try:
        child = stack.start_component(
            "query", f"http://127.0.0.1:{pipeline_settings.query_http_port}/health"
        )
        yield (
            QueryProcess(f"http://127.0.0.1:{pipeline_settings.query_http_port}", child.proc.pid),
            trace_id,
        )
    finally:
        stack.stop()


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as resp:
        return bytes(resp.read())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for RSS")
def test_big_trace_is_capped_with_a_warning_and_bounded_memory(
    big_trace_api: tuple[QueryProcess, str],
) -> None:
    query, trace_id = big_trace_api
    fetch(f"{query.base}/api/services")  # warm up: imports, connection pool
    rss_before, _ = query.memory_mb()
    started = time.monotonic()
    raw = fetch(f"{query.base}/api/traces/{trace_id}")
    seconds = time.monotonic() - started
    rss_after, peak_one = query.memory_mb()
    body = json.loads(raw)
    [trace] = body["data"]
    spans = trace["spans"]
    assert len(spans) == MAX_SPANS_PER_TRACE
    assert trace["warnings"][0] == (
        f"trace has {BIG_SPANS} spans; showing the first {MAX_SPANS_PER_TRACE} by start time"
    )
    starts = [s["startTime"] for s in spans]
    assert starts == sorted(starts)  # the first spans by start time
    assert len(raw) <= MAX_SPANS_PER_TRACE * MAX_BODY_BYTES_PER_SPAN

    # Four at once (the 802 MB case): the concurrency limit and the cap bound the peak.
    errors: list[BaseException] = []

    def one() -> None:
        try:
            assert (
                len(json.loads(fetch(f"{query.base}/api/traces/{trace_id}"))["data"][0]["spans"])
                == MAX_SPANS_PER_TRACE
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors
    rss_end, peak_four = query.memory_mb()
    report = {
        "body_mb": round(len(raw) / 1e6, 2),
        "seconds": round(seconds, 2),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_one_mb": round(rss_after, 1),
        "peak_one_mb": round(peak_one, 1),
        "rss_after_four_mb": round(rss_end, 1),
        "peak_four_mb": round(peak_four, 1),
    }
    print(f"\nbig trace ({BIG_SPANS} spans, cap {MAX_SPANS_PER_TRACE}): {report}")
    if os.environ.get("TRACEHOUSE_BIG_TRACE_REPORT"):
        with open(os.environ["TRACEHOUSE_BIG_TRACE_REPORT"], "w") as out:
            json.dump(report, out)
    # Generous bounds (the measured figures are in query/README.md): before the cap one
    # request added ~280 MB and four ~750 MB.
    assert peak_one - rss_before < 150
    assert peak_four - rss_before < 300

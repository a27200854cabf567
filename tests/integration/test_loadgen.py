"""bench/loadgen.py against a real pipeline: every span it reports as sent lands in ClickHouse.

Runs the CLI as a user would, over OTLP/HTTP and straight to Kafka (including late spans), so
both the load generator's counting and its Kafka partitioning (it must agree with ingest's, or
the run reports errors) are checked end to end.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from core.clickhouse import connect
from deploy.local.stack import LocalStack
from query.counts import span_count
from tests.integration.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _loadgen(target: str, seed: int, *extra: str) -> tuple[int, str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--target",
            target,
            "--spans",
            "1500",
            "--seed",
            str(seed),
            "--late-rate",
            "0.3",
            "--late-delay",
            "0.5",
            "--concurrency",
            "4",
            "--no-progress",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    generated = int(re.search(r"generated\s+([\d,]+) spans", proc.stdout)[1].replace(",", ""))  # type: ignore[index]
    acked = int(re.search(r"acked\s+([\d,]+) spans", proc.stdout)[1].replace(",", ""))  # type: ignore[index]
    assert acked == generated >= 1500, proc.stdout
    assert "errors        0 failed requests (0 spans), 0 spans rejected" in proc.stdout
    return acked, proc.stdout


def test_loadgen_http_and_kafka_counts_land_exactly(pipeline: LocalStack) -> None:
    s = pipeline.settings
    client = connect(s.clickhouse_url, s.clickhouse_database)

    http, _ = _loadgen(f"http://127.0.0.1:{s.ingest_http_port}/v1/traces", 1)
    wait_until(lambda: span_count(client, s.clickhouse_database), lambda n: n >= http, 45)

    kafka, _ = _loadgen(
        f"kafka://{s.kafka_bootstrap}/{s.topics.raw_spans}", 2, "--partitions", str(s.partitions)
    )
    total = http + kafka
    wait_until(lambda: span_count(client, s.clickhouse_database), lambda n: n >= total, 45)
    # Nothing extra shows up later (no duplicates), and every trace is whole.
    assert span_count(client, s.clickhouse_database) == total
    assert int(client.command("SELECT uniqExact(TraceId, SpanId) FROM otel_traces")) == total
    orphans = client.command(
        "SELECT count() FROM otel_traces AS c LEFT ANTI JOIN otel_traces AS p "
        "ON c.TraceId = p.TraceId AND c.ParentSpanId = p.SpanId WHERE c.ParentSpanId != ''"
    )
    assert int(orphans) == 0

"""`tracehouse status --json` on a running pipeline with real data: throughput, drops by
reason (a malformed raw message lands in the DLQ and in ``messages_rejected``), row counts."""

from __future__ import annotations

import json

from confluent_kafka import Producer

from core.clickhouse import connect
from deploy.local.stack import LocalStack
from tests.integration.cli_runner import run_cli
from tests.integration.helpers import wait_until
from tracehouse.demo_traces import send_demo_load


def _status(stack: LocalStack, *args: str) -> str:
    return run_cli(stack.settings, "status", *args)


def test_status_reports_throughput_drops_and_dlq(pipeline: LocalStack) -> None:
    s = pipeline.settings
    sent = send_demo_load(f"http://127.0.0.1:{s.ingest_http_port}/v1/traces", 5, 20)
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap})
    producer.produce(s.topics.raw_spans, b"\xff not protobuf", partition=0)
    assert producer.flush(10) == 0
    client = connect(s.clickhouse_url, s.clickhouse_database)
    wait_until(lambda: int(client.command("SELECT count() FROM otel_traces")), lambda n: n == sent)
    report = wait_until(
        lambda: json.loads(_status(pipeline, "--json")),
        lambda r: (
            r["flow"]["drops"].get("messages_rejected", {}).get("malformed", 0) >= 1
            and r["flow"]["throughput"]["received_per_second"] > 0
        ),
        timeout=30,
        interval=1,
    )
    assert report["rows"]["otel_traces"] == sent
    tp = report["flow"]["throughput"]
    assert tp["received_per_second"] == round(sent / tp["window_seconds"], 1)
    assert sum(report["dlq"][s.topics.streams_dlq].values()) >= 1
    assert report["ingest_rejected"] == {} or all(
        v == 0 for v in report["ingest_rejected"].values()
    )
    assert {row["group"] for row in report["lag"]} == {s.streams_group, s.sink_group}
    assert "approximate" in report["lag_caveat"]
    kept = {row["table"]: row for row in report["retention"]}
    assert kept["otel_traces"]["keep_days"] == s.retention_spans_days
    assert kept["otel_traces"]["oldest"] <= kept["otel_traces"]["newest"]
    assert kept["otel_traces_archive"] == {
        "table": "otel_traces_archive",
        "keep_days": 0,
        "server_ttl": False,
        "oldest": None,
        "newest": None,
    }
    text = _status(pipeline)
    assert "Retention (kept / oldest row / newest row):" in text
    assert "otel_traces_archive          forever      empty" in text
    assert "Throughput (spans/s, last 60 s" in text
    assert "messages_rejected" in text and "malformed" in text
    assert f"{s.topics.streams_dlq}:" in text

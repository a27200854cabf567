"""Throughput and drops for `tracehouse status`: how fast spans move and where they leave.

Throughput is read from ``pipeline_counters`` (the streams workers' counter deltas stored by
the sink), so it covers every worker at once without scraping each one; drops come from the
same table, the DLQ topics (by their ``reason`` header) and, when reachable, the local
ingest node's /metrics (ingest rejections never reach Kafka, so they are not in the table).
The supervisor section reads the state file `tracehouse up` keeps in its run dir.
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from core.kafka import client_config
from core.settings import Settings

WINDOW_SECONDS = 60
DROP_COUNTERS = ("spans_sampled_out", "spans_evicted", "spans_late", "messages_rejected")
DLQ_READ_LIMIT = 10_000  # status must stay quick; a larger DLQ is reported as "at least"


def throughput(client: Any, window: int = WINDOW_SECONDS) -> dict[str, float]:
    """Spans per second received and kept by streams, averaged over the last ``window`` s."""
    rows = client.query(
        "SELECT Name, sum(Value) FROM pipeline_counters FINAL "
        "WHERE TimeUnix >= now64(9) - toIntervalSecond({w:UInt32}) "
        "AND Name IN ('spans_received', 'spans_sampled') GROUP BY Name",
        parameters={"w": window},
    ).result_rows
    got = {str(name): int(value) for name, value in rows}
    return {
        "window_seconds": window,
        "received_per_second": round(got.get("spans_received", 0) / window, 1),
        "sampled_per_second": round(got.get("spans_sampled", 0) / window, 1),
    }


def counter_drops(client: Any) -> dict[str, dict[str, int]]:
    """All-time drop counters by name and reason."""
    rows = client.query(
        "SELECT Name, Reason, sum(Value) FROM pipeline_counters FINAL "
        "WHERE Name IN {names:Array(String)} GROUP BY Name, Reason ORDER BY Name, Reason",
        parameters={"names": list(DROP_COUNTERS)},
    ).result_rows
    out: dict[str, dict[str, int]] = {}
    for name, reason, value in rows:
        out.setdefault(str(name), {})[str(reason) or "-"] = int(value)
    return out


def misrouted_traces(client: Any) -> int:
    """All-time count of traces streams saw on a partition their partitioner does not pick:
    some producer partitions differently from ``ingest_partitioner``, so those traces were
    split over partitions and decided in parts (ingest/README.md, "Publishing straight to
    Kafka")."""
    rows = client.query(
        "SELECT sum(Value) FROM pipeline_counters FINAL WHERE Name = 'traces_misrouted'"
    ).result_rows
    return int(rows[0][0] or 0) if rows else 0


def dlq_reasons(settings: Settings, topic: str, partitions: int) -> dict[str, int]:
    """Messages in a DLQ topic by ``reason`` header (read from the start, bounded)."""
    consumer = Consumer(
        client_config(
            settings.kafka,
            group_id=f"tracehouse-status-{time.monotonic_ns()}",
            enable_auto_commit=False,
        )
    )
    reasons: Counter[str] = Counter()
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        # The first fetch (metadata, leader, offset lookup) can take seconds on a busy
        # broker; after that, a short silence means the end was reached.
        started = time.monotonic()
        idle_until = started + 3.0
        while (
            time.monotonic() < min(idle_until, started + 10.0)
            and sum(reasons.values()) < DLQ_READ_LIMIT
        ):
            msgs = consumer.consume(500, 0.2)
            for msg in msgs:
                if msg.error() is None:
                    headers = dict(msg.headers() or [])
                    reason = headers.get("reason") or b"unknown"
                    reasons[reason.decode() if isinstance(reason, bytes) else reason] += 1
            if msgs:
                idle_until = time.monotonic() + 0.5
    finally:
        consumer.close()
    return dict(sorted(reasons.items()))


def ingest_rejections(port: int) -> dict[str, float] | str:
    """``tracehouse_ingest_spans_rejected_total`` by reason from one ingest node."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError as exc:
        return f"unavailable: {exc}"
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "tracehouse_ingest_spans_rejected_total":
                reason = s.labels.get("reason", "")
                out[reason] = out.get(reason, 0.0) + s.value
    return dict(sorted(out.items()))


def supervisor_state(run_dir: Path) -> dict[str, Any] | str:
    """What `tracehouse up`'s supervisor last wrote to ``<run-dir>/supervisor.json``.

    A string (not an error) when no `up` ever ran there, so status works without one.
    """
    from deploy.local.supervisor import read_state  # stdlib only: cheap to import

    return read_state(run_dir)


def render_supervisor(state: dict[str, Any] | str) -> list[str]:
    """The supervisor section of the text report: one line per supervised component."""
    if isinstance(state, str):
        return ["Supervised components (tracehouse up):", f"  {state}"]
    running = "running" if state.get("running") else "not running"
    lines = [f"Supervised components (tracehouse up pid {state.get('up_pid')}, {running}):"]
    lines.append(f"  {'component':<12} {'state':<11} {'pid':>8} {'restarts':>8}  last exit")
    for comp in state.get("components", []):
        pid = comp.get("pid") or "-"
        last = "-"
        if comp.get("last_exit_code") is not None:
            when = time.strftime("%H:%M:%S", time.localtime(comp.get("last_exit_at") or 0))
            last = f"code {comp['last_exit_code']} at {when}"
        if comp.get("next_restart_at"):
            wait = max(0.0, comp["next_restart_at"] - time.time())
            last += f", next start in {wait:.0f} s"
        lines.append(
            f"  {comp['name']:<12} {comp['state']:<11} {pid!s:>8} {comp.get('restarts', 0):>8}"
            f"  {last}"
        )
    return lines

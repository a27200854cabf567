"""`tracehouse status`: topics, consumer-group lag per partition, ClickHouse row counts,
retention with the oldest/newest row per table (``status_retention``), throughput and drops
(see ``status_flow``), and what `tracehouse up`'s supervisor did (state, pid and restarts of
each local component); text for people, ``--json`` for scripts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from core.clickhouse import connect
from core.kafka import KafkaConnection, client_config, cluster_metadata
from core.settings import Settings
from core.topics import topic_problems
from query.counts import table_row_counts
from sinks.writers import writers_by_topic
from tracehouse import status_flow, status_retention

LAG_CAVEAT = (
    "lag is approximate on the local Tansu broker: its high watermark is wrong after "
    "multi-record batches"
)


@dataclass
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int
    high: int

    @property
    def lag(self) -> int:
        return max(0, self.high - max(self.committed, 0))


def topic_partitions(kafka: KafkaConnection) -> dict[str, int]:
    meta = cluster_metadata(kafka)
    return {
        name: len(info.partitions)
        for name, info in sorted(meta.topics.items())
        if not name.startswith("__")
    }


def group_lag(
    kafka: KafkaConnection, group: str, topic: str, partitions: int
) -> list[PartitionLag]:
    consumer = Consumer(client_config(kafka, group_id=group, enable_auto_commit=False))
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        committed = consumer.committed(tps, timeout=10)
        out = []
        for tp in committed:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, tp.partition), timeout=10
            )
            out.append(PartitionLag(group, topic, tp.partition, tp.offset, high))
        return out
    finally:
        consumer.close()


def collect(settings: Settings, run_dir: Path | None = None) -> dict[str, Any]:
    topics = topic_partitions(settings.kafka)
    lags: list[PartitionLag] = []
    pairs = [(settings.streams_group, settings.topics.raw_spans)]
    pairs += [(settings.sink_group, topic) for topic in writers_by_topic(settings)]
    for group, topic in pairs:
        if topic in topics:
            lags.extend(group_lag(settings.kafka, group, topic, topics[topic]))
    flow: dict[str, Any] | str
    try:
        client = connect(settings.clickhouse, settings.clickhouse_database)
        counts: dict[str, int] | str = table_row_counts(client, settings.clickhouse_database)
        retention: list[dict[str, Any]] | str = status_retention.collect(client, settings)
        flow = {
            "throughput": status_flow.throughput(client),
            "drops": status_flow.counter_drops(client),
            "misrouted_traces": status_flow.misrouted_traces(client),
        }
    except Exception as exc:  # status must still print Kafka's view when ClickHouse is down
        counts = flow = retention = f"unavailable: {exc}"
    dlq = {
        topic: status_flow.dlq_reasons(settings, topic, topics[topic])
        for topic in (settings.topics.streams_dlq, settings.topics.sink_dlq)
        if topic in topics
    }
    try:
        problems, notes = topic_problems(settings)
        topic_check: dict[str, Any] = {"problems": problems, "notes": notes}
    except Exception as exc:  # the rest of the report still helps
        topic_check = {"problems": {}, "notes": [f"topic check failed: {exc}"]}
    report = {
        "partitioner": settings.ingest_partitioner,
        "topics": topics,
        "topic_check": topic_check,
        "lag": lags,
        "rows": counts,
        "retention": retention,
        "flow": flow,
        "dlq": dlq,
        "ingest_rejected": status_flow.ingest_rejections(settings.ingest_http_port),
    }
    if run_dir is not None:
        report["supervisor"] = status_flow.supervisor_state(run_dir)
    return report


def to_json(report: dict[str, Any]) -> str:
    out = {**report, "lag": [{**asdict(lag), "lag": lag.lag} for lag in report["lag"]]}
    out["lag_caveat"] = LAG_CAVEAT
    return json.dumps(out, indent=2, sort_keys=True)


def render(report: dict[str, Any]) -> str:
    lines = ["Topics (partitions):"]
    lines += [f"  {name:<28} {n}" for name, n in report["topics"].items()]
    lines += render_topic_check(report.get("topic_check", {}))
    lines.append(f"Consumer-group lag per partition ({LAG_CAVEAT}):")
    lines.append(
        f"  {'group':<22} {'topic':<20} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}"
    )
    for lag in report["lag"]:
        committed = str(lag.committed) if lag.committed >= 0 else "-"
        lines.append(
            f"  {lag.group:<22} {lag.topic:<20} {lag.partition:>4} {committed:>10} "
            f"{lag.high:>10} {lag.lag:>8}"
        )
    rows = report["rows"]
    lines.append("ClickHouse rows:")
    if isinstance(rows, str):
        lines.append(f"  {rows}")
    else:
        lines += [f"  {name:<28} {n}" for name, n in rows.items()]
    lines += status_retention.render(report.get("retention", "unavailable"))
    lines += _render_flow(report)
    if "supervisor" in report:
        lines += status_flow.render_supervisor(report["supervisor"])
    return "\n".join(lines)


def render_topic_check(check: dict[str, Any]) -> list[str]:
    """WARNING lines for topics that differ from the settings (replicas, in-sync replicas,
    min.insync.replicas, retention, cleanup policy), so an under-replicated or mis-created
    topic is seen before a broker loss makes it lose data."""
    lines = []
    for topic, problems in sorted(check.get("problems", {}).items()):
        lines += [f"  WARNING {topic}: {problem}" for problem in problems]
    lines += [f"  note: {note}" for note in check.get("notes", [])]
    if not lines:
        return ["  topic settings: as configured (replication, min.insync.replicas, retention)"]
    return lines


def _render_flow(report: dict[str, Any]) -> list[str]:
    flow = report.get("flow", "unavailable")
    lines = []
    if isinstance(flow, str):
        lines += ["Throughput:", f"  {flow}", "Drops:", f"  {flow}"]
    else:
        tp = flow["throughput"]
        lines.append(
            f"Throughput (spans/s, last {tp['window_seconds']} s, from pipeline_counters):"
        )
        lines.append(f"  received by streams {tp['received_per_second']:>10}")
        lines.append(f"  kept (to the sink)  {tp['sampled_per_second']:>10}")
        lines.append("Drops (all time, from pipeline_counters):")
        if not flow["drops"]:
            lines.append("  none")
        for name, reasons in flow["drops"].items():
            lines += [f"  {name:<22} {reason:<24} {n:>10}" for reason, n in reasons.items()]
        misrouted = flow.get("misrouted_traces", 0)
        lines.append(
            f"Traces split over partitions (all time): {misrouted}"
            + (
                " - a producer partitions differently from ingest_partitioner="
                f"{report.get('partitioner', '?')}; see ingest/README.md"
                if misrouted
                else ""
            )
        )
    lines.append("Dead-letter topics (messages by reason):")
    if not report.get("dlq"):
        lines.append("  none")
    for topic, reasons in report.get("dlq", {}).items():
        lines.append(
            f"  {topic}: " + (", ".join(f"{r}={n}" for r, n in reasons.items()) or "empty")
        )
    rejected = report.get("ingest_rejected", {})
    lines.append("Ingest rejections (spans by reason, this node's /metrics):")
    if isinstance(rejected, str):
        lines.append(f"  {rejected}")
    else:
        lines.append("  " + (", ".join(f"{r}={n:g}" for r, n in rejected.items()) or "none"))
    return lines

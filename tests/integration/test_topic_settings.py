"""Topics are created as the settings say (replication factor, min.insync.replicas, retention,
cleanup policy, per-topic overrides, the decisions log's own retention), and `tracehouse
status` warns where the cluster's topics differ from the settings, on the real broker.

Tansu is one node: topics with more replicas than brokers cannot exist there, so the
under-replication warnings are shown by checking a one-replica topic against settings that
want three replicas and two in sync, which is exactly what an operator sees after a topic was
created by hand (or by an old version) with replication factor 1 on a three-broker cluster.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka.admin import AdminClient, ConfigResource

from core.kafka import client_config
from core.settings import Settings
from core.topics import ensure_state_topic, ensure_topics, state_topic_name, topic_problems
from deploy.local.stack import LocalStack
from tests.conftest import isolated_settings
from tests.integration.cli_runner import run_cli


def _configs(settings: Settings, topic: str) -> dict[str, Any]:
    admin = AdminClient(client_config(settings.kafka))
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(10)
    return {key: entry.value for key, entry in entries.items()}


def test_topics_are_created_with_the_configured_durability(services: LocalStack) -> None:
    s = (
        isolated_settings(services, partitions=2)
        .with_(
            kafka_retention_ms=3 * 24 * 3600 * 1000,
            kafka_decisions_retention_ms=6 * 3600 * 1000,
            kafka_topic_overrides="sink_dlq.retention.ms=-1,raw_spans.cleanup.policy=compact,delete",
        )
        .validate()
    )
    outcome = ensure_topics(s)
    decisions = state_topic_name(s.streams_group)
    assert set(outcome) == {*s.topics.all(), decisions}
    assert set(outcome.values()) == {"created"}
    accounting = _configs(s, s.topics.accounting)
    assert accounting["retention.ms"] == str(3 * 24 * 3600 * 1000)
    assert accounting["cleanup.policy"] == "delete"
    assert accounting["min.insync.replicas"] == "1"
    assert _configs(s, s.topics.sink_dlq)["retention.ms"] == "-1"
    assert _configs(s, s.topics.raw_spans)["cleanup.policy"] == "compact,delete"
    log = _configs(s, decisions)
    assert log["retention.ms"] == str(6 * 3600 * 1000)
    assert log["cleanup.policy"] == "delete"  # deltas keyed by partition: never compacted
    # Created as configured: nothing to warn about; a second run leaves everything alone.
    assert topic_problems(s) == ({}, [])
    assert set(ensure_topics(s).values()) == {"exists"}
    assert ensure_state_topic(s) == decisions


def test_status_warns_about_topics_unlike_the_settings(services: LocalStack) -> None:
    s = isolated_settings(services, partitions=2)
    ensure_topics(s)  # replication factor 1, min.insync.replicas 1, 7 d retention
    cluster = s.with_(
        kafka_replication_factor=3,
        kafka_min_insync_replicas=2,
        kafka_retention_ms=14 * 24 * 3600 * 1000,
        kafka_topic_overrides="sink_dlq.cleanup.policy=compact",
    ).validate()
    problems, notes = topic_problems(cluster)
    assert notes == []
    assert set(problems) == {*s.topics.all(), state_topic_name(s.streams_group)}
    raw = problems[s.topics.raw_spans]
    assert "partition 0: 1 replica(s), replication factor setting is 3" in raw
    assert "partition 1: 1 in-sync replica(s) < min.insync.replicas 2: acks=all writes fail" in raw
    assert "min.insync.replicas=1, below the settings' 2" in raw
    assert (
        f"retention.ms={7 * 24 * 3600 * 1000}, below the settings' {14 * 24 * 3600 * 1000}" in raw
    )
    assert "cleanup.policy=delete (settings: compact)" in problems[s.topics.sink_dlq]
    assert not any("cleanup.policy" in p for p in raw)
    # The operator's view: `tracehouse status` in its own process, configured by environment.
    text = run_cli(cluster, "status")
    assert f"WARNING {s.topics.raw_spans}: partition 0: 1 replica(s), replication factor" in text
    assert f"WARNING {s.topics.sink_dlq}: cleanup.policy=delete (settings: compact)" in text


def test_a_missing_topic_is_reported(services: LocalStack) -> None:
    s = isolated_settings(services, partitions=1)
    problems, _ = topic_problems(s)
    assert problems[s.topics.raw_spans] == ["missing (tracehouse init creates it)"]
    # The decisions log appears with the first streams worker: not a problem before.
    assert state_topic_name(s.streams_group) not in problems

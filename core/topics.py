"""The pipeline's topics: what each must look like, creating them, and checking them.

One :func:`topic_specs` says, from the settings, the partitions, replication factor and
topic configs (``min.insync.replicas``, ``retention.ms``, ``cleanup.policy`` and any per-topic
override) of every topic the pipeline uses, the streams decisions log included. Creation
(``tracehouse init`` / ``topics``, the streams worker for its decisions log) and the check
``tracehouse status`` runs (:func:`topic_problems`) both read it, so what is created is what
is checked.

Creation is idempotent: an existing topic is left as it is (its partitions and configs are
the operator's), and :func:`topic_problems` reports where it differs from the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from core.kafka import KafkaConnection, client_config, cluster_metadata
from core.settings import Settings, Topics
from core.topic_overrides import DECISIONS, parse_overrides


def state_topic_name(streams_group: str) -> str:
    """The streams worker's decisions log (one per consumer group)."""
    return f"{streams_group}-decisions"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def _base_config(settings: Settings) -> dict[str, str]:
    return {
        "min.insync.replicas": str(settings.kafka_min_insync_replicas),
        "retention.ms": str(settings.kafka_retention_ms),
        "cleanup.policy": "delete",
    }


def topic_specs(settings: Settings, decisions_partitions: int | None = None) -> list[TopicSpec]:
    """Every pipeline topic as the settings want it; the decisions log last, with
    ``decisions_partitions`` (the raw topic's partition count; default: ``partitions``).

    The decisions log keeps ``cleanup.policy=delete`` with its own retention: its records are
    deltas keyed by raw partition, so compaction (latest record per key) would drop every
    decision but the last tick's (docs/adr/0005-topic-durability-and-client-security.md).
    """
    overrides = parse_overrides(settings.kafka_topic_overrides)
    specs = []
    for f in fields(Topics):
        config = _base_config(settings) | overrides.get(f.name, {})
        specs.append(
            TopicSpec(
                getattr(settings.topics, f.name),
                settings.partitions,
                settings.kafka_replication_factor,
                config,
            )
        )
    decisions = _base_config(settings) | {
        "retention.ms": str(settings.kafka_decisions_retention_ms)
    }
    decisions |= overrides.get(DECISIONS, {})
    specs.append(
        TopicSpec(
            state_topic_name(settings.streams_group),
            decisions_partitions or settings.partitions,
            settings.kafka_replication_factor,
            decisions,
        )
    )
    return specs


def create_topics(kafka: KafkaConnection, specs: list[TopicSpec], timeout: float) -> dict[str, str]:
    admin = AdminClient(client_config(kafka))
    wanted = [
        NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config)) for s in specs
    ]
    outcome: dict[str, str] = {}
    for topic, fut in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            fut.result(timeout)
            outcome[topic] = "created"
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                outcome[topic] = "exists"
            else:
                raise RuntimeError(f"creating topic {topic}: {err.str()}") from exc
    return outcome


def ensure_topics(settings: Settings, timeout: float = 30) -> dict[str, str]:
    """Create every pipeline topic (the decisions log too) that does not exist yet. The
    decisions log gets the raw topic's actual partition count, which differs from
    ``partitions`` when the raw topic existed before the setting changed."""
    cluster_metadata(settings.kafka, timeout=timeout)  # a refused login fails here, named
    outcome = create_topics(settings.kafka, topic_specs(settings)[:-1], timeout)
    parts = partition_count(settings.kafka, settings.topics.raw_spans)
    decisions = topic_specs(settings, decisions_partitions=parts)[-1]
    return outcome | create_topics(settings.kafka, [decisions], timeout)


def ensure_state_topic(settings: Settings, timeout: float = 30) -> str:
    """Create the decisions log with the raw topic's partition count (idempotent): partition
    n of the log belongs to raw partition n, whatever ``partitions`` says now."""
    parts = partition_count(settings.kafka, settings.topics.raw_spans)
    spec = topic_specs(settings, decisions_partitions=parts)[-1]
    create_topics(settings.kafka, [spec], timeout)
    return spec.name


def partition_count(kafka: KafkaConnection, topic: str, timeout: float = 10) -> int:
    meta = cluster_metadata(kafka, topic, timeout)
    info = meta.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        raise RuntimeError(f"topic {topic!r} not found on {kafka.bootstrap}")
    return len(info.partitions)


# Configs whose actual value may be larger than wanted without risk (more retention keeps
# more; a higher min.insync.replicas is stricter). Everything else must match exactly.
_AT_LEAST = ("retention.ms", "min.insync.replicas")


def _config_problem(key: str, wanted: str, actual: str | None) -> str | None:
    if actual is None:
        return None  # the broker does not report it: nothing to compare
    if key in _AT_LEAST:
        try:
            w, a = int(wanted), int(actual)
        except ValueError:
            return None if wanted == actual else f"{key}={actual} (settings: {wanted})"
        if key == "retention.ms":
            if a == -1 or (w != -1 and a >= w):
                return None
        elif a >= w:
            return None
        return f"{key}={actual}, below the settings' {wanted}"
    if set(actual.split(",")) != set(wanted.split(",")):
        return f"{key}={actual} (settings: {wanted})"
    return None


def topic_problems(
    settings: Settings, timeout: float = 10
) -> tuple[dict[str, list[str]], list[str]]:
    """Where the cluster's topics differ from :func:`topic_specs`, per topic, and what could
    not be checked: missing topics, fewer replicas than the replication factor, partitions
    whose in-sync replicas are fewer than ``min.insync.replicas`` (acks=all writes fail there)
    or than their replicas (under-replicated), and configs below or unlike the settings."""
    admin = AdminClient(client_config(settings.kafka))
    meta = cluster_metadata(settings.kafka, timeout=timeout)
    problems: dict[str, list[str]] = {}
    notes: list[str] = []
    specs = topic_specs(settings)
    present = [s for s in specs if s.name in meta.topics]
    for spec in specs:
        info = meta.topics.get(spec.name)
        found: list[str] = []
        if info is None:
            if spec is not specs[-1]:  # the decisions log appears with the first worker
                found.append("missing (tracehouse init creates it)")
            problems[spec.name] = found
            continue
        min_isr = int(spec.config.get("min.insync.replicas", "1"))
        for pid, part in sorted(info.partitions.items()):
            if len(part.replicas) < spec.replication_factor:
                found.append(
                    f"partition {pid}: {len(part.replicas)} replica(s), replication factor "
                    f"setting is {spec.replication_factor}"
                )
            if len(part.isrs) < len(part.replicas):
                found.append(
                    f"partition {pid}: under-replicated ({len(part.isrs)} of "
                    f"{len(part.replicas)} replicas in sync)"
                )
            if len(part.isrs) < min_isr:
                found.append(
                    f"partition {pid}: {len(part.isrs)} in-sync replica(s) < "
                    f"min.insync.replicas {min_isr}: acks=all writes fail"
                )
        if spec is specs[-1] and settings.topics.raw_spans in meta.topics:
            raw = len(meta.topics[settings.topics.raw_spans].partitions)
            if len(info.partitions) < raw:
                found.append(
                    f"{len(info.partitions)} partitions, fewer than the {raw} of "
                    f"{settings.topics.raw_spans}: restoring the others' decisions fails"
                )
        problems[spec.name] = found
    if present:
        actual = _describe(admin, [s.name for s in present], timeout, notes)
        for spec in present:
            configs = actual.get(spec.name)
            if configs is None:
                continue
            for key, wanted in sorted(spec.config.items()):
                problem = _config_problem(key, wanted, configs.get(key))
                if problem is not None:
                    problems[spec.name].append(problem)
    return {name: found for name, found in problems.items() if found}, notes


def _describe(
    admin: AdminClient, names: list[str], timeout: float, notes: list[str]
) -> dict[str, dict[str, str | None]]:
    out: dict[str, dict[str, str | None]] = {}
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in names])
    for resource, fut in futures.items():
        try:
            entries: dict[str, Any] = fut.result(timeout)
        except Exception as exc:  # a broker without DescribeConfigs: say so, check the rest
            notes.append(f"configs of {resource.name} unavailable: {exc}")
            continue
        out[resource.name] = {key: entry.value for key, entry in entries.items()}
    return out

"""Create the pipeline's topics idempotently (an existing topic is fine, anything else fails)."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from core.kafka import client_config
from core.settings import Settings


def ensure_topics(settings: Settings, timeout: float = 30) -> dict[str, str]:
    admin = AdminClient(client_config(settings.kafka_bootstrap))
    wanted = [NewTopic(t, settings.partitions, 1) for t in settings.topics.all()]
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


def partition_count(bootstrap: str, topic: str, timeout: float = 10) -> int:
    admin = AdminClient(client_config(bootstrap))
    meta = admin.list_topics(topic, timeout=timeout)
    info = meta.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        raise RuntimeError(f"topic {topic!r} not found on {bootstrap}")
    return len(info.partitions)

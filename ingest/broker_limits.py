"""Ask the cluster how big a message on the raw topic may be, so splitting uses the real limit.

``ingest_max_message_bytes`` is the configured cap; when the topic (or broker) reports a smaller
``max.message.bytes`` the cap shrinks to fit with headroom for the batch overhead, so no message
is ever rejected for size (which would lose its spans). Brokers that do not answer
DescribeConfigs (Tansu returns nothing) leave the configured cap in force.
"""

from __future__ import annotations

import logging

from confluent_kafka.admin import AdminClient, ConfigResource

from core.kafka import KafkaConnection, client_config

log = logging.getLogger("tracehouse.ingest")

# Record batch header + record framing + key; generous so a payload at the cap always fits.
OVERHEAD_BYTES = 16 * 1024


def reported_topic_limit(kafka: KafkaConnection, topic: str, timeout: float = 10) -> int | None:
    """The topic's ``max.message.bytes`` as the cluster reports it, or None."""
    try:
        admin = AdminClient(client_config(kafka))
        futures = admin.describe_configs([ConfigResource("topic", topic)])
        for fut in futures.values():
            entry = fut.result(timeout).get("max.message.bytes")
            if entry is not None and entry.value:
                return int(entry.value)
    except Exception as exc:  # any failure: keep the configured cap
        log.info("could not read topic max.message.bytes", extra={"fields": {"error": str(exc)}})
    return None


def effective_max_message_bytes(configured: int, reported: int | None) -> int:
    if reported is None or reported - OVERHEAD_BYTES >= configured:
        return configured
    return max(1024, reported - OVERHEAD_BYTES)

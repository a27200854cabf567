"""confluent-kafka producer behind an asyncio-friendly ``publish`` that resolves on broker ack.

The receivers answer a client only once Kafka acknowledged every message of its request
(acks=all + idempotence), so an OTLP success means the spans are durable in Kafka.
A background thread drives librdkafka's delivery callbacks and hands results to the loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer


class PublishError(RuntimeError):
    """Kafka did not take the message; ``retryable`` says whether the client should retry."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def producer_config(
    bootstrap: str,
    *,
    compression: str = "lz4",
    linger_ms: int = 5,
    timeout_ms: int = 30_000,
    max_message_bytes: int = 1_000_000,
    **overrides: Any,
) -> dict[str, Any]:
    """Durable, throughput-tuned producer settings.

    acks=all + idempotence: an ack means every in-sync replica has the message and retries
    never duplicate or reorder it. A short linger lets concurrent requests share a produce
    request; ``message.max.bytes`` leaves headroom over ingest's own message cap for the
    record overhead. ``timeout_ms`` bounds how long a client waits before a retryable error
    when the brokers are gone.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": compression,
        "linger.ms": linger_ms,
        "batch.size": max(max_message_bytes, 1_000_000),
        "message.max.bytes": max_message_bytes + 65_536,
        "queue.buffering.max.kbytes": 262_144,
        # Kafka's (Java) default partitioner, for messages produced without an explicit
        # partition, so keys land where other keyed producers' messages land.
        "partitioner": "murmur2_random",
        "message.timeout.ms": timeout_ms,
        "socket.keepalive.enable": True,
    }
    config.update(overrides)
    return config


class KafkaPublisher:
    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def publish(
        self, topic: str, value: bytes, key: bytes | None, partition: int | None
    ) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Any) -> None:
            loop.call_soon_threadsafe(_settle, fut, err)

        kwargs: dict[str, Any] = {"key": key, "on_delivery": delivered}
        if partition is not None:
            kwargs["partition"] = partition
        try:
            self._producer.produce(topic, value, **kwargs)
        except BufferError as exc:
            fut.set_exception(PublishError(f"producer queue full: {exc}", retryable=True))
        except KafkaException as exc:
            err = exc.args[0]
            fut.set_exception(PublishError(err.str(), retryable=err.retriable()))
        return fut

    def queue_depth(self) -> int:
        return len(self._producer)

    def close(self, timeout: float = 10) -> int:
        remaining = self._producer.flush(timeout)
        self._stop.set()
        self._poller.join(1)
        return int(remaining)


def _settle(fut: asyncio.Future[None], err: KafkaError | None) -> None:
    if fut.done():
        return
    if err is None:
        fut.set_result(None)
    else:
        retryable = err.retriable() or err.code() in (
            KafkaError._MSG_TIMED_OUT,
            KafkaError._TRANSPORT,
            KafkaError._ALL_BROKERS_DOWN,
        )
        fut.set_exception(PublishError(err.str(), retryable=retryable))

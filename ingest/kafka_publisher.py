"""confluent-kafka producer behind an asyncio-friendly ``publish`` that resolves on broker ack.

The receivers answer a client only once Kafka acknowledged every message of its request
(acks=all + idempotence), so an OTLP success means the spans are durable in Kafka.
A background thread drives librdkafka's delivery callbacks and hands results to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from core.kafka import KafkaConnection, client_config

log = logging.getLogger("tracehouse.ingest.kafka")


class PublishError(RuntimeError):
    """Kafka did not take the message; ``retryable`` says whether the client should retry."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def producer_config(
    kafka: KafkaConnection,
    *,
    compression: str = "lz4",
    linger_ms: int = 25,
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
    config: dict[str, Any] = client_config(kafka) | {
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
    """One librdkafka producer, replaced when it hits a fatal error.

    An idempotent producer turns fatal when the cluster forgets its producer id (e.g. a broker
    restarted without its log); from then on it can never deliver again. Rather than hang or
    answer every client with errors until someone restarts ingest, the poll thread purges the
    dead producer (its pending messages fail, so their clients get a retryable error) and
    builds a fresh one.

    A restarted broker that lost its state (Tansu's memory storage; a wiped Kafka cluster)
    is worse: librdkafka answers UNKNOWN_PRODUCER_ID by bumping the epoch of the id the
    broker forgot, forever, and never reports a fatal error, so every message times out.
    Several delivery timeouts in a row with no success in between therefore also replace
    the producer; the fresh one asks the broker for a new producer id. When the broker is
    simply down, the fresh producer fails the same way until it is back, which costs nothing.
    Or the restarted broker answers every message at once with a refusal of the producer's
    id or epoch (PRODUCER_FENCED, seen after a Tansu restart with batches in flight), which
    librdkafka does not count as fatal either: one such delivery error replaces the producer.
    """

    #: consecutive delivery timeouts (no success in between) that trigger a replacement
    TIMEOUTS_BEFORE_RESET = 3

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = {**config, "error_cb": self._on_error}
        self._producer = Producer(self._config)
        self._fatal = threading.Event()
        self._stop = threading.Event()
        self.resets = 0
        self._timeouts_in_a_row = 0
        self._replacing = False
        self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._poller.start()

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            log.error("kafka producer fatal error", extra={"fields": {"error": err.str()}})
            self._fatal.set()
        else:
            log.debug("kafka client error", extra={"fields": {"error": err.str()}})

    def _poll(self) -> None:
        # This thread must never die: it runs every delivery callback.
        while not self._stop.is_set():
            try:
                self._producer.poll(0.05)
            except KafkaException as exc:
                err = exc.args[0]
                if isinstance(err, KafkaError) and err.fatal():
                    self._fatal.set()
                else:
                    log.warning("kafka poll error", extra={"fields": {"error": str(exc)}})
            except Exception:
                log.exception("unexpected error in the kafka poll loop")
            if self._timeouts_in_a_row >= self.TIMEOUTS_BEFORE_RESET:
                log.warning(
                    "kafka deliveries keep timing out; replacing the producer",
                    extra={"fields": {"timeouts_in_a_row": self._timeouts_in_a_row}},
                )
                self._fatal.set()
            if self._fatal.is_set():
                self._replace_producer()

    def _identity_refused(self, err: KafkaError) -> None:
        """The broker refused this producer's id or epoch for good (see the class docstring):
        every later message would fail the same way, so the producer is replaced."""
        if not self._fatal.is_set():
            log.warning(
                "the broker refuses the producer's identity; replacing the producer",
                extra={"fields": {"error": err.str()}},
            )
        self._fatal.set()

    def _replace_producer(self) -> None:
        old = self._producer
        self._producer = Producer(self._config)
        self._fatal.clear()
        self._timeouts_in_a_row = 0
        self.resets += 1
        # The old producer's messages fail now, with the error that condemned it: that must
        # not condemn the new one.
        self._replacing = True
        try:
            old.purge(True, True, False)
            old.poll(0)
        except KafkaException:
            pass
        finally:
            self._replacing = False
        remaining = len(old)
        log.warning(
            "kafka producer replaced after a fatal error",
            extra={"fields": {"purged_pending": remaining, "resets": self.resets}},
        )

    def publish(
        self, topic: str, value: bytes, key: bytes | None, partition: int | None
    ) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Any) -> None:
            # Runs on the poll thread, the only writer of the timeout streak.
            if err is None:
                self._timeouts_in_a_row = 0
            elif err.code() == KafkaError._MSG_TIMED_OUT:
                self._timeouts_in_a_row += 1
            elif err.code() in PRODUCER_IDENTITY_ERRORS and not self._replacing:
                self._identity_refused(err)
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
            if err.fatal():
                self._fatal.set()
            fut.set_exception(PublishError(err.str(), retryable=err.code() not in _PERMANENT))
        return fut

    def queue_depth(self) -> int:
        return len(self._producer)

    def close(self, timeout: float = 10) -> int:
        self._stop.set()
        self._poller.join(1)
        remaining = self._producer.flush(timeout)
        return int(remaining)


# Errors that a retry of the same bytes can never fix; anything else (timeouts, transport,
# a producer reset after a fatal idempotence error, ...) is retryable for the client.
_PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError._INVALID_ARG,
    }
)


# Delivery errors that mean the broker will never again accept this producer's id or epoch.
PRODUCER_IDENTITY_ERRORS = frozenset(
    {
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
    }
)


def _settle(fut: asyncio.Future[None], err: KafkaError | None) -> None:
    if fut.done():
        return
    if err is None:
        fut.set_result(None)
    else:
        fut.set_exception(PublishError(err.str(), retryable=err.code() not in _PERMANENT))

"""Ingest's Kafka producer after its broker lost every producer id (Tansu restarted on memory
storage; a wiped cluster), on the real broker, with batches in flight at the kill.

The restarted broker may answer the old producer's id and epoch with a refusal on every
message (PRODUCER_FENCED, seen in the broker-restart fault test) or let its messages time out;
librdkafka reports neither as fatal. Either way the publisher must replace the producer and
deliver again within a bounded time, every time.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from core.kafka import client_config
from core.settings import Settings
from deploy.local.broker import start_broker
from deploy.local.ports import free_port
from ingest.kafka_publisher import KafkaPublisher, PublishError, producer_config

TOPIC = "recovery"
# Seconds between the restart and the topic's return, as `tracehouse init` may take: the
# refusals came when the old producer kept retrying into a broker without the topic.
PAUSES = (1.0, 4.0, 6.0, 8.0)


def _create_topic(settings: Settings) -> None:
    admin = AdminClient(client_config(settings.kafka))
    try:
        admin.create_topics([NewTopic(TOPIC, 4, 1)])[TOPIC].result(10)
    except KafkaException as exc:  # the producer's retries may have had the broker create it
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def _other_producer(settings: Settings) -> None:
    """Another idempotent producer (streams', the sink's) gets its id first: a broker that
    forgot every id may hand out the old producer's id again, and then refuses the old one."""
    other = Producer(producer_config(settings.kafka))
    other.produce(TOPIC, b"other", b"o")
    assert other.flush(20) == 0


async def _deliver_one(publisher: KafkaPublisher, seconds: float) -> float:
    """Seconds until one message is acknowledged, retrying as a client would."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < seconds:
        try:
            await publisher.publish(TOPIC, b"after", b"k", None)
            return loop.time() - start
        except PublishError:
            await asyncio.sleep(0.5)
    raise AssertionError(f"no delivery within {seconds} s after the broker restart")


async def _round(
    publisher: KafkaPublisher,
    settings: Settings,
    broker: subprocess.Popen[bytes],
    port: int,
    pause: float,
) -> tuple[subprocess.Popen[bytes], float]:
    in_flight = [publisher.publish(TOPIC, b"x" * 200, str(i).encode(), None) for i in range(400)]
    await asyncio.sleep(0.01)
    broker.send_signal(signal.SIGKILL)
    broker.wait(10)
    broker = start_broker(port)
    await asyncio.sleep(pause)
    _create_topic(settings)
    _other_producer(settings)
    recovered = await _deliver_one(publisher, 40)
    await asyncio.gather(*in_flight, return_exceptions=True)
    return broker, recovered


def test_publisher_delivers_again_after_each_broker_restart() -> None:
    port = free_port()
    broker = start_broker(port)
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{port}")
    try:
        _create_topic(settings)
        publisher = KafkaPublisher(producer_config(settings.kafka, timeout_ms=5_000))

        async def scenario() -> list[float]:
            nonlocal broker
            await _deliver_one(publisher, 20)
            times = []
            for pause in PAUSES:
                broker, took = await _round(publisher, settings, broker, port, pause)
                times.append(took)
            return times

        times = asyncio.run(scenario())
        publisher.close(5)
        assert len(times) == len(PAUSES)
    finally:
        broker.kill()
        broker.wait(10)

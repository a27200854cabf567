"""The streams state log restores everything written before it, from multi-record batches.

Tansu misreports the high watermark after multi-record batches (docs/architecture.md, "Measured
facts"), which is why the restore reads up to a barrier of its own instead. Records here are
produced with linger so the broker receives them as multi-record batches, then restored twice (a
second restore must also see the first restore's barrier and everything after it)."""

from __future__ import annotations

import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from core.kafka import KafkaConnection
from deploy.local.stack import LocalStack
from streams.state_log import encode_state, load_state


def test_restore_reads_all_records_of_multi_record_batches(services: LocalStack) -> None:
    bootstrap = services.settings.kafka_bootstrap
    topic = f"state-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)

    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 200, "batch.num.messages": 500}
    )
    for i in range(300):
        value = encode_state([(f"{i:032x}", i % 3 == 0, i)], i if i % 50 == 0 else None)
        producer.produce(topic, value, key=b"1", partition=1)
    producer.produce(topic, encode_state([("other", True, 1)], 999), key=b"0", partition=0)
    assert producer.flush(30) == 0

    state = load_state(KafkaConnection(bootstrap), topic, 1, keep_last=1000, timeout=30)
    assert len(state.decisions) == 300
    assert state.decisions[-1] == (f"{299:032x}", False, 299)
    assert sum(1 for _, sampled, _ in state.decisions if sampled) == 100
    assert state.aggregates_through == 250  # partition 0's mark does not leak in

    producer.produce(topic, encode_state([(f"{7:032x}", True, 400)], 260), key=b"1", partition=1)
    assert producer.flush(30) == 0
    again = load_state(KafkaConnection(bootstrap), topic, 1, keep_last=10, timeout=30)
    assert len(again.decisions) == 10  # bounded to the cache size, most recent last
    assert again.decisions[-1] == (f"{7:032x}", True, 400)
    assert again.aggregates_through == 260

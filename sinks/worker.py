"""Sink worker: consume ``spans.sampled``, insert per-partition batches, then commit.

Order per batch: record the intent (offset range) -> insert rows with a deterministic
``insert_deduplication_token`` -> send poison records to the DLQ -> commit offsets. A crash
anywhere in between is repaired by the next owner of the partition replaying the intent, so
delivery is at-least-once and storage exactly-once. While ClickHouse fails, consumption is
paused (memory stays bounded) and the insert is retried with backoff.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from prometheus_client import start_http_server

from schemas import avro_codec
from sinks import metrics
from sinks.batching import PartitionBatch
from sinks.clickhouse_store import SpanStore, connect
from tracehouse import logs
from tracehouse.settings import Settings

log = logging.getLogger("tracehouse.sink")

SPAN_BATCH = "span_batch"
MAX_BACKOFF = 10.0


def consumer_config(settings: Settings) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": settings.sink_group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": settings.heartbeat_interval_ms,
        "partition.assignment.strategy": "cooperative-sticky",
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 16 * 1024 * 1024,
    }


class SinkWorker:
    def __init__(self, settings: Settings, store: SpanStore | None = None) -> None:
        self.settings = settings
        self.topic = settings.topics.sampled_spans
        self.store = store or SpanStore(
            connect(settings.clickhouse_url, settings.clickhouse_database), settings.sink_group
        )
        self.consumer = Consumer(consumer_config(settings))
        self.dlq = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "acks": "all",
                "enable.idempotence": True,
            }
        )
        self.batches: dict[int, PartitionBatch] = {}
        # Offsets of recorded intents not yet committed: partition -> [(first, last), ...]
        self.replays: dict[int, list[tuple[int, int]]] = {}
        self.running = True

    # -- rebalance ---------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=30)
        for tp in committed:
            start = tp.offset if tp.offset >= 0 else 0
            self.replays[tp.partition] = self._planned(tp.partition, start)
        log.info(
            "assigned",
            extra={
                "fields": {
                    "partitions": [tp.partition for tp in partitions],
                    "replays": self.replays,
                }
            },
        )

    def _planned(self, partition: int, start: int) -> list[tuple[int, int]]:
        backoff = 0.5
        while True:
            try:
                return self.store.planned_batches(self.topic, partition, start)
            except Exception as exc:
                log.warning("reading batch intents failed, retrying: %s", exc)
                time.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Uncommitted work is dropped: the next owner re-reads it from the committed offset
        # and replays any recorded intent, so nothing is lost or stored twice.
        for tp in partitions:
            self.batches.pop(tp.partition, None)
            self.replays.pop(tp.partition, None)
        self._update_buffer_gauge()
        log.info("revoked", extra={"fields": {"partitions": [tp.partition for tp in partitions]}})

    # -- main loop ---------------------------------------------------------------------------
    def run(self) -> None:
        self.consumer.subscribe(
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        try:
            while self.running:
                for msg in self.consumer.consume(1000, 0.2):
                    self._handle(msg)
                self._flush_due(time.monotonic())
        finally:
            self.consumer.close()
            self.dlq.flush(10)

    def stop(self) -> None:
        self.running = False

    def _handle(self, msg: Any) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error: %s", err.str())
            return
        p, offset = msg.partition(), msg.offset()
        if p not in self.replays:  # revoked meanwhile
            return
        batch = self.batches.get(p)
        if batch is None:
            batch = self.batches[p] = PartitionBatch(
                self.topic, p, offset, started_at=time.monotonic()
            )
            plan = self.replays[p]
            while plan and plan[0][1] < offset:
                plan.pop(0)
            if plan and plan[0][0] == offset:
                batch.planned_last_offset = plan[0][1]
        try:
            record = avro_codec.decode(SPAN_BATCH, msg.value() or b"")
            batch.add(offset, record["spans"])
        except (avro_codec.AvroDecodeError, KeyError) as exc:
            batch.add_poison(offset, msg.key(), msg.value() or b"", str(exc))
        self._update_buffer_gauge()
        if batch.planned_last_offset is not None and offset >= batch.planned_last_offset:
            self._flush(p)

    def _flush_due(self, now: float) -> None:
        for p in list(self.batches):
            batch = self.batches[p]
            if batch.is_complete(
                self.settings.sink_batch_rows, self.settings.sink_batch_seconds, now
            ):
                self._flush(p)

    def _flush(self, p: int) -> None:
        batch = self.batches[p]
        if batch.planned_last_offset is not None and batch.last_offset < batch.planned_last_offset:
            return  # replay not complete yet
        backoff = 0.2
        paused = False
        while self.running:
            try:
                self._store(batch)
                break
            except Exception as exc:
                metrics.BATCHES.labels("retry").inc()
                log.warning("batch store failed, retrying in %.1fs: %s", backoff, exc)
                if not paused:
                    self.consumer.pause(self.consumer.assignment())
                    metrics.PAUSED.set(1)
                    paused = True
                # Serve group callbacks (heartbeats, rebalances) while waiting.
                deadline = time.monotonic() + backoff
                while time.monotonic() < deadline:
                    for msg in self.consumer.consume(1, 0.1):
                        log.debug("message while paused at %s", msg.offset())
                if p not in self.replays:  # revoked during the outage: next owner takes over
                    break
                backoff = min(MAX_BACKOFF, backoff * 2)
        else:
            return
        if paused:
            self.consumer.resume(self.consumer.assignment())
            metrics.PAUSED.set(0)

    def _store(self, batch: PartitionBatch) -> None:
        started = time.perf_counter()
        if batch.planned_last_offset is None:
            self.store.record_intent(batch)
        self.store.insert_spans(batch)
        for offset, key, value, reason in batch.dlq:
            self.dlq.produce(
                self.settings.topics.dlq,
                value,
                key=key,
                headers=[
                    ("reason", reason.encode()),
                    ("source_topic", batch.topic.encode()),
                    ("source_partition", str(batch.partition).encode()),
                    ("source_offset", str(offset).encode()),
                ],
            )
            metrics.RECORDS_DLQ.labels("undecodable_avro").inc()
        if batch.dlq and self.dlq.flush(30) > 0:
            raise RuntimeError("DLQ messages not acknowledged")
        self.consumer.commit(
            offsets=[TopicPartition(batch.topic, batch.partition, batch.last_offset + 1)],
            asynchronous=False,
        )
        metrics.INSERT_SECONDS.observe(time.perf_counter() - started)
        metrics.ROWS_STORED.inc(batch.rows)
        metrics.BATCHES.labels("ok").inc()
        del self.batches[batch.partition]
        plan = self.replays.get(batch.partition)
        if plan and plan[0] == (batch.first_offset, batch.last_offset):
            plan.pop(0)
        self._update_buffer_gauge()

    def _update_buffer_gauge(self) -> None:
        metrics.BUFFERED_ROWS.set(sum(b.rows for b in self.batches.values()))


def main(settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env()
    logs.setup("sink")
    start_http_server(settings.sink_metrics_port, addr="127.0.0.1")
    worker = SinkWorker(settings)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    log.info(
        "sink started", extra={"fields": {"topic": worker.topic, "group": settings.sink_group}}
    )
    worker.run()
    log.info("sink stopped")

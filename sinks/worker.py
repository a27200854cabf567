"""Sink worker: consume the sunk topics, insert per-partition batches, then commit.

One process subscribes to every stream in ``settings.sink_streams`` (spans, RED, edges,
accounting) with one consumer group; each topic has its own :class:`TopicTable`. Order per
batch: record the intent (offset range) -> insert the Arrow table with a deterministic
``insert_deduplication_token`` -> send poison records to the DLQ -> commit offsets. A crash
anywhere in between is repaired by the next owner of the partition replaying the intent, so
delivery is at-least-once and storage exactly-once. While ClickHouse fails, consumption is
paused (memory stays bounded) and the insert is retried with backoff.

Only outages are retried (``sinks/clickhouse_errors.py``). A batch ClickHouse refuses for its
data is bisected until the bad rows are isolated (``sinks/isolation.py``): the good rows are
stored with deterministic sub-tokens, the bad ones go to the DLQ with the reason, and for the
spans topic they are counted in the pipeline accounting, all before the commit. No message,
row or batch can hold a partition, let alone the worker.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from prometheus_client import start_http_server

from core import logs
from core.clickhouse import connect
from core.kafka import client_config
from core.settings import Settings
from schemas import avro_codec
from sinks import metrics
from sinks.accounting import CLICKHOUSE_REJECTED, rejected_spans_record
from sinks.batching import Intent, PartitionBatch, drop_stale_plans
from sinks.clickhouse_errors import ErrorClass
from sinks.clickhouse_store import BatchStore
from sinks.decoding import Decoded, decode_message
from sinks.isolation import Part, Rejection, rejected_rows, store_isolating
from sinks.topic_lives import TopicLifeWatch
from sinks.writers import writers_by_topic

log = logging.getLogger("tracehouse.sink")

MAX_BACKOFF = 10.0

Key = tuple[str, int]
# One record for the DLQ or the accounting topic: topic, key, value, headers.
Header = tuple[str, str | bytes | None]
Outgoing = tuple[str, bytes | None, bytes, list[Header]]
# Largest record the DLQ producer sends: the consumer fetches up to 16 MiB per partition, so
# a poison record can be that large. Records the broker still refuses as too large are
# dead-lettered without their value (header ``value_omitted``) rather than blocking.
DLQ_MAX_MESSAGE_BYTES = 20 * 1024 * 1024
_SIZE_ERRORS = (
    KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.INVALID_MSG_SIZE,
)


def consumer_config(settings: Settings) -> dict[str, Any]:
    return client_config(settings.kafka) | {
        "group.id": settings.sink_group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": settings.heartbeat_interval_ms,
        "partition.assignment.strategy": "cooperative-sticky",
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 16 * 1024 * 1024,
        # A subscribed topic that does not exist yet (the sink started before `tracehouse
        # init`, or a broker that lost its topics and has them re-created) is looked up again
        # only at the next metadata refresh: 5 minutes by default, during which the sink
        # consumes nothing although the topic is there. Seen in the broker-restart fault test
        # when the consumer rejoined before the topics were re-created.
        "topic.metadata.refresh.interval.ms": 10_000,
    }


class SinkWorker:
    def __init__(
        self, settings: Settings, store_factory: Callable[[], BatchStore] | None = None
    ) -> None:
        """``store_factory`` makes each ClickHouse store (the worker's own, and one per insert
        thread): tests pass one whose stores fail or stop the process at a chosen point."""
        self.settings = settings
        self.writers = writers_by_topic(settings)
        self._store_factory = store_factory or self._clickhouse_store
        self.store = self._store_factory()
        # Concurrent stores: one thread per batch in flight, each with its own client (a
        # ClickHouse HTTP session takes one query at a time).
        self.insert_pool = (
            ThreadPoolExecutor(settings.sink_insert_threads, thread_name_prefix="sink-insert")
            if settings.sink_insert_threads > 1
            else None
        )
        self._thread_stores = threading.local()
        self.consumer = Consumer(consumer_config(settings))
        self.topic_watch = TopicLifeWatch(
            AdminClient(client_config(settings.kafka)), list(self.writers)
        )
        self.dlq = self._dlq_producer()
        self.batches: dict[Key, PartitionBatch] = {}
        # Recorded intents not yet committed: (topic, partition) -> [(first, last), ...]
        self.replays: dict[Key, list[Intent]] = {}
        self.paused = False
        # Partitions pushed back while paused: (topic, partition) -> offset to re-read from.
        self.held: dict[Key, int] = {}
        self.running = True

    def _dlq_producer(self) -> Producer:
        return Producer(
            client_config(
                self.settings.kafka,
                acks="all",
                enable_idempotence=True,
                message_max_bytes=DLQ_MAX_MESSAGE_BYTES,
            )
        )

    def _clickhouse_store(self) -> BatchStore:
        return BatchStore(
            connect(self.settings.clickhouse, self.settings.clickhouse_database),
            self.settings.sink_group,
        )

    def _thread_store(self) -> BatchStore:
        store = getattr(self._thread_stores, "store", None)
        if store is None:
            store = self._thread_stores.store = self._store_factory()
        return store

    # -- rebalance ---------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=30)
        for tp in committed:
            start = tp.offset if tp.offset >= 0 else 0
            self.replays[(tp.topic, tp.partition)] = self._planned(tp.topic, tp.partition, start)
        log.info(
            "assigned",
            extra={
                "fields": {
                    "partitions": [f"{tp.topic}/{tp.partition}" for tp in partitions],
                    "replays": {f"{t}/{p}": v for (t, p), v in self.replays.items() if v},
                }
            },
        )

    def _planned(self, topic: str, partition: int, start: int) -> list[Intent]:
        backoff = 0.5
        while True:
            try:
                return self.store.planned_batches(topic, partition, start)
            except Exception as exc:
                metrics.CLICKHOUSE_ERRORS.labels("read_intents").inc()
                log.warning("reading batch intents failed, retrying: %s", exc)
                time.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)

    @staticmethod
    def _other_life(key: Key) -> Callable[[Intent], None]:
        def report(intent: Intent) -> None:
            metrics.STALE_INTENTS.labels(key[0]).inc()
            log.warning(
                "topic partition restarted its offsets: intent of an earlier life dropped",
                extra={
                    "fields": {
                        "partition": f"{key[0]}/{key[1]}",
                        "intent": f"{intent.first}-{intent.last}@{intent.first_timestamp_ms}",
                    }
                },
            )

        return report

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Uncommitted work is dropped: the next owner re-reads it from the committed offset
        # and replays any recorded intent, so nothing is lost or stored twice.
        for tp in partitions:
            self.batches.pop((tp.topic, tp.partition), None)
            self.replays.pop((tp.topic, tp.partition), None)
        self._update_buffer_gauge()
        log.info(
            "revoked",
            extra={"fields": {"partitions": [f"{tp.topic}/{tp.partition}" for tp in partitions]}},
        )

    # -- main loop ---------------------------------------------------------------------------
    def _subscribe(self) -> None:
        self.consumer.subscribe(
            list(self.writers),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )

    def _rejoin(self, topics: list[str]) -> None:
        """Start over with new Kafka clients after ``topics`` began a new life
        (sinks/topic_lives.py).

        Subscribing again is not enough: the old consumer was seen assigned every partition
        of the re-created topics and fetching nothing, without an error, because librdkafka
        keeps what it knew of the old topics (their ids, leader epochs, positions) and does not
        replace it from the new metadata. Fresh clients know only the topics as they are now.
        Uncommitted batches are dropped as in any rebalance and re-read from the committed
        offsets (a re-created topic has none: from its start), intents replayed as usual.
        """
        for topic in topics:
            metrics.TOPIC_REJOINS.labels(topic).inc()
        log.warning(
            "subscribed topic re-created: replacing the Kafka clients and rejoining the group",
            extra={"fields": {"topics": topics}},
        )
        old = self.consumer
        self.consumer = Consumer(consumer_config(self.settings))
        try:
            old.close()  # leaves the group; its revocation drops the uncommitted batches
        except (KafkaException, RuntimeError) as exc:
            log.warning("closing the replaced consumer failed: %s", exc)
        self.batches.clear()
        self.replays.clear()
        self._update_buffer_gauge()
        self.dlq.flush(5)
        self.dlq = self._dlq_producer()
        self._subscribe()

    def run(self) -> None:
        self._subscribe()
        try:
            while self.running:
                messages = self.consumer.consume(1000, 0.2)
                for msg, decoded in zip(messages, self._decode(messages), strict=True):
                    self._handle(msg, decoded)
                now = time.monotonic()
                self._flush_due(now)
                renewed = self.topic_watch.poll(now)
                if renewed:
                    self._rejoin(renewed)
        finally:
            self.consumer.close()
            self.dlq.flush(10)
            if self.insert_pool is not None:
                self.insert_pool.shutdown(wait=True)

    def _decode(self, messages: list[Any]) -> list[Decoded | None]:
        """Decode every data message of one fetch (None for consumer events)."""
        return [
            decode_message(self.writers[msg.topic()].stream, msg.value() or b"")
            if msg.error() is None
            else None
            for msg in messages
        ]

    def stop(self) -> None:
        self.running = False

    def _handle(self, msg: Any, decoded: Decoded | None) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error: %s", err.str())
            return
        if decoded is None:  # cannot happen: every data message is decoded
            return
        key: Key = (msg.topic(), msg.partition())
        offset = msg.offset()
        if key not in self.replays:  # revoked meanwhile
            return
        batch = self.batches.get(key)
        if batch is None:
            batch = self.batches[key] = PartitionBatch(
                key[0], key[1], offset, started_at=time.monotonic()
            )
            ts_type, ts = msg.timestamp()
            if ts_type != TIMESTAMP_NOT_AVAILABLE:
                batch.first_timestamp_ms = ts
            batch.planned_last_offset = drop_stale_plans(
                self.replays[key], offset, batch.first_timestamp_ms, self._other_life(key)
            )
            if batch.planned_last_offset is not None:
                log.info(
                    "replaying a recorded batch intent",
                    extra={
                        "fields": {
                            "partition": f"{key[0]}/{key[1]}",
                            "offsets": f"{offset}-{batch.planned_last_offset}",
                            "first_timestamp_ms": batch.first_timestamp_ms,
                        }
                    },
                )
        if decoded.table is not None:
            batch.add(offset, decoded.table, decoded.table.num_rows, msg.key(), msg.value() or b"")
        else:
            batch.add_poison(offset, msg.key(), msg.value() or b"", decoded.reason, decoded.detail)
        self._update_buffer_gauge()
        if batch.planned_last_offset is not None:
            # A replayed batch must end exactly where its recorded intent ends (same token):
            # _flush stores it as soon as it reaches that offset, and waits until then.
            self._flush(key)

    def _flush_due(self, now: float) -> None:
        """Store every complete batch; called once per fetch, so a full batch grows by at most
        the rest of one fetch before it goes out."""
        max_rows, max_age = self.settings.sink_batch_rows, self.settings.sink_batch_seconds
        due = [
            key for key, batch in self.batches.items() if batch.is_complete(max_rows, max_age, now)
        ]
        if self.insert_pool is not None and len(due) > 1:
            due = self._store_concurrently(due)
        for key in due:
            if key in self.batches:
                self._flush(key)

    def _store_concurrently(self, keys: list[Key]) -> list[Key]:
        """Intents and inserts of several partitions' batches in parallel; the rest of the
        protocol (DLQ, commit, bookkeeping) stays on this thread, after every insert is back.

        No consumer call happens while inserts are in flight, so no rebalance callback can
        run in between. Returns the keys whose store failed: the caller retries them one by
        one on the serial path (same intent, same dedup token, so a retry is a no-op where
        the first attempt got through)."""
        pool = self.insert_pool
        assert pool is not None
        batches = [self.batches[k] for k in keys]
        futures: list[Future[float]] = [pool.submit(self._write, b, None) for b in batches]
        failed: list[Key] = []
        written: list[tuple[PartitionBatch, float]] = []
        for batch, fut in zip(batches, futures, strict=True):
            try:
                written.append((batch, fut.result()))
            except Exception as exc:
                metrics.BATCHES.labels(self.writers[batch.topic].table, "retry").inc()
                metrics.CLICKHOUSE_ERRORS.labels("store_batch").inc()
                log.warning("concurrent batch store failed, retrying serially: %s", exc)
                failed.append(batch.key)
        for batch, _ in written:
            metrics.CONCURRENT_BATCHES.labels(self.writers[batch.topic].table).inc()
        for batch, started in written:
            try:
                self._finish(batch, started)
            except Exception as exc:  # DLQ or commit: the serial path retries the whole store
                log.warning("finishing a stored batch failed, retrying serially: %s", exc)
                failed.append(batch.key)
        return failed

    def _flush(self, key: Key) -> None:
        batch = self.batches[key]
        if batch.planned_last_offset is not None and batch.last_offset < batch.planned_last_offset:
            return  # replay not complete yet
        backoff = 0.2
        while self.running:
            try:
                self._store(batch)
                break
            except Exception as exc:
                metrics.BATCHES.labels(self.writers[batch.topic].table, "retry").inc()
                metrics.CLICKHOUSE_ERRORS.labels("store_batch").inc()
                log.warning("batch store failed, retrying in %.1fs: %s", backoff, exc)
                self._pause()
                self._wait_paused(backoff)
                if self.batches.get(key) is not batch:
                    # Revoked during the outage (perhaps re-assigned since): whoever owns the
                    # partition now re-reads it and replays the intent with the same token.
                    break
                backoff = min(MAX_BACKOFF, backoff * 2)
        else:
            return
        self._resume()

    def _pause(self) -> None:
        if not self.paused:
            self.consumer.pause(self.consumer.assignment())
            metrics.PAUSED.set(1)
            self.paused = True

    def _resume(self) -> None:
        if self.paused:
            self.consumer.resume(self.consumer.assignment())
            metrics.PAUSED.set(0)
            self.paused = False
            self.held.clear()

    def _wait_paused(self, seconds: float) -> None:
        """Serve group callbacks (heartbeats, rebalances) while no new data is taken in.

        A partition assigned during the pause is not paused yet and may deliver a message:
        it is pushed back (seek) and paused, so it is read again after the outage.
        """
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for msg in self.consumer.consume(100, 0.1):
                if msg.error() is not None:
                    continue
                key: Key = (str(msg.topic()), int(msg.partition() or 0))
                offset = int(msg.offset() or 0)
                if key in self.held and self.held[key] <= offset:
                    continue
                self.held[key] = offset
                tp = TopicPartition(key[0], key[1], offset)
                self.consumer.pause([tp])
                self.consumer.seek(tp)

    def _store(self, batch: PartitionBatch) -> None:
        started = self._write(batch, self.store)
        self._finish(batch, started)

    def _write(self, batch: PartitionBatch, store: BatchStore | None) -> float:
        """Intent, then the insert with its dedup token; safe on an insert thread.

        Rows ClickHouse refuses are isolated by bisection and kept in ``batch.rejections``
        for ``_finish``; only outages raise (the caller retries the whole batch, and the
        deterministic walk repeats the same sub-inserts, deduplicated where they got in).
        """
        store = store or self._thread_store()
        started = time.perf_counter()
        if batch.planned_last_offset is None:
            store.record_intent(batch)
        batch.rejections = []
        if batch.rows:
            table = self.writers[batch.topic].table
            parts = [Part(o, t) for o, t in zip(batch.part_offsets, batch.parts, strict=True)]
            insert = functools.partial(store.insert_block, table)
            result = store_isolating(parts, store.dedup_token(batch), insert)
            if result.inserts:
                metrics.SHAPE_ERRORS.labels(table, ErrorClass.REJECTED.value).inc()
                metrics.SUB_INSERTS.labels(table).inc(result.inserts)
                log.warning(
                    "ClickHouse rejected rows, isolated them",
                    extra={
                        "fields": {
                            "batch": f"{batch.topic}/{batch.partition}/"
                            f"{batch.first_offset}-{batch.last_offset}",
                            "sub_inserts": result.inserts,
                            "rejected_rows": rejected_rows(result.rejections),
                            "error": result.rejections[0].error if result.rejections else "",
                        }
                    },
                )
            batch.rejections = result.rejections
        return started

    def _finish(self, batch: PartitionBatch, started: float) -> None:
        """DLQ, offset commit and bookkeeping of a stored batch (consumer thread only)."""
        writer = self.writers[batch.topic]
        replay = batch.planned_last_offset is not None
        self._send_dlq(batch)
        self.consumer.commit(
            offsets=[TopicPartition(batch.topic, batch.partition, batch.last_offset + 1)],
            asynchronous=False,
        )
        metrics.INSERT_SECONDS.labels(writer.table).observe(time.perf_counter() - started)
        rejected = batch.rejected_rows
        metrics.ROWS_STORED.labels(writer.table).inc(batch.rows - rejected)
        if rejected:
            metrics.ROWS_REJECTED.labels(writer.table, CLICKHOUSE_REJECTED).inc(rejected)
        metrics.BATCHES.labels(writer.table, "ok").inc()
        if replay:
            metrics.REPLAYED_BATCHES.labels(writer.table).inc()
        del self.batches[batch.key]
        plan = self.replays.get(batch.key)
        if plan and plan[0] == (batch.first_offset, batch.last_offset):
            plan.pop(0)
        self._update_buffer_gauge()

    def _send_dlq(self, batch: PartitionBatch) -> None:
        """Poison records, rejected rows and their accounting go out before the commit, so
        none is lost (a retry may repeat a DLQ record; the counter record collapses)."""
        out: list[Outgoing] = []
        reasons: list[str] = []
        dlq = self.settings.topics.sink_dlq
        for offset, key, value, reason, detail in batch.dlq:
            out.append((dlq, key, value, _headers(batch, offset, reason, detail)))
            reasons.append(reason)
        for offset, rejections in _by_offset(batch.rejections).items():
            key, value = batch.sources.get(offset, (None, b""))
            headers = _headers(batch, offset, CLICKHOUSE_REJECTED, rejections[0].error)
            rows = ",".join(f"{r.first_row}:{r.end_row}" for r in rejections)
            headers.append(("rows", rows.encode()))
            headers.append(("rejected_rows", str(rejected_rows(rejections)).encode()))
            out.append((dlq, key, value, headers))
            reasons.append(CLICKHOUSE_REJECTED)
        if self.writers[batch.topic].stream == "spans" and batch.rejections:
            record = rejected_spans_record(
                batch.topic,
                batch.partition,
                batch.first_offset,
                batch.first_timestamp_ms,
                {CLICKHOUSE_REJECTED: batch.rejected_rows},
            )
            if record is not None:
                value = avro_codec.encode("pipeline_counters", record)
                out.append((self.settings.topics.accounting, b"sink", value, []))
        if not out:
            return
        self._produce_acked(out)
        for reason in reasons:
            metrics.RECORDS_DLQ.labels(batch.topic, reason).inc()

    def _produce_acked(self, records: list[Outgoing]) -> None:
        """Produce and wait for every ack; raise (the batch is retried) unless all are in.

        A record too large for the producer or the broker would fail forever: it is sent
        again without its value (header ``value_omitted`` = its size), so the DLQ still
        names the source offset and the partition moves on.
        """
        failed: list[tuple[Outgoing, KafkaError]] = []

        def produce(record: Outgoing) -> None:
            topic, key, value, headers = record

            def on_delivery(err: KafkaError | None, _msg: Any) -> None:
                if err is not None:
                    failed.append((record, err))

            try:
                self.dlq.produce(topic, value, key=key, headers=headers, on_delivery=on_delivery)
            except KafkaException as exc:
                failed.append((record, exc.args[0]))
            except BufferError:  # local queue full: make room, then once more
                self.dlq.flush(30)
                self.dlq.produce(topic, value, key=key, headers=headers, on_delivery=on_delivery)

        for record in records:
            produce(record)
        if self.dlq.flush(30) > 0:
            raise RuntimeError("DLQ messages not acknowledged")
        retry = [r for r, err in failed if _too_large(err)]
        others = [err for _, err in failed if not _too_large(err)]
        if others:
            raise RuntimeError(f"DLQ produce failed: {others[0]}")
        if not retry:
            return
        failed.clear()
        for topic, key, value, headers in retry:
            produce((topic, key, b"", [*headers, ("value_omitted", str(len(value)).encode())]))
        if self.dlq.flush(30) > 0 or failed:
            raise RuntimeError(f"DLQ produce failed: {failed[0][1] if failed else 'no ack'}")

    def _update_buffer_gauge(self) -> None:
        metrics.BUFFERED_ROWS.set(sum(b.rows for b in self.batches.values()))


def _headers(batch: PartitionBatch, offset: int, reason: str, detail: str) -> list[Header]:
    # Error texts may quote the data (lone surrogates included): never fail on encoding.
    return [
        ("reason", reason.encode()),
        ("error", detail.encode("utf-8", "backslashreplace")),
        ("source_topic", batch.topic.encode()),
        ("source_partition", str(batch.partition).encode()),
        ("source_offset", str(offset).encode()),
    ]


def _by_offset(rejections: list[Rejection]) -> dict[int, list[Rejection]]:
    grouped: dict[int, list[Rejection]] = {}
    for r in rejections:
        grouped.setdefault(r.offset, []).append(r)
    return grouped


def _too_large(err: Any) -> bool:
    code = err.code() if isinstance(err, KafkaError) else None
    return code in _SIZE_ERRORS


def main(
    settings: Settings | None = None, store_factory: Callable[[], BatchStore] | None = None
) -> None:
    """Run a sink worker until SIGTERM/SIGINT (``store_factory``: see :class:`SinkWorker`)."""
    settings = settings or Settings.from_env()
    logs.setup("sink")
    start_http_server(settings.sink_metrics_port, addr=settings.sink_metrics_host)
    worker = SinkWorker(settings, store_factory)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    log.info(
        "sink started",
        extra={"fields": {"topics": list(worker.writers), "group": settings.sink_group}},
    )
    worker.run()
    log.info("sink stopped")

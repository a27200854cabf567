"""The faust worker: a thin adapter from Kafka to :mod:`streams.partition_processor`.

Agents see whole messages (each a ``TracesData`` of many spans), never single spans, because a
faust worker tops out at ~14k messages/s on this hardware (docs/architecture.md, "Measured
facts"). Messages are consumed without auto-ack: an event is acked (hence committable) only when
the processor says its traces are decided, their sampled spans and the window's aggregates are
on the broker and the decisions are in the state log. A timer drives decisions and window
flushes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.kafka import faust_credentials
from core.partitioning import PARTITIONERS
from core.settings import Settings
from core.topics import ensure_state_topic, partition_count, state_topic_name
from schemas import avro_codec
from schemas.counter_batch import counter_batch
from streams import metrics, otlp_scan
from streams.counters import CounterSet
from streams.dead_letters import dead_letter_headers, refused_span_summary
from streams.gc_tuning import tune_gc
from streams.kept_spans import encode_kept
from streams.partition_processor import (
    AggregationOptions,
    CounterRecord,
    PartitionProcessor,
    Routing,
    TickOutput,
)
from streams.raw_encodings import RawDecoder, RawEncodings, header_value
from streams.sampling_config import SamplingConfig, load_config
from streams.state_log import encode_state, load_state

log = logging.getLogger("tracehouse.streams")


class OwnedPartitions:
    """What one worker holds for the raw partitions it owns: a processor each and the events
    (messages) not yet committable."""

    def __init__(
        self,
        settings: Settings,
        sampling: SamplingConfig,
        encodings: RawEncodings | None = None,
        raw_partitions: int = 0,
    ) -> None:
        self.settings = settings
        self.sampling = sampling
        self.encodings = encodings or RawEncodings(
            settings.raw_encoding, scan=settings.streams_otlp_scan
        )
        # The producers' mapping over the raw topic's partitions; 0 partitions: not checked.
        self.raw_partitions = raw_partitions
        self.partition_of = PARTITIONERS[settings.ingest_partitioner]
        self.options = AggregationOptions(
            red_window_seconds=settings.red_window_seconds,
            red_max_series=settings.red_max_series,
            graph_wait_seconds=settings.graph_wait_seconds,
        )
        self.processors: dict[int, PartitionProcessor] = {}
        self.events: dict[int, dict[int, Any]] = {}
        self.max_message_bytes = int(settings.max_request_bytes * 0.9)
        self.state_topic = state_topic_name(settings.streams_group)
        self._loading: dict[int, asyncio.Future[PartitionProcessor]] = {}
        self._generation: dict[int, int] = {}

    async def processor(self, partition: int) -> PartitionProcessor:
        proc = self.processors.get(partition)
        if proc is not None:
            return proc
        task = self._loading.get(partition)
        if task is None:
            task = self._loading[partition] = asyncio.ensure_future(self._load(partition))
        try:
            return await asyncio.shield(task)
        finally:
            if task.done() and self._loading.get(partition) is task:
                del self._loading[partition]

    async def _load(self, partition: int) -> PartitionProcessor:
        generation = self._generation.get(partition, 0)
        keep = self.sampling.sampled_cache_size + self.sampling.non_sampled_cache_size
        started = time.monotonic()
        restored = await asyncio.get_running_loop().run_in_executor(
            None, load_state, self.settings.kafka, self.state_topic, partition, keep
        )
        log.info(
            "partition %d restored in %.2f s: %d decisions, aggregates through offset %d",
            partition,
            time.monotonic() - started,
            len(restored.decisions),
            restored.aggregates_through,
        )
        proc = PartitionProcessor(
            f"{self.settings.topics.raw_spans}/{partition}",
            self.sampling,
            self.sampling.policies,  # shared: rate limits are per worker, as in the Collector
            self.options,
            CounterSet(),  # per partition: its deltas are persisted with its state
            restored,
            self.encodings,
            self._routing(partition),
            kept_message_bytes=self.max_message_bytes,
        )
        if self._generation.get(partition, 0) == generation:
            # Not revoked while restoring; a stale restore must not serve a later assignment.
            self.processors[partition] = proc
            self.events[partition] = {}
        return proc

    def _routing(self, partition: int) -> Routing | None:
        n, partition_of = self.raw_partitions, self.partition_of
        if n <= 0:
            return None
        return Routing(partition, lambda trace_id: partition_of(trace_id, n))

    def accounting_batch(self, partition: int, record: CounterRecord) -> bytes:
        """The ``pipeline_counters`` batch of one state record, under the record's identity:
        publishing it twice stores it once (ReplacingMergeTree on component, instance, seq)."""
        source = f"{self.settings.topics.raw_spans}/{partition}"
        return avro_codec.encode(
            "pipeline_counters",
            counter_batch(
                "streams",
                f"{source}@{record.epoch}",
                record.seq,
                record.time_unix_nano,
                record.counters,
            ),
        )

    def forget(self, partitions: set[int]) -> None:
        for p in partitions:
            self._generation[p] = self._generation.get(p, 0) + 1
            self._loading.pop(p, None)
            self.processors.pop(p, None)
            self.events.pop(p, None)

    def update_gauges(self) -> None:
        procs = list(self.processors.values())
        metrics.BUFFERED_TRACES.set(sum(len(p.buffer) for p in procs))
        metrics.BUFFERED_BYTES.set(sum(p.buffer.nbytes for p in procs))
        metrics.UNCOMMITTED_MESSAGES.set(sum(len(e) for e in self.events.values()))
        metrics.DECISION_CACHE.set(sum(len(p.cache) for p in procs))
        metrics.GRAPH_WAITING.set(sum(p.graph.waiting() for p in procs))
        metrics.OWNED_PARTITIONS.set(len(procs))
        metrics.OTLP_SCAN_ENABLED.set(int(otlp_scan.ENABLED and self.encodings.scan))
        for p in procs:
            for path, n in p.read_by.items():
                if n:
                    metrics.MESSAGES_READ.labels(path).inc(n)
                    p.read_by[path] = 0


def create_app(
    settings: Settings,
    sampling: SamplingConfig | None = None,
    raw_decoders: Mapping[str, RawDecoder] | None = None,
) -> faust.App:
    """The worker. ``raw_decoders`` are the raw-topic encodings besides ``otlp_proto`` (the
    CLI passes ingest's codecs, see streams/raw_encodings.py)."""
    sampling = sampling or load_config(settings.sampling_policy_file)
    encodings = RawEncodings(settings.raw_encoding, raw_decoders, scan=settings.streams_otlp_scan)
    raw_partitions = partition_count(settings.kafka, settings.topics.raw_spans)
    app = faust.App(
        settings.streams_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        # SASL / TLS from the same settings as every confluent-kafka client (core/kafka.py).
        broker_credentials=faust_credentials(settings.kafka),
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=True,
        web_bind=settings.streams_metrics_host,
        web_port=settings.streams_metrics_port,
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.heartbeat_interval_ms / 1000,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_compression_type=(
            None if settings.streams_compression == "none" else settings.streams_compression
        ),
        producer_max_request_size=settings.max_request_bytes,
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
        broker_commit_interval=1.0,
        # Events stay unacked until their traces are decided (the raw topic is the buffer's
        # changelog), so waiting for "empty streams" would stall every rebalance and shutdown
        # by up to decision_wait + a RED window. Unacked work is replayed by the next owner.
        stream_wait_empty=False,
    )
    topics = settings.topics
    raw = app.topic(topics.raw_spans, key_type=bytes, value_type=bytes)
    sampled = app.topic(topics.sampled_spans, key_type=bytes, value_type=bytes)
    red = app.topic(topics.red_metrics, key_type=bytes, value_type=bytes)
    edges = app.topic(topics.graph_edges, key_type=bytes, value_type=bytes)
    accounting = app.topic(topics.accounting, key_type=bytes, value_type=bytes)
    streams_dlq = app.topic(topics.streams_dlq, key_type=bytes, value_type=bytes)
    state = app.topic(state_topic_name(settings.streams_group), key_type=bytes, value_type=bytes)
    rt = OwnedPartitions(settings, sampling, encodings, raw_partitions)

    @app.agent(raw)
    async def process(stream: Any) -> None:
        async for event in stream.noack().events():
            msg = event.message
            proc = await rt.processor(msg.partition)
            if rt.processors.get(msg.partition) is not proc:
                continue  # revoked while restoring: the partition's next owner reads it
            if msg.offset <= proc.last_offset:
                continue  # redelivery of a message already held
            encoding = header_value(msg.headers)
            reason = proc.process(msg.offset, msg.value or b"", time.time(), encoding)
            rt.events[msg.partition][msg.offset] = event
            if reason is not None:
                log.warning("malformed raw message at %s/%d: %s", msg.tp, msg.offset, reason)
                fut = await streams_dlq.send(
                    key=msg.key, value=msg.value, headers={"reason": reason.encode()}, force=True
                )
                await fut
            if proc.dead_letters:
                # Spans refused one by one; the rest of the message goes on. Sent before the
                # message can be committed, so a refused span is never lost unrecorded.
                letters, proc.dead_letters = proc.dead_letters, []
                for letter in letters:
                    headers = dead_letter_headers(letter, f"{msg.tp.topic}/{msg.partition}")
                    headers["source_offset"] = str(msg.offset).encode()
                    await (
                        await streams_dlq.send(
                            key=msg.key, value=letter.payload, headers=headers, force=True
                        )
                    )

    async def send_sampled(ticks: list[tuple[int, PartitionProcessor, TickOutput]]) -> list[Any]:
        """Send one tick's kept spans of every partition this worker owns as one run of
        ``spans.sampled`` messages (:mod:`streams.kept_spans`, ADR 0020); returns the send
        futures, the DLQ's included. Every partition's decisions-log record is written only
        after all of them are acked (``deliver``)."""
        key, encoded = encode_kept(
            [(partition, out) for partition, _, out in ticks], rt.max_message_bytes
        )
        futures = [
            await sampled.send(key=key, value=payload, force=True) for payload in encoded.payloads
        ]
        for reason, views in encoded.refused:
            # Kept spans no message can carry (counted by encode_kept with their partition's
            # output), described in the DLQ: ids and size only, the span itself did not fit.
            for view in views:
                futures.append(
                    await streams_dlq.send(
                        key=view.trace_id,
                        value=refused_span_summary(view),
                        headers={"reason": reason.encode(), "stage": b"streams.encode"},
                        force=True,
                    )
                )
        return futures

    async def deliver(
        partition: int, proc: PartitionProcessor, out: TickOutput, kept: list[Any]
    ) -> None:
        """The rest of one partition's tick once its kept spans are sent (``kept``: the
        futures of :func:`send_sampled`, shared by the tick's partitions)."""
        key = str(partition).encode()
        futures = list(kept)
        if out.red is not None:
            futures.append(
                await red.send(key=key, value=avro_codec.encode("red_metrics", out.red), force=True)
            )
        if out.edges is not None:
            payload = avro_codec.encode("graph_edges", out.edges)
            futures.append(await edges.send(key=key, value=payload, force=True))
        await asyncio.gather(*futures)
        # The state log is written only after the outputs are on the broker: a crash in between
        # replays (duplicates are possible), it never loses a sampled span. The counters of this
        # output travel in the same record, then go to the accounting topic under its identity.
        if out.persists_state():
            record = proc.counter_record(out.counters, time.time_ns()) if out.counters else None
            value = encode_state(out.decisions, out.aggregates_through, out.sent_keys, record)
            await (await state.send(key=key, value=value, partition=partition, force=True))
            if record is not None:
                batch = rt.accounting_batch(partition, record)
                await (await accounting.send(key=key, value=batch, force=True))
                metrics.publish(record.counters)
        if rt.processors.get(partition) is not proc:
            return  # revoked meanwhile: the next owner replays from the committed offset
        held = rt.events[partition]
        for offset in proc.delivered(out):
            event = held.pop(offset, None)
            if event is not None:
                event.ack()

    @app.timer(interval=settings.streams_tick_seconds)
    async def tick() -> None:
        for partition, proc in list(rt.processors.items()):
            record = proc.unpublished_counters
            if record is not None:
                # The previous owner's last counters, in case it died before publishing them.
                batch = rt.accounting_batch(partition, record)
                await (await accounting.send(key=str(partition).encode(), value=batch, force=True))
                proc.unpublished_counters = None
        now = time.time()
        # Decide every partition first, then deliver all of them at once: each delivery waits
        # for broker acks twice (outputs, then state log), and waiting partition by partition
        # left the worker idle for most of a tick under load.
        ticks = [(p, proc, proc.tick(now)) for p, proc in list(rt.processors.items())]
        try:
            kept = await send_sampled(ticks)
        except Exception as exc:
            log.error("sending kept spans failed; stopping the worker", exc_info=exc)
            await app.crash(exc)
            return
        results = await asyncio.gather(
            *(deliver(p, proc, out, kept) for p, proc, out in ticks), return_exceptions=True
        )
        for (partition, _, _), result in zip(ticks, results, strict=True):
            if isinstance(result, BaseException):
                # The decided traces exist only in memory now: stop the worker so the group
                # hands the partition to a live worker, which replays from the committed offset.
                log.error(
                    "delivery for partition %d failed; stopping the worker",
                    partition,
                    exc_info=result,
                )
                await app.crash(result)
                return
        rt.update_gauges()

    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        # Restore every new partition before its first message (in parallel), so no message
        # waits behind another partition's restore and outlives its trace's decision_wait.
        assigned: set[Any] = args[0] if args else kwargs.get("assigned", set())
        wanted = {tp.partition for tp in assigned if tp.topic == topics.raw_spans}
        await asyncio.gather(*(rt.processor(p) for p in sorted(wanted)))

    async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        rt.forget({tp.partition for tp in revoked if tp.topic == topics.raw_spans})

    # mode's annotation wants a positional-only signature; the runtime passes (sender, revoked).
    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    return app


def main(
    settings: Settings | None = None, raw_decoders: Mapping[str, RawDecoder] | None = None
) -> None:
    from faust import Worker

    settings = settings or Settings.from_env()
    tune_gc()
    ensure_state_topic(settings)
    app = create_app(settings, raw_decoders=raw_decoders)
    Worker(app, loglevel="INFO").execute_from_commandline()

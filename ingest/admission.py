"""The protocol-independent core of every receiver: admit, sample, split, publish, account.

HTTP, gRPC and Zipkin receivers decode their wire format into ``TracesData`` and hand it here,
so tenancy, rate limits, validation, partition grouping, Kafka acknowledgement and span
accounting are identical whatever the client spoke.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry.proto.trace.v1 import trace_pb2

from core import consistent_sampling as head_sampling
from core.errors import RateLimited
from core.partitioning import PARTITIONERS, message_key
from core.tenancy import TenantConfig, TokenBuckets, stamp_tenant
from ingest import metrics
from ingest.kafka_publisher import KafkaPublisher, PublishError
from ingest.otlp_split import PartitionOf, partition_chunks

log = logging.getLogger("tracehouse.ingest")


@dataclass(frozen=True)
class AdmissionOutcome:
    accepted: int
    rejected: int
    sampled_out: int = 0
    message: str = ""


@dataclass(frozen=True)
class AdmissionConfig:
    topic: str
    partitions: int
    partitioner: str = "murmur2"
    max_message_bytes: int = 1_000_000
    wait_for_ack: bool = True
    sampling_ratio: float = 1.0
    ack_timeout_seconds: float = 40.0


def count_spans(data: trace_pb2.TracesData) -> int:
    return sum(len(ss.spans) for rs in data.resource_spans for ss in rs.scope_spans)


class SpanAdmission:
    def __init__(
        self,
        publisher: KafkaPublisher,
        config: AdmissionConfig,
        tenants: TenantConfig | None = None,
    ) -> None:
        if config.partitioner not in PARTITIONERS:
            raise ValueError(
                f"unknown partitioner {config.partitioner!r}; use one of {sorted(PARTITIONERS)}"
            )
        self._publisher = publisher
        self._config = config
        self._partition_of: PartitionOf = PARTITIONERS[config.partitioner]
        self._tenants = tenants or TenantConfig()
        self._buckets = TokenBuckets(self._tenants)
        self._threshold = head_sampling.ratio_threshold(config.sampling_ratio)
        self._background: set[asyncio.Future[list[BaseException | None]]] = set()

    @property
    def tenants(self) -> TenantConfig:
        return self._tenants

    async def export(
        self,
        data: trace_pb2.TracesData,
        protocol: str,
        tenant: str = "",
        decode_rejected: Mapping[str, int] | None = None,
        raw: bytes | None = None,
    ) -> AdmissionOutcome:
        """Publish valid spans and return what happened to each span.

        ``decode_rejected`` counts spans of the request the decoder already refused (malformed
        JSON spans), so they are received, rejected and reported like validation rejections.
        ``raw`` is the request's own bytes when ``data`` was parsed from them (OTLP protobuf):
        they are cut as they came unless the tenant stamp or head sampling changed ``data``,
        which saves serializing every request again.
        Raises RateLimited (nothing published) or PublishError (Kafka did not acknowledge
        every message; the client must retry the request).
        """
        decoded = count_spans(data)
        pre_rejected: Counter[str] = Counter(decode_rejected or {})
        metrics.SPANS_RECEIVED.labels(protocol).inc(decoded + sum(pre_rejected.values()))
        try:
            self._buckets.take(tenant, decoded)
        except RateLimited:
            metrics.SPANS_REJECTED.labels(protocol, "rate_limited").inc(decoded)
            for reason, count in pre_rejected.items():
                metrics.SPANS_REJECTED.labels(protocol, reason).inc(count)
            raise
        if stamp_tenant(data, tenant) or self._threshold > 0:
            raw = None  # ``data`` is no longer (or may no longer be) what the client sent
        sampled_out = head_sampling.sample(data, self._threshold)
        if sampled_out:
            metrics.SPANS_SAMPLED_OUT.labels(protocol).inc(sampled_out)
        cut = partition_chunks(
            data,
            self._config.partitions,
            self._config.max_message_bytes,
            self._partition_of,
            raw=raw,
        )
        rejected: Counter[str] = Counter(cut.rejected)
        rejected.update(pre_rejected)
        futures: list[asyncio.Future[None]] = []
        to_publish = 0
        if cut.split_partitions:
            metrics.SPLIT_MESSAGES.inc(cut.split_partitions)
        for p, chunk in cut.chunks:
            to_publish += chunk.spans
            metrics.KAFKA_BYTES.inc(len(chunk.payload))
            futures.append(
                self._publisher.publish(
                    self._config.topic,
                    chunk.payload,
                    message_key(chunk.first_trace_id, self._config.partitioner),
                    partition=p,
                )
            )
        for reason, count in rejected.items():
            metrics.SPANS_REJECTED.labels(protocol, reason).inc(count)
        if futures:
            if self._config.wait_for_ack:
                await self._await_acks(futures, protocol, to_publish)
                metrics.TENANT_SPANS_ACCEPTED.labels(tenant).inc(to_publish)
            else:
                self._track_in_background(futures, protocol, to_publish)
                metrics.TENANT_SPANS_ACCEPTED.labels(tenant).inc(to_publish)
        message = ""
        if rejected:
            message = "rejected spans: " + ", ".join(
                f"{count} {reason}" for reason, count in sorted(rejected.items())
            )
        return AdmissionOutcome(to_publish, sum(rejected.values()), sampled_out, message)

    async def _await_acks(
        self, futures: list[asyncio.Future[None]], protocol: str, spans: int
    ) -> None:
        started = time.perf_counter()
        gathered = asyncio.gather(*futures, return_exceptions=True)
        try:
            # Backstop: librdkafka fails every message by message.timeout.ms; should a
            # callback never come, the client still gets a retryable error, never a hang.
            results = await asyncio.wait_for(gathered, self._config.ack_timeout_seconds)
        except TimeoutError:
            metrics.KAFKA_MESSAGES.labels("ack_timeout").inc(len(futures))
            metrics.SPANS_REJECTED.labels(protocol, "kafka_unavailable").inc(spans)
            raise PublishError("no acknowledgement from Kafka in time", retryable=True) from None
        metrics.PRODUCE_LATENCY.observe(time.perf_counter() - started)
        failures = [r for r in results if isinstance(r, BaseException)]
        metrics.KAFKA_MESSAGES.labels("acked").inc(len(results) - len(failures))
        if failures:
            metrics.KAFKA_MESSAGES.labels("failed").inc(len(failures))
            # Some partitions may have been written: the client retries the whole request and
            # streams recognises the copies (streams/span_fingerprint.py) and stores each once.
            metrics.SPANS_REJECTED.labels(protocol, "kafka_unavailable").inc(spans)
            first = failures[0]
            if isinstance(first, PublishError):
                raise first
            raise PublishError(str(first), retryable=True)
        metrics.SPANS_ACCEPTED.labels(protocol).inc(spans)

    def _track_in_background(
        self, futures: list[asyncio.Future[None]], protocol: str, spans: int
    ) -> None:
        """Fire-and-forget mode: the client is answered now; failures are still counted."""
        for fut in futures:
            if fut.done() and fut.exception() is not None:
                # Synchronous failure (e.g. full queue): the client still gets a retryable error.
                for other in futures:
                    other.add_done_callback(_consume_exception)
                metrics.SPANS_REJECTED.labels(protocol, "kafka_unavailable").inc(spans)
                raise fut.exception()  # type: ignore[misc]
        gathered = asyncio.gather(*futures, return_exceptions=True)
        self._background.add(gathered)

        def done(g: asyncio.Future[list[BaseException | None]]) -> None:
            self._background.discard(g)
            failures = [r for r in g.result() if isinstance(r, BaseException)]
            metrics.KAFKA_MESSAGES.labels("acked").inc(len(futures) - len(failures))
            if failures:
                metrics.KAFKA_MESSAGES.labels("failed").inc(len(failures))
                metrics.SPANS_REJECTED.labels(protocol, "kafka_lost_after_ack").inc(spans)
                log.error(
                    "spans lost after the client was answered (ingest_wait_for_ack=false)",
                    extra={"fields": {"spans": spans, "error": str(failures[0])}},
                )
            else:
                metrics.SPANS_ACCEPTED.labels(protocol).inc(spans)

        gathered.add_done_callback(done)


def _consume_exception(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()

"""The protocol-independent core of every receiver: split, publish, account.

HTTP, gRPC and Zipkin receivers decode their wire format into ``TracesData`` and hand it here,
so validation, partition grouping, Kafka acknowledgement and span accounting are identical
whatever the client spoke.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from opentelemetry.proto.trace.v1 import trace_pb2

from ingest import metrics
from ingest.kafka_publisher import KafkaPublisher, PublishError
from ingest.otlp_split import split_by_partition


@dataclass(frozen=True)
class ExportOutcome:
    accepted: int
    rejected: int
    message: str = ""


class SpanExporter:
    def __init__(self, publisher: KafkaPublisher, topic: str, partitions: int) -> None:
        self._publisher = publisher
        self._topic = topic
        self._partitions = partitions

    async def export(self, data: trace_pb2.TracesData, protocol: str) -> ExportOutcome:
        """Publish valid spans; raises PublishError if Kafka did not acknowledge all of them."""
        split = split_by_partition(data, self._partitions)
        received = split.accepted + split.rejected_total
        metrics.SPANS_RECEIVED.labels(protocol).inc(received)
        for reason, count in split.rejected.items():
            metrics.SPANS_REJECTED.labels(protocol, reason).inc(count)
        if split.accepted:
            started = time.perf_counter()
            futures = [
                self._publisher.publish(
                    self._topic, td.SerializeToString(), split.keys[p], partition=p
                )
                for p, td in split.by_partition.items()
            ]
            metrics.QUEUE_DEPTH.set(self._publisher.queue_depth())
            results = await asyncio.gather(*futures, return_exceptions=True)
            metrics.PRODUCE_LATENCY.observe(time.perf_counter() - started)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                # Some partitions may have been written: the client retries the whole request
                # and the downstream dedupe on (trace, span) ids keeps storage exact.
                metrics.SPANS_REJECTED.labels(protocol, "kafka_unavailable").inc(split.accepted)
                first = failures[0]
                if isinstance(first, PublishError):
                    raise first
                raise PublishError(str(first), retryable=True)
            metrics.SPANS_ACCEPTED.labels(protocol).inc(split.accepted)
        message = ""
        if split.rejected:
            message = "rejected spans: " + ", ".join(
                f"{count} {reason}" for reason, count in sorted(split.rejected.items())
            )
        return ExportOutcome(split.accepted, split.rejected_total, message)

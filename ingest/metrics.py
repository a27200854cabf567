"""Prometheus metrics of the ingest node.

Accounting identity per protocol, once requests finished:
``received = accepted + rejected (all reasons) + sampled_out``. Requests that never got as far
as decoding spans (bad body, auth, size) are counted in ``tracehouse_ingest_requests`` by
outcome, since their span count is unknown.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

SPANS_RECEIVED = Counter(
    "tracehouse_ingest_spans_received", "Spans decoded from client requests", ["protocol"]
)
SPANS_ACCEPTED = Counter(
    "tracehouse_ingest_spans_accepted", "Spans acknowledged by Kafka and the client", ["protocol"]
)
SPANS_REJECTED = Counter(
    "tracehouse_ingest_spans_rejected", "Spans not accepted, by reason", ["protocol", "reason"]
)
TENANT_SPANS_ACCEPTED = Counter(
    "tracehouse_ingest_tenant_spans_accepted",
    "Spans accepted per tenant ('' with auth off); cardinality bounded by the tenants config",
    ["tenant"],
)
SPANS_SAMPLED_OUT = Counter(
    "tracehouse_ingest_spans_sampled_out",
    "Spans dropped by consistent head sampling (ingest_sampling_ratio < 1)",
    ["protocol"],
)
REQUESTS = Counter(
    "tracehouse_ingest_requests", "Export requests by outcome", ["protocol", "outcome"]
)
REQUEST_BYTES = Counter(
    "tracehouse_ingest_request_bytes", "Request body bytes as received", ["protocol"]
)
KAFKA_MESSAGES = Counter(
    "tracehouse_ingest_kafka_messages", "Messages produced to the raw topic", ["outcome"]
)
KAFKA_BYTES = Counter("tracehouse_ingest_kafka_bytes", "Uncompressed bytes produced to Kafka")
SPLIT_MESSAGES = Counter(
    "tracehouse_ingest_oversize_splits",
    "Partition payloads larger than ingest_max_message_bytes that were split",
)
PRODUCE_LATENCY = Histogram(
    "tracehouse_ingest_kafka_produce_seconds",
    "Time from produce to broker acknowledgement for one request",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge(
    "tracehouse_ingest_kafka_queue_depth", "Messages in the producer awaiting broker ack"
)
IN_FLIGHT = Gauge("tracehouse_ingest_requests_in_flight", "Export requests being processed")


def track_queue_depth(depth: Callable[[], int]) -> None:
    """Sample the producer queue at scrape time, so the gauge is never stale."""
    QUEUE_DEPTH.set_function(lambda: float(depth()))

"""Prometheus metrics of the ingest node: every span is received, then accepted or rejected."""

from __future__ import annotations

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
REQUESTS = Counter(
    "tracehouse_ingest_requests", "Export requests by outcome", ["protocol", "outcome"]
)
REQUEST_BYTES = Counter("tracehouse_ingest_request_bytes", "Request body bytes", ["protocol"])
PRODUCE_LATENCY = Histogram(
    "tracehouse_ingest_kafka_produce_seconds",
    "Time from produce to broker acknowledgement for one request",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge("tracehouse_ingest_kafka_queue_depth", "Messages awaiting broker ack")

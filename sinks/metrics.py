"""Prometheus metrics of the sink workers (listed in sinks/README.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROWS_STORED = Counter(
    "tracehouse_sink_rows_stored",
    "Rows inserted into ClickHouse (retried no-ops included)",
    ["table"],
)
RECORDS_DLQ = Counter(
    "tracehouse_sink_records_dlq", "Kafka records sent to the DLQ", ["topic", "reason"]
)
ROWS_REJECTED = Counter(
    "tracehouse_sink_rows_rejected",
    "Rows ClickHouse refused for their data, isolated by bisection and dead-lettered",
    ["table", "reason"],
)
SHAPE_ERRORS = Counter(
    "tracehouse_sink_shape_errors",
    "Inserts ClickHouse refused for their data (split or bisected, never retried forever)",
    ["table", "kind"],
)
SUB_INSERTS = Counter(
    "tracehouse_sink_sub_inserts",
    "Inserts of batch halves made while isolating rejected rows",
    ["table"],
)
STALE_INTENTS = Counter(
    "tracehouse_sink_stale_intents",
    "Batch intents dropped because their partition restarted its offsets (topic recreated, "
    "broker lost its log): the record now at that offset is another one",
    ["topic"],
)
TOPIC_REJOINS = Counter(
    "tracehouse_sink_topic_rejoins",
    "Times the sink replaced its Kafka clients and rejoined its group because a subscribed "
    "topic was re-created (a new topic id, or back after missing)",
    ["topic"],
)
BATCHES = Counter("tracehouse_sink_batches", "Batches flushed", ["table", "outcome"])
CLICKHOUSE_ERRORS = Counter(
    "tracehouse_sink_clickhouse_errors",
    "Failed ClickHouse calls, each followed by a backoff and a retry",
    ["operation"],
)
CONCURRENT_BATCHES = Counter(
    "tracehouse_sink_concurrent_batches",
    "Batches whose intent and insert ran alongside other partitions' batches",
    ["table"],
)
REPLAYED_BATCHES = Counter(
    "tracehouse_sink_replayed_batches", "Batches rebuilt from a recorded intent", ["table"]
)
INSERT_SECONDS = Histogram(
    "tracehouse_sink_insert_seconds",
    "Intent + insert + DLQ + commit time per batch",
    ["table"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BUFFERED_ROWS = Gauge("tracehouse_sink_buffered_rows", "Rows consumed but not yet stored")
PAUSED = Gauge("tracehouse_sink_paused", "1 while consumption is paused for ClickHouse")

-- The sink's batch intents: before a batch is inserted its exact Kafka offset range is
-- recorded here, so a worker that dies between insert and offset commit is replaced by one
-- that rebuilds the very same batch and insert_deduplication_token, making the retry a no-op.
-- Rows double as an audit of what was stored per partition.
CREATE TABLE IF NOT EXISTS {db}.{local:sink_batches}{on_cluster}
(
    ConsumerGroup LowCardinality(String),
    Topic LowCardinality(String),
    Partition UInt32,
    FirstOffset Int64,
    LastOffset Int64,
    Rows UInt64,
    DlqRecords UInt64,
    PlannedAt DateTime64(3) DEFAULT now64(3)
)
ENGINE = {engine:ReplacingMergeTree}
ORDER BY (ConsumerGroup, Topic, Partition, FirstOffset);

-- Pipeline accounting deltas (topic pipeline.accounting). The key is the producer's
-- (Component, Instance, Seq) plus the counter identity, so a batch the producer published
-- twice collapses to one row: read with FINAL (the table is small). The sink's dedup token
-- already covers its own retries; this covers the producer's.
CREATE TABLE IF NOT EXISTS {db}.{local:pipeline_counters}{on_cluster}
(
    TimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    Component LowCardinality(String) CODEC(ZSTD(1)),
    Instance LowCardinality(String) CODEC(ZSTD(1)),
    Seq Int64 CODEC(Delta, ZSTD(1)),
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    Name LowCardinality(String) CODEC(ZSTD(1)),
    Reason LowCardinality(String) CODEC(ZSTD(1)),
    Value Int64 CODEC(ZSTD(1))
)
ENGINE = {engine:ReplacingMergeTree}
PARTITION BY toDate(TimeUnix)
ORDER BY (Component, Instance, Seq, TenantId, Name, Reason)
{ttl:TimeUnix}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

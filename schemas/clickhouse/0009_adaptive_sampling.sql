-- Adaptive sampling: the per-operation probabilities every query replica calculates (query/
-- adaptive_sampling.py), one row per calculation interval and operation, so the strategies in
-- force and how they changed over time are a SQL query away (docs/queries.md). Every replica
-- computes the same row from the same RED data and inserts it; ReplacingMergeTree on the key
-- collapses the copies (read with FINAL or argMax), so there is no leader to elect.
CREATE TABLE IF NOT EXISTS {db}.{local:sampling_probabilities}{on_cluster}
(
    IntervalEnd DateTime CODEC(Delta, ZSTD(1)),
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    Probability Float64 CODEC(ZSTD(1)),
    PreviousProbability Float64 CODEC(ZSTD(1)),
    SampledPerSecond Float64 CODEC(ZSTD(1)),
    TargetPerSecond Float64 CODEC(ZSTD(1))
)
ENGINE = {engine:ReplacingMergeTree}
PARTITION BY toDate(IntervalEnd)
ORDER BY (TenantId, ServiceName, SpanName, IntervalEnd)
{ttl:IntervalEnd}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- Service-graph edges per window (topic graph.edges), the same shape as the RED series so
-- edge latency quantiles use the same bucket arithmetic.
CREATE TABLE IF NOT EXISTS {db}.{local:service_graph_edges}{on_cluster}
(
    TimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    WindowEnd DateTime64(9) CODEC(Delta, ZSTD(1)),
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    ClientService LowCardinality(String) CODEC(ZSTD(1)),
    ServerService LowCardinality(String) CODEC(ZSTD(1)),
    ConnectionType LowCardinality(String) CODEC(ZSTD(1)),
    Calls UInt64 CODEC(T64, ZSTD(1)),
    Errors UInt64 CODEC(T64, ZSTD(1)),
    DurationSumNs UInt64 CODEC(ZSTD(1)),
    DurationMaxNs UInt64 CODEC(ZSTD(1)),
    BucketBoundsMs Array(Float64) CODEC(ZSTD(1)),
    BucketCounts Array(UInt64) CODEC(ZSTD(1)),
    Source LowCardinality(String) CODEC(ZSTD(1))
)
ENGINE = {engine:MergeTree}
PARTITION BY toDate(TimeUnix)
ORDER BY (TenantId, ClientService, ServerService, TimeUnix)
{ttl:TimeUnix}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

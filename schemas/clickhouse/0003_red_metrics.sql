-- RED series exactly as the streams workers computed them (topic metrics.red): one row per
-- window, series and source partition. The latency histogram is kept as bucket counts over
-- BucketBoundsMs (last count = +Inf), so p50/p90/p99 over ANY range are estimated by summing
-- the arrays (sumForEach) and interpolating inside the bucket holding the rank
-- (th_histogram_quantile below). Quantiles themselves cannot be summed; buckets can.
CREATE TABLE IF NOT EXISTS {db}.{local:red_metrics}{on_cluster}
(
    TimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    WindowEnd DateTime64(9) CODEC(Delta, ZSTD(1)),
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    Overflow Bool CODEC(ZSTD(1)),
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
ORDER BY (TenantId, ServiceName, SpanName, TimeUnix)
{ttl:TimeUnix}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- Hourly rollup for long ranges: sums and the summed histogram as an aggregate state. The
-- bucket layout is part of the key so histograms with different bounds are never added up.
-- non_replicated_deduplication_window makes a retried sink batch a no-op here as well
-- (with deduplicate_blocks_in_dependent_materialized_views=1, set by the sink).
CREATE TABLE IF NOT EXISTS {db}.{local:red_metrics_1h}{on_cluster}
(
    TimeUnix DateTime CODEC(Delta, ZSTD(1)),
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    BucketBoundsMs Array(Float64) CODEC(ZSTD(1)),
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    DurationSumNs SimpleAggregateFunction(sum, UInt64),
    DurationMaxNs SimpleAggregateFunction(max, UInt64),
    BucketCounts AggregateFunction(sumForEach, Array(UInt64))
)
ENGINE = {engine:AggregatingMergeTree}
PARTITION BY toYYYYMM(TimeUnix)
ORDER BY (TenantId, ServiceName, SpanName, SpanKind, StatusCode, BucketBoundsMs, TimeUnix)
{ttl:TimeUnix}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.red_metrics_1h_mv{on_cluster}
TO {db}.{local:red_metrics_1h}
AS SELECT
    toStartOfHour(TimeUnix) AS TimeUnix,
    TenantId,
    ServiceName,
    SpanName,
    SpanKind,
    StatusCode,
    BucketBoundsMs,
    sum(Calls) AS Calls,
    sum(Errors) AS Errors,
    sum(DurationSumNs) AS DurationSumNs,
    max(DurationMaxNs) AS DurationMaxNs,
    sumForEachState(BucketCounts) AS BucketCounts
FROM {db}.{local:red_metrics}
GROUP BY TimeUnix, TenantId, ServiceName, SpanName, SpanKind, StatusCode, BucketBoundsMs;

-- Quantile q (0..1) in ms from summed bucket counts, interpolating linearly inside the bucket
-- that holds the rank (Prometheus histogram_quantile); the +Inf bucket and the top of every
-- bucket are capped by the observed maximum. Functions are server-wide, hence the prefix and
-- the version in the name: a changed formula gets a new name instead of an ALTER.
CREATE FUNCTION IF NOT EXISTS th_histogram_quantile_v1{on_cluster} AS (q, bounds, counts, max_ms) ->
    if(
        arraySum(counts) = 0,
        nan,
        if(
            arrayFirstIndex(c -> c >= q * arraySum(counts), arrayCumSum(counts)) = 1,
            0.,
            toFloat64(bounds[arrayFirstIndex(c -> c >= q * arraySum(counts), arrayCumSum(counts)) - 1])
        )
        + greatest(
            0.,
            least(
                if(
                    arrayFirstIndex(c -> c >= q * arraySum(counts), arrayCumSum(counts)) <= length(bounds),
                    toFloat64(bounds[arrayFirstIndex(c -> c >= q * arraySum(counts), arrayCumSum(counts))]),
                    toFloat64(max_ms)
                ),
                toFloat64(max_ms)
            )
            - if(
                arrayFirstIndex(c -> c >= q * arraySum(counts), arrayCumSum(counts)) = 1,
                0.,
                toFloat64(bounds[arrayFirstIndex(c -> c >= q * arraySum(counts), arrayCumSum(counts)) - 1])
            )
        )
        * (
            q * arraySum(counts)
            - if(
                arrayFirstIndex(c -> c >= q * arraySum(counts), arrayCumSum(counts)) = 1,
                0,
                arrayCumSum(counts)[arrayFirstIndex(c -> c >= q * arraySum(counts), arrayCumSum(counts)) - 1]
            )
        )
        / counts[arrayFirstIndex(c -> c >= q * arraySum(counts), arrayCumSum(counts))]
    );

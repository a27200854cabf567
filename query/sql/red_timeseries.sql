-- RED points per time step. Histograms are summed bucket-wise and interpolated by
-- th_histogram_quantile_v1; rows with different bucket layouts stay apart (grouped by bounds).
-- {table} and {sum_counts} are filled in by query/store.py: the raw per-window table
-- (red_metrics, sumForEach) or, for steps of an hour or more, the hourly rollup
-- (red_metrics_1h, sumForEachMerge of its aggregate state).
SELECT
    bucket, op, calls, errors,
    th_histogram_quantile_v1(0.50, bounds, counts, max_ns / 1e6) AS p50_ms,
    th_histogram_quantile_v1(0.90, bounds, counts, max_ns / 1e6) AS p90_ms,
    th_histogram_quantile_v1(0.99, bounds, counts, max_ns / 1e6) AS p99_ms
FROM
(
    SELECT
        toUnixTimestamp(toStartOfInterval(TimeUnix, toIntervalSecond({step:UInt32}))) AS bucket,
        if({by_operation:UInt8} = 1, SpanName, '') AS op,
        BucketBoundsMs AS bounds,
        sum(Calls) AS calls,
        sum(Errors) AS errors,
        max(DurationMaxNs) AS max_ns,
        {sum_counts}(BucketCounts) AS counts
    FROM {table}
    WHERE TenantId = {tenant:String}
      AND ServiceName = {service:String}
      AND ({operation:String} = '' OR SpanName = {operation:String})
      AND TimeUnix >= fromUnixTimestamp64Nano({start_ns:Int64})
      AND TimeUnix < fromUnixTimestamp64Nano({end_ns:Int64})
    GROUP BY bucket, op, bounds
)
ORDER BY op, bucket

-- The same points from the hourly rollup, for steps of an hour or more (long ranges).
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
        sumForEachMerge(BucketCounts) AS counts
    FROM red_metrics_1h
    WHERE TenantId = {tenant:String}
      AND ServiceName = {service:String}
      AND ({operation:String} = '' OR SpanName = {operation:String})
      AND TimeUnix >= toDateTime(intDiv({start_ns:Int64}, 1000000000))
      AND TimeUnix < toDateTime(intDiv({end_ns:Int64}, 1000000000))
    GROUP BY bucket, op, bounds
)
ORDER BY op, bucket

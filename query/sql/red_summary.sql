-- One row per (service, operation) over the whole range: the RED table of a service overview.
SELECT
    ServiceName, op, calls, errors,
    th_histogram_quantile_v1(0.50, bounds, counts, max_ns / 1e6) AS p50_ms,
    th_histogram_quantile_v1(0.90, bounds, counts, max_ns / 1e6) AS p90_ms,
    th_histogram_quantile_v1(0.99, bounds, counts, max_ns / 1e6) AS p99_ms
FROM
(
    SELECT
        ServiceName,
        SpanName AS op,
        BucketBoundsMs AS bounds,
        sum(Calls) AS calls,
        sum(Errors) AS errors,
        max(DurationMaxNs) AS max_ns,
        sumForEach(BucketCounts) AS counts
    FROM red_metrics
    WHERE TenantId = {tenant:String}
      AND ({service:String} = '' OR ServiceName = {service:String})
      AND TimeUnix >= fromUnixTimestamp64Nano({start_ns:Int64})
      AND TimeUnix < fromUnixTimestamp64Nano({end_ns:Int64})
    GROUP BY ServiceName, op, bounds
)
ORDER BY ServiceName, calls DESC

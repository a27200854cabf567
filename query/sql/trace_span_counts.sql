-- Spans stored per trace, read before the spans of several traces so the API can share the
-- response's span budget among them (query.store.per_trace_limit). Reads only the filter
-- columns; the time range comes from the lookup table in the same statement. The first and
-- last start times bound the span read that follows, so that read skips the lookup table.
WITH (
    -- The traces' time range from the lookup table (otel_traces_trace_id_ts_mv), widened by
    -- slack_ns for clock skew and, since its bounds are whole seconds, End by just under a
    -- second; End at DateTime's last second means "no end". A scalar subquery is evaluated
    -- before the outer query is analysed, so partition and primary-key pruning see constants.
    SELECT (
        greatest(toInt64(toUnixTimestamp(min(Start))) * 1000000000 - {slack_ns:Int64}, 0),
        if(max(End) >= toDateTime(4294967295), 9223372036854775807,
           toInt64(toUnixTimestamp(max(End))) * 1000000000 + 999999999 + {slack_ns:Int64}))
    FROM otel_traces_trace_id_ts
    WHERE TraceId IN {trace_ids:Array(String)}
) AS bounds
SELECT TraceId, count() AS spans,
       min(toUnixTimestamp64Nano(Timestamp)) AS first_ns,
       max(toUnixTimestamp64Nano(Timestamp)) AS last_ns
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= fromUnixTimestamp64Nano(greatest(bounds.1, {start_ns:Int64}))
  AND Timestamp <= fromUnixTimestamp64Nano(least(bounds.2, {end_ns:Int64}))
  AND TenantId = {tenant:String}
GROUP BY TraceId

-- Spans per trace whose parent span is not stored (an incomplete trace), for trace summaries.
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
SELECT child.TraceId AS TraceId, count() AS orphans
FROM
(
    SELECT TraceId, ParentSpanId FROM otel_traces
    WHERE TraceId IN {trace_ids:Array(String)}
      AND Timestamp >= fromUnixTimestamp64Nano(bounds.1)
      AND Timestamp <= fromUnixTimestamp64Nano(bounds.2)
      AND TenantId = {tenant:String}
      AND ParentSpanId != ''
) AS child
LEFT ANTI JOIN
(
    SELECT DISTINCT TraceId, SpanId FROM otel_traces
    WHERE TraceId IN {trace_ids:Array(String)}
      AND Timestamp >= fromUnixTimestamp64Nano(bounds.1)
      AND Timestamp <= fromUnixTimestamp64Nano(bounds.2)
      AND TenantId = {tenant:String}
) AS present
ON child.TraceId = present.TraceId AND child.ParentSpanId = present.SpanId
GROUP BY child.TraceId

-- Spans per trace whose parent span is not stored (an incomplete trace), for trace summaries.
-- Bounded by the first start and last end time the summaries statement saw, so it needs no
-- lookup-table read of its own.
SELECT child.TraceId AS TraceId, count() AS orphans
FROM
(
    SELECT TraceId, ParentSpanId FROM otel_traces
    WHERE TraceId IN {trace_ids:Array(String)}
      AND Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})
      AND Timestamp <= fromUnixTimestamp64Nano({end_ns:Int64})
      AND TenantId = {tenant:String}
      AND ParentSpanId != ''
) AS child
LEFT ANTI JOIN
(
    SELECT DISTINCT TraceId, SpanId FROM otel_traces
    WHERE TraceId IN {trace_ids:Array(String)}
      AND Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})
      AND Timestamp <= fromUnixTimestamp64Nano({end_ns:Int64})
      AND TenantId = {tenant:String}
) AS present
ON child.TraceId = present.TraceId AND child.ParentSpanId = present.SpanId
GROUP BY child.TraceId

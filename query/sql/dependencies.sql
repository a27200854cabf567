-- Caller -> callee call counts from parent/child spans of different services: the same edges
-- Jaeger's dependencies job derives, computed on demand over the requested window.
SELECT parent.ServiceName AS parent, child.ServiceName AS child, count() AS callCount
FROM
(
    SELECT TraceId, SpanId, ServiceName FROM otel_traces
    WHERE TenantId = {tenant:String}
      AND Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})
      AND Timestamp <= fromUnixTimestamp64Nano({end_ns:Int64})
) AS parent
INNER JOIN
(
    SELECT TraceId, ParentSpanId, ServiceName FROM otel_traces
    WHERE TenantId = {tenant:String}
      AND ParentSpanId != ''
      AND Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})
      AND Timestamp <= fromUnixTimestamp64Nano({end_ns:Int64})
) AS child
ON child.TraceId = parent.TraceId AND child.ParentSpanId = parent.SpanId
WHERE parent.ServiceName != child.ServiceName
GROUP BY parent, child
ORDER BY parent, child

-- Spans stored per trace, counted before the capped read so a cut trace can say so.
SELECT TraceId, count() AS spans
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})
  AND Timestamp <= fromUnixTimestamp64Nano({end_ns:Int64})
  AND TenantId = {tenant:String}
GROUP BY TraceId

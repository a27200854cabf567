-- Spans stored per trace, read before the spans themselves so the API can cap a huge trace
-- and say how many spans it has. Reads only the filter columns, not the span payload.
SELECT TraceId, count() AS spans
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})
  AND Timestamp <= fromUnixTimestamp64Nano({end_ns:Int64})
  AND TenantId = {tenant:String}
GROUP BY TraceId

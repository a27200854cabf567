-- All spans of some traces, in the column order query/jaeger_model.py expects.
-- {trace_ids} and the time range narrow the scan to the partitions the lookup table found.
-- LIMIT ... BY keeps the first {per_trace} spans of each trace by start time (SpanId breaks
-- ties so the cut is stable); the outer LIMIT bounds the whole response even if spans
-- arrive between the count and this read.
SELECT
    TraceId,
    SpanId,
    ParentSpanId,
    SpanName,
    SpanKind,
    ServiceName,
    ResourceAttributes,
    ScopeName,
    ScopeVersion,
    SpanAttributes,
    toUnixTimestamp64Nano(Timestamp) AS StartNs,
    Duration,
    StatusCode,
    StatusMessage,
    arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS EventTimes,
    Events.Name AS EventNames,
    Events.Attributes AS EventAttributes,
    Links.TraceId AS LinkTraceIds,
    Links.SpanId AS LinkSpanIds,
    TraceState
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})
  AND Timestamp <= fromUnixTimestamp64Nano({end_ns:Int64})
  AND TenantId = {tenant:String}
ORDER BY TraceId, Timestamp, SpanId
LIMIT {per_trace:UInt32} BY TraceId
LIMIT {max_rows:UInt32}

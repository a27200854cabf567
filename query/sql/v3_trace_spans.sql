-- Spans of some traces for the api_v3 (OTLP) responses, in the column order of
-- query/otlp_json_out.py. The time range comes from otel_traces_trace_id_ts; LIMIT ... BY keeps
-- the first {per_trace} spans of each trace by start time, the outer LIMIT bounds the response.
SELECT
    TraceId,
    SpanId,
    ParentSpanId,
    TraceState,
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
    Links.TraceState AS LinkTraceStates,
    Links.Attributes AS LinkAttributes
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})
  AND Timestamp <= fromUnixTimestamp64Nano({end_ns:Int64})
  AND TenantId = {tenant:String}
ORDER BY TraceId, Timestamp, SpanId
LIMIT {per_trace:UInt32} BY TraceId
LIMIT {max_rows:UInt32}

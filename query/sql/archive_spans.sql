-- All spans of archived traces, in the column order query/jaeger_model.py expects; the same
-- read as trace_spans.sql, from the archive (FINAL folds rows archived more than once).
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
    TraceState,
    count() OVER (PARTITION BY TraceId) AS Stored
FROM otel_traces_archive FINAL
WHERE TraceId IN {trace_ids:Array(String)}
  AND TenantId = {tenant:String}
ORDER BY TraceId, Timestamp, SpanId
LIMIT {per_trace:UInt32} BY TraceId
LIMIT {max_rows:UInt32}

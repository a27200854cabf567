-- POST /api/archive/{traceID}: copy a trace's rows into otel_traces_archive. The time range
-- (from otel_traces_trace_id_ts) narrows the scan to the trace's partitions.
INSERT INTO otel_traces_archive
    (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
     ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode,
     StatusMessage, `Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`,
     `Links.SpanId`, `Links.TraceState`, `Links.Attributes`, TenantId)
SELECT
    Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
    ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode,
    StatusMessage, `Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`,
    `Links.SpanId`, `Links.TraceState`, `Links.Attributes`, TenantId
FROM otel_traces
WHERE TraceId = {trace_id:String}
  AND Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})
  AND Timestamp <= fromUnixTimestamp64Nano({end_ns:Int64})
  AND TenantId = {tenant:String}

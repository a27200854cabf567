-- The spans of some traces for the api_v3 (OTLP) responses, in the column order of
-- query/otlp_json_out.py, plus Stored: the same statement as trace_spans.sql (see there).
-- The scalar `bounds` is trace_bounds.sql's, prefixed by query.store.bounded_sql.
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
    Links.Attributes AS LinkAttributes,
    count() OVER (PARTITION BY TraceId) AS Stored
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= fromUnixTimestamp64Nano(
      if(empty({range_ids:Array(String)}), {start_ns:Int64}, greatest(bounds.1, {start_ns:Int64})))
  AND Timestamp <= fromUnixTimestamp64Nano(
      if(empty({range_ids:Array(String)}), {end_ns:Int64}, least(bounds.2, {end_ns:Int64})))
  AND TenantId = {tenant:String}

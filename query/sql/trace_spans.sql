-- The spans of some traces, in the column order query/jaeger_model.py expects, plus the spans
-- stored per trace (Stored: a window count, before any cut). query.store.span_sql completes
-- it with the caps (query.span_reads: ORDER BY ... LIMIT n BY for one trace or a level known
-- in advance, the water-filling window functions for several traces). The time range: with
-- range_ids (the ids again) it comes from the lookup table inside the statement, narrowed to
-- start_ns / end_ns; with range_ids empty, start_ns / end_ns are the range.
-- The scalar `bounds` is trace_bounds.sql's, prefixed by query.store.bounded_sql.
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
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= fromUnixTimestamp64Nano(
      if(empty({range_ids:Array(String)}), {start_ns:Int64}, greatest(bounds.1, {start_ns:Int64})))
  AND Timestamp <= fromUnixTimestamp64Nano(
      if(empty({range_ids:Array(String)}), {end_ns:Int64}, least(bounds.2, {end_ns:Int64})))
  AND TenantId = {tenant:String}

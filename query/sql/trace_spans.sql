-- All spans of some traces, in the column order query/jaeger_model.py expects, plus the
-- spans stored per trace (Stored, counted before the cut) so one statement both reads a trace
-- and says whether it was capped. The time range: with range_ids (the ids again) it comes from
-- the lookup table inside this statement (a read by id is one round trip), narrowed to
-- start_ns / end_ns; with range_ids empty, start_ns / end_ns are the range (a read of several
-- traces takes it from trace_span_counts.sql, which saw the spans' own times).
-- LIMIT ... BY keeps the first per_trace spans of each trace by start time (SpanId breaks
-- ties so the cut is stable); the outer LIMIT bounds the whole response.
WITH (
    -- The traces' time range from the lookup table (otel_traces_trace_id_ts_mv), widened by
    -- slack_ns for clock skew and, since its bounds are whole seconds, End by just under a
    -- second; End at DateTime's last second means "no end". A scalar subquery is evaluated
    -- before the outer query is analysed, so partition and primary-key pruning see constants.
    SELECT (
        greatest(toInt64(toUnixTimestamp(min(Start))) * 1000000000 - {slack_ns:Int64}, 0),
        if(max(End) >= toDateTime(4294967295), 9223372036854775807,
           toInt64(toUnixTimestamp(max(End))) * 1000000000 + 999999999 + {slack_ns:Int64}))
    FROM otel_traces_trace_id_ts
    WHERE TraceId IN {range_ids:Array(String)}
) AS bounds
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
ORDER BY TraceId, Timestamp, SpanId
LIMIT {per_trace:UInt32} BY TraceId
LIMIT {max_rows:UInt32}

-- Spans stored per trace, read before the spans of several traces so the API can share the
-- response's span budget among them (query.store.per_trace_limit). Reads only the filter
-- columns; the time range comes from the lookup table in the same statement. The first and
-- last start times bound the span read that follows, so that read skips the lookup table.
-- The scalar `bounds` is trace_bounds.sql's, prefixed by query.store.bounded_sql.
SELECT TraceId, count() AS spans,
       min(toUnixTimestamp64Nano(Timestamp)) AS first_ns,
       max(toUnixTimestamp64Nano(Timestamp)) AS last_ns
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= fromUnixTimestamp64Nano(greatest(bounds.1, {start_ns:Int64}))
  AND Timestamp <= fromUnixTimestamp64Nano(least(bounds.2, {end_ns:Int64}))
  AND TenantId = {tenant:String}
GROUP BY TraceId

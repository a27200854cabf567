-- Time range of each trace (from the lookup table fed by otel_traces_trace_id_ts_mv), in ns.
-- Second-precision bounds: see trace_range.sql for the widening of End.
SELECT TraceId, toUnixTimestamp(min(Start)) * 1000000000 AS start_ns,
       if(max(End) >= toDateTime(4294967295), 9223372036854775807,
          toUnixTimestamp(max(End)) * 1000000000 + 999999999) AS end_ns
FROM otel_traces_trace_id_ts
WHERE TraceId IN {trace_ids:Array(String)}
GROUP BY TraceId

-- Time range of each trace (from the lookup table fed by otel_traces_trace_id_ts_mv), in ns.
SELECT TraceId, toUnixTimestamp64Nano(min(Start)) AS start_ns, toUnixTimestamp64Nano(max(End)) AS end_ns
FROM otel_traces_trace_id_ts
WHERE TraceId IN {trace_ids:Array(String)}
GROUP BY TraceId

-- Time range of each trace from the small lookup table fed by otel_traces_trace_id_ts_mv.
-- Its bounds are whole seconds (DateTime, as the exporter lays the table out): Start is a
-- floor, so End is widened by just under a second; End at DateTime's last second means the
-- span lies at or beyond it (the view clamps), so the range is open-ended.
SELECT TraceId, min(Start) AS s, max(End) AS e,
       toUnixTimestamp(min(Start)) * 1000000000 AS start_ns,
       if(max(End) >= toDateTime(4294967295), 9223372036854775807,
          toUnixTimestamp(max(End)) * 1000000000 + 999999999) AS end_ns
FROM otel_traces_trace_id_ts
WHERE TraceId IN {trace_ids:Array(String)}
GROUP BY TraceId

-- Prefixed to the statements that read whole traces (query.store.bounded_sql): the traces'
-- time range from the lookup table, as the scalar ``bounds`` (start_ns, end_ns).
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

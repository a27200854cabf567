-- All spans of some traces, in the column order query/jaeger_model.py expects, plus the
-- spans stored per trace (Stored, counted before the cut), in ONE statement for any number of
-- traces. The time range: with range_ids (the ids again) it comes from the lookup table inside
-- this statement, narrowed to start_ns / end_ns; with range_ids empty, start_ns / end_ns are
-- the range (the caller already knows the spans' first and last start).
-- The caps, as query.span_reads.per_trace_limit computes them ("water-filling"): each trace
-- keeps its first spans by start time (Rank; SpanId breaks ties so the cut is stable) up to
-- the largest level L <= per_trace whose spans over all traces fit in max_rows (a trace's
-- first span always stays); the outer LIMIT bounds the response in any case.
-- The scalar `bounds` is trace_bounds.sql's, prefixed by query.store.bounded_sql.
SELECT * EXCEPT (Rank, Upto)
FROM
(
    -- Upto: spans of all these traces with a Rank at most this span's (the default frame,
    -- RANGE ... CURRENT ROW, includes equal ranks), i.e. what a per-trace limit of Rank costs.
    SELECT *, count() OVER (ORDER BY Rank) AS Upto
    FROM
    (
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
            count() OVER (PARTITION BY TraceId) AS Stored,
            row_number() OVER (PARTITION BY TraceId ORDER BY Timestamp, SpanId) AS Rank
        FROM otel_traces
        WHERE TraceId IN {trace_ids:Array(String)}
          AND Timestamp >= fromUnixTimestamp64Nano(
              if(empty({range_ids:Array(String)}), {start_ns:Int64}, greatest(bounds.1, {start_ns:Int64})))
          AND Timestamp <= fromUnixTimestamp64Nano(
              if(empty({range_ids:Array(String)}), {end_ns:Int64}, least(bounds.2, {end_ns:Int64})))
          AND TenantId = {tenant:String}
    )
)
WHERE Rank <= {per_trace:UInt32} AND (Upto <= {max_rows:UInt32} OR Rank = 1)
ORDER BY TraceId, StartNs, SpanId
LIMIT {max_rows:UInt32}

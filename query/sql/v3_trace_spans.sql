-- Spans of some traces for the api_v3 (OTLP) responses, in the column order of
-- query/otlp_json_out.py, plus Stored (spans stored per trace, counted before the cut): the
-- same statement as trace_spans.sql (one round trip, the same caps; see there).
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

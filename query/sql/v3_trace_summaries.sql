-- One row per trace for /api/v3/trace-summaries, over ALL its spans (no span cap): counts,
-- time bounds, the root span (earliest span without a parent) and a per-service breakdown.
-- The inner query groups by (trace, service), the outer one folds the services together.
-- The scalar `bounds` is trace_bounds.sql's, prefixed by query.store.bounded_sql.
SELECT
    TraceId,
    sum(spans) AS span_count,
    sum(errors) AS error_count,
    min(first_start_ns) AS min_start_ns,
    max(last_end_ns) AS max_end_ns,
    argMinIf(tuple(ServiceName, root_op), root_start_ns, roots > 0) AS root,
    max(roots) > 0 AS has_root,
    arraySort(groupArray(tuple(ServiceName, spans, errors))) AS services
FROM
(
    SELECT
        TraceId,
        ServiceName,
        count() AS spans,
        countIf(StatusCode = 'Error') AS errors,
        min(toUnixTimestamp64Nano(Timestamp)) AS first_start_ns,
        max(toUInt64(toUnixTimestamp64Nano(Timestamp)) + Duration) AS last_end_ns,
        countIf(ParentSpanId = '') AS roots,
        minIf(toUnixTimestamp64Nano(Timestamp), ParentSpanId = '') AS root_start_ns,
        argMinIf(SpanName, tuple(Timestamp, SpanId), ParentSpanId = '') AS root_op
    FROM otel_traces
    WHERE TraceId IN {trace_ids:Array(String)}
      AND Timestamp >= fromUnixTimestamp64Nano(bounds.1)
      AND Timestamp <= fromUnixTimestamp64Nano(bounds.2)
      AND TenantId = {tenant:String}
    GROUP BY TraceId, ServiceName
)
GROUP BY TraceId

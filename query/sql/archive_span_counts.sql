-- Spans per trace in the archive (see trace_span_counts.sql); FINAL folds re-archived rows.
SELECT TraceId, count() AS spans
FROM otel_traces_archive FINAL
WHERE TraceId IN {trace_ids:Array(String)}
  AND TenantId = {tenant:String}
GROUP BY TraceId

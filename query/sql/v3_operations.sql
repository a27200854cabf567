-- Operations of a service with their span kind (api_v3 GetOperations); kind '' = any kind.
SELECT DISTINCT SpanName, SpanKind
FROM otel_traces
WHERE TenantId = {tenant:String}
  AND ServiceName = {service:String}
  AND Timestamp >= now() - toIntervalDay({days:UInt32})
  AND ({kind:String} = '' OR SpanKind = {kind:String})
ORDER BY SpanName, SpanKind

-- Service names with spans in the last {days} days (api_v3 GetServices).
SELECT DISTINCT ServiceName
FROM otel_traces
WHERE TenantId = {tenant:String} AND Timestamp >= now() - toIntervalDay({days:UInt32})
ORDER BY ServiceName

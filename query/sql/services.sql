SELECT DISTINCT ServiceName
FROM otel_traces
WHERE TenantId = {tenant:String} AND Timestamp >= now() - toIntervalDay({days:UInt32})
ORDER BY ServiceName

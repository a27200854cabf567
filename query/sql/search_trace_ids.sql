-- Newest traces with at least one span of the service matching every filter.
-- {filters} is replaced by AND-ed, parameterised conditions built in query/store.py.
SELECT TraceId, max(Timestamp) AS last_seen
FROM otel_traces
WHERE TenantId = {tenant:String}
  AND ServiceName = {service:String}
  AND Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})
  AND Timestamp <= fromUnixTimestamp64Nano({end_ns:Int64})
  {filters}
GROUP BY TraceId
ORDER BY last_seen DESC
LIMIT {limit:UInt32}

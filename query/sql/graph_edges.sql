-- Service-graph edges joined by the streams workers on ALL spans (before sampling).
SELECT ClientService, ServerService, sum(Calls) AS calls, sum(Errors) AS errors
FROM service_graph_edges
WHERE TenantId = {tenant:String}
  AND TimeUnix >= fromUnixTimestamp64Nano({start_ns:Int64})
  AND TimeUnix <= fromUnixTimestamp64Nano({end_ns:Int64})
  AND ClientService != ServerService
GROUP BY ClientService, ServerService
ORDER BY ClientService, ServerService

-- The finest time resolution the RED table holds: the shortest window stored in the last day.
SELECT toUInt64(min(toUnixTimestamp64Milli(WindowEnd) - toUnixTimestamp64Milli(TimeUnix)))
FROM red_metrics
WHERE TenantId = {tenant:String} AND TimeUnix >= now() - toIntervalDay(1) AND WindowEnd > TimeUnix

-- RED rows of some services pre-summed into slots of {slot_ns} for the metrics API
-- (query/spm.py explains the slots): slot = ceil((WindowEnd - base) / slot_ns), so a row counts
-- for the points whose ratePer window its window END falls in. Layouts (BucketBoundsMs) stay
-- apart because histograms of different bounds cannot be added. TimeUnix bounds only let
-- ClickHouse skip partitions (a RED window is seconds long; an hour of slack is ample).
SELECT
    ServiceName,
    if({by_operation:UInt8} = 1, SpanName, '') AS op,
    BucketBoundsMs AS bounds,
    -- Int128: WindowEnd - base can exceed Int64 when ratePer reaches back before 1970.
    intDiv(toInt128(toUnixTimestamp64Nano(WindowEnd)) - {base_ns:Int64} + {slot_ns:Int64} - 1, {slot_ns:Int64}) AS slot,
    sum(Calls) AS calls,
    sum(Errors) AS errors,
    max(DurationMaxNs) AS max_ns,
    sumForEach(BucketCounts) AS counts
FROM red_metrics
WHERE TenantId = {tenant:String}
  AND ServiceName IN {services:Array(String)}
  AND SpanKind IN {kinds:Array(String)}
  AND TimeUnix >= fromUnixTimestamp64Nano({scan_from_ns:Int64})
  AND TimeUnix <= fromUnixTimestamp64Nano({end_ns:Int64})
  AND toUnixTimestamp64Nano(WindowEnd) > {base_ns:Int64}
  AND toUnixTimestamp64Nano(WindowEnd) <= {end_ns:Int64}
GROUP BY ServiceName, op, bounds, slot
ORDER BY ServiceName, op, slot

-- SQL written for the OTel Collector ClickHouse exporter's schema, in the shapes the exporter's
-- README and Grafana's ClickHouse data source (trace search, trace by id with and without the
-- lookup table, flattened nested columns, its OTel dashboards) produce. Grafana macros are
-- expanded: $__timeFilter(Timestamp) -> Timestamp BETWEEN {t0} AND {t1}.
-- tests/integration/test_upstream_schema.py runs each block against the exporter's tables and
-- against tracehouse's, loaded with the same spans, and requires identical results.

-- query: select_star
SELECT * FROM otel_traces ORDER BY TraceId, SpanId, SpanKind

-- query: trace_by_id_with_lookup
WITH {trace_id:String} AS trace_id,
     (SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_start,
     (SELECT max(End) + 1 FROM otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_end
SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID,
       ServiceName AS serviceName, SpanName AS operationName, Timestamp AS startTime,
       multiply(Duration, 0.000001) AS duration,
       arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags,
       arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes)) AS serviceTags,
       arrayMap((name, ts, attrs) -> tuple(name, toString(toUnixTimestamp64Milli(ts)), attrs),
                Events.Name, Events.Timestamp, Events.Attributes) AS logs,
       arrayMap((t, s, st) -> map('traceID', t, 'spanID', s, 'traceState', st),
                Links.TraceId, Links.SpanId, Links.TraceState) AS references
FROM otel_traces
WHERE traceID = trace_id AND startTime >= trace_start AND startTime <= trace_end
ORDER BY startTime, spanID

-- query: trace_by_id_without_lookup
SELECT TraceId, SpanId, ParentSpanId, ServiceName, SpanName, Timestamp, Duration, SpanKind,
       StatusCode, StatusMessage, SpanAttributes, ResourceAttributes
FROM otel_traces
WHERE TraceId = {trace_id:String}
ORDER BY Timestamp, SpanId

-- query: lookup_final
SELECT TraceId, Start, End FROM otel_traces_trace_id_ts FINAL ORDER BY TraceId

-- query: lookup_one_trace_final
SELECT count(), min(Start), max(End)
FROM otel_traces_trace_id_ts FINAL WHERE TraceId = {trace_id:String}

-- query: trace_search
SELECT TraceId AS traceID, min(Timestamp) AS startTime, max(Duration) / 1000000 AS duration_ms,
       count() AS spans, countIf(StatusCode = 'Error') AS errors,
       arraySort(groupUniqArray(ServiceName)) AS services
FROM otel_traces
WHERE Timestamp BETWEEN {t0:DateTime64(9)} AND {t1:DateTime64(9)}
  AND ServiceName IN ('frontend', 'checkout')
  AND Duration >= 1000000
GROUP BY TraceId
ORDER BY startTime DESC, traceID
LIMIT 50

-- query: resource_attribute_items
SELECT ServiceName, count()
FROM otel_traces
WHERE has(ResourceAttributeItems, 'deployment.environment=demo')
GROUP BY ServiceName ORDER BY ServiceName

-- query: span_attribute_items_any
SELECT TraceId, SpanId FROM otel_traces
WHERE hasAny(SpanAttributeItems, ['retry=true', 'ratio=1.5e-7'])
ORDER BY TraceId, SpanId

-- query: attribute_equality_double
SELECT SpanName, SpanAttributes['ratio'] FROM otel_traces
WHERE SpanAttributes['ratio'] = '1.5e-7' ORDER BY SpanName

-- query: attribute_equality_json
SELECT SpanName FROM otel_traces
WHERE SpanAttributes['payload'] = '{"a":[1,2.5,"x"],"b":true}' ORDER BY SpanName

-- query: attribute_keys
SELECT arrayJoin(mapKeys(SpanAttributes)) AS key, count() AS spans, uniqExact(SpanAttributes[key]) AS values
FROM otel_traces GROUP BY key ORDER BY key

-- query: span_name_contains
SELECT SpanName, count() FROM otel_traces
WHERE lower(SpanName) LIKE '%get%' GROUP BY SpanName ORDER BY SpanName

-- query: map_contains
SELECT count() FROM otel_traces WHERE mapContains(SpanAttributes, 'http.route')

-- query: error_spans
SELECT Timestamp, TraceId, SpanId, ServiceName, SpanName, StatusMessage
FROM otel_traces WHERE StatusCode = 'Error' ORDER BY Timestamp, SpanId

-- query: slow_spans
SELECT Timestamp, TraceId, SpanId, ServiceName, SpanName, Duration
FROM otel_traces
WHERE ServiceName = {service:String} AND Duration > 10 * 1000000
  AND Timestamp >= {t0:DateTime64(9)}
ORDER BY Duration DESC, SpanId LIMIT 100

-- query: service_stats
SELECT ServiceName AS id, count() AS spans, round(avg(Duration) / 1000000, 3) AS avg_ms,
       countIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR')) / count() AS error_ratio
FROM otel_traces
WHERE Timestamp BETWEEN {t0:DateTime64(9)} AND {t1:DateTime64(9)}
GROUP BY ServiceName ORDER BY spans DESC, id

-- query: service_map
SELECT parent.ServiceName AS source, child.ServiceName AS target, count() AS calls
FROM otel_traces AS child
INNER JOIN otel_traces AS parent
    ON child.ParentSpanId = parent.SpanId AND child.TraceId = parent.TraceId
WHERE child.Timestamp BETWEEN {t0:DateTime64(9)} AND {t1:DateTime64(9)}
  AND parent.ServiceName != child.ServiceName
GROUP BY source, target ORDER BY calls DESC, source, target

-- query: operations
SELECT SpanName AS operation, count() AS calls, countIf(StatusCode = 'Error') AS errors,
       quantileExact(0.5)(Duration) AS p50, quantileExact(0.99)(Duration) AS p99
FROM otel_traces
WHERE ServiceName = {service:String}
GROUP BY operation ORDER BY calls DESC, operation

-- query: spans_over_time
SELECT toStartOfInterval(Timestamp, INTERVAL 1 second) AS time, count() AS spans,
       countIf(StatusCode = 'Error') AS errors, quantileExact(0.99)(Duration) / 1000000 AS p99_ms
FROM otel_traces
WHERE Timestamp BETWEEN {t0:DateTime64(9)} AND {t1:DateTime64(9)}
GROUP BY time ORDER BY time

-- query: deployments
SELECT time, ServiceName, version FROM (
    SELECT toStartOfInterval(Timestamp, INTERVAL 30 second) AS time, ServiceName,
           max(ResourceAttributes['service.version']) AS version,
           lagInFrame(max(ResourceAttributes['service.version']))
               OVER (PARTITION BY ServiceName ORDER BY time) AS previous
    FROM otel_traces
    WHERE ResourceAttributes['service.version'] != ''
    GROUP BY ServiceName, time
)
ORDER BY ServiceName, time

-- query: flattened_events
SELECT TraceId, SpanId, Events.Name AS event, Events.Timestamp AS at, Events.Attributes AS attrs
FROM otel_traces ARRAY JOIN Events
ORDER BY TraceId, SpanId, at, event

-- query: flattened_links
SELECT TraceId, SpanId, Links.TraceId AS linked_trace, Links.SpanId AS linked_span,
       Links.TraceState AS state, Links.Attributes AS attrs
FROM otel_traces ARRAY JOIN Links
ORDER BY TraceId, SpanId, linked_trace, linked_span

-- query: scopes
SELECT ScopeName, ScopeVersion, count() FROM otel_traces
GROUP BY ScopeName, ScopeVersion ORDER BY ScopeName, ScopeVersion

-- query: kinds_and_statuses
SELECT SpanKind, StatusCode, count() FROM otel_traces
GROUP BY SpanKind, StatusCode ORDER BY SpanKind, StatusCode

-- query: root_spans
SELECT TraceId, ServiceName, SpanName, Duration FROM otel_traces
WHERE ParentSpanId = '' ORDER BY TraceId

-- query: trace_duration_from_lookup
SELECT TraceId, dateDiff('second', min(Start), max(End)) AS seconds
FROM otel_traces_trace_id_ts GROUP BY TraceId ORDER BY TraceId

-- The OTel Collector ClickHouse exporter's current otel_traces layout on top of 0001, without
-- rewriting a row (docs/adr/0010-upstream-trace-layout.md):
--  * Duration gets the T64 codec (new parts; old parts keep theirs until merged);
--  * TenantId becomes MATERIALIZED '' : still stored and filterable, but out of SELECT *, so
--    SELECT *-shaped copies to and from an upstream table line up column for column. The sink
--    writes it with insert_allow_materialized_columns = 1. Never MATERIALIZE COLUMN TenantId:
--    that would recompute every stored tenant to ''.
--  * the ALIAS columns ResourceAttributeItems / SpanAttributeItems ('key=value' strings);
--  * indexes as upstream chooses them by server version: text indexes from ClickHouse 26.2
--    (lines marked {text}), bloom filters below ({bloom}), plus idx_lower_span_name.
ALTER TABLE {db}.{local:otel_traces}{on_cluster}
    MODIFY COLUMN Duration UInt64 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN TenantId LowCardinality(String) MATERIALIZED '' CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(ResourceAttributes, 'Array(Tuple(String, String))')) AFTER `Links.Attributes`,
    ADD COLUMN IF NOT EXISTS SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(SpanAttributes, 'Array(Tuple(String, String))')) AFTER ResourceAttributeItems;

{text}ALTER TABLE {db}.{local:otel_traces}{on_cluster}
{text}    DROP INDEX IF EXISTS idx_trace_id,
{text}    DROP INDEX IF EXISTS idx_res_attr_key,
{text}    DROP INDEX IF EXISTS idx_res_attr_value,
{text}    DROP INDEX IF EXISTS idx_span_attr_key,
{text}    DROP INDEX IF EXISTS idx_span_attr_value;

{text}ALTER TABLE {db}.{local:otel_traces}{on_cluster}
{text}    ADD INDEX IF NOT EXISTS idx_trace_id TraceId TYPE text(tokenizer = 'array') FIRST,
{text}    ADD INDEX IF NOT EXISTS idx_res_attr_key mapKeys(ResourceAttributes) TYPE text(tokenizer = 'array') AFTER idx_trace_id,
{text}    ADD INDEX IF NOT EXISTS idx_res_attr_items ResourceAttributeItems TYPE text(tokenizer = 'array') AFTER idx_res_attr_key,
{text}    ADD INDEX IF NOT EXISTS idx_span_attr_key mapKeys(SpanAttributes) TYPE text(tokenizer = 'array') AFTER idx_res_attr_items,
{text}    ADD INDEX IF NOT EXISTS idx_span_attr_items SpanAttributeItems TYPE text(tokenizer = 'array') AFTER idx_span_attr_key;

-- In a cluster the Distributed otel_traces gets the same column kinds (it copied 0001's).
{cluster}ALTER TABLE {db}.otel_traces{on_cluster}
{cluster}    MODIFY COLUMN TenantId LowCardinality(String) MATERIALIZED '',
{cluster}    ADD COLUMN IF NOT EXISTS ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(ResourceAttributes, 'Array(Tuple(String, String))')) AFTER `Links.Attributes`,
{cluster}    ADD COLUMN IF NOT EXISTS SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(SpanAttributes, 'Array(Tuple(String, String))')) AFTER ResourceAttributeItems;

ALTER TABLE {db}.{local:otel_traces}{on_cluster}
    ADD INDEX IF NOT EXISTS idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8;

-- Parts written before this migration get the new indexes too (an asynchronous mutation that
-- only adds index files; no row is rewritten).
{text}ALTER TABLE {db}.{local:otel_traces}{on_cluster}
{text}    MATERIALIZE INDEX idx_trace_id,
{text}    MATERIALIZE INDEX idx_res_attr_key,
{text}    MATERIALIZE INDEX idx_res_attr_items,
{text}    MATERIALIZE INDEX idx_span_attr_key,
{text}    MATERIALIZE INDEX idx_span_attr_items;

ALTER TABLE {db}.{local:otel_traces}{on_cluster} MATERIALIZE INDEX idx_lower_span_name;

-- The trace-id lookup table as upstream lays it out: one row per trace after merges (and under
-- FINAL), second-precision bounds. It is rebuilt from otel_traces (the source of truth), so
-- every statement below can run again after a failure. Trace lookups see no range between the
-- DROP and the backfill; run `tracehouse migrate` when a short gap in by-id reads is fine.
DROP VIEW IF EXISTS {db}.otel_traces_trace_id_ts_mv{on_cluster};

CREATE TABLE IF NOT EXISTS {db}.{local:otel_traces_trace_id_ts_next}{on_cluster}
(
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
)
ENGINE = {engine:AggregatingMergeTree}
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

DROP TABLE IF EXISTS {db}.{local:otel_traces_trace_id_ts}{on_cluster} SYNC;

RENAME TABLE {db}.{local:otel_traces_trace_id_ts_next} TO {db}.{local:otel_traces_trace_id_ts}{on_cluster};

{cluster}DROP TABLE IF EXISTS {db}.otel_traces_trace_id_ts{on_cluster} SYNC;

{cluster}{distributed:otel_traces_trace_id_ts};

-- Bounds are clamped to DateTime's range (1970..2106): a span stored near DateTime64(9)'s end
-- must not wrap around to a bound decades early. The readers (query/sql/*trace_range.sql)
-- widen End by a second (the bound is truncated) and read 2106-02-07 06:28:15 as "no end".
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.otel_traces_trace_id_ts_mv{on_cluster}
TO {db}.{local:otel_traces_trace_id_ts}
AS SELECT
    TraceId,
    min(toDateTime(least(greatest(Timestamp, toDateTime64(0, 9)), toDateTime64(4294967295, 9)))) AS Start,
    max(toDateTime(least(greatest(Timestamp, toDateTime64(0, 9)), toDateTime64(4294967295, 9)))) AS End
FROM {db}.{local:otel_traces}
WHERE TraceId != ''
GROUP BY TraceId;

INSERT INTO {db}.{local:otel_traces_trace_id_ts}
SELECT
    TraceId,
    min(toDateTime(least(greatest(Timestamp, toDateTime64(0, 9)), toDateTime64(4294967295, 9)))) AS Start,
    max(toDateTime(least(greatest(Timestamp, toDateTime64(0, 9)), toDateTime64(4294967295, 9)))) AS End
FROM {db}.{local:otel_traces}
WHERE TraceId != ''
GROUP BY TraceId;

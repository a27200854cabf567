-- Archived traces (POST /api/archive/{traceID}): copies of otel_traces rows that outlive the
-- retention, so no TTL clause. The query service reads it when a trace id is not found in
-- otel_traces (Jaeger's archive storage). ReplacingMergeTree keyed by the span's identity: a
-- trace archived twice (or archived again after more spans arrived) keeps one row per span;
-- SpanKind is in the key because Zipkin's shared spans store client and server under one id.
CREATE TABLE IF NOT EXISTS {db}.{local:otel_traces_archive}{on_cluster}
(
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested
    (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested
    (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    TenantId LowCardinality(String) DEFAULT '' CODEC(ZSTD(1)),
    ArchivedAt DateTime64(3) DEFAULT now64(3) CODEC(Delta, ZSTD(1))
)
ENGINE = {engine:ReplacingMergeTree}
ORDER BY (TenantId, TraceId, SpanId, SpanKind, Timestamp)
SETTINGS index_granularity = 8192;

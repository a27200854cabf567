"""One place for every knob the components share.

Each process (ingest, streams, sink, status) reads the same ``TRACEHOUSE_*`` environment
variables, so the local runner, the tests, docker-compose and Kubernetes configure the whole
pipeline the same way: by environment, never by editing code. A YAML file sectioned per
component (``tracehouse --config FILE`` or ``TRACEHOUSE_CONFIG=FILE``,
deploy/tracehouse.example.yaml) is the alternative; environment variables override it.

Every option is declared once below with :func:`~core.config.setting`: default, YAML
section and key, documentation and accepted values. The environment variable is
``TRACEHOUSE_<FIELD>`` (``TRACEHOUSE_TOPIC_<NAME>`` for topics). Loading is strict
(:mod:`core.config`): unknown variables or keys, non-boolean words, out-of-range numbers
and malformed addresses raise :class:`ConfigError` naming the variable or key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core import config, jaeger_ui_files, topic_overrides
from core.clickhouse import ClickHouseTarget, host_port
from core.config import ConfigError, setting
from core.kafka import SASL_MECHANISMS, SECURITY_PROTOCOLS, KafkaConnection
from core.production_checks import production_problems

# Parts below 32 MiB uncompressed are packed: every insert of the sink (a partition's batch of
# about a second, a few MiB) and the first merges of them; bigger parts are full.
PACKED_PART_BYTES = 32 * 1024 * 1024

# otel_traces merges wait for this many similar parts (ClickHouse: 5), so each span is
# rewritten fewer times on its way to a large part (schemas/merge_width.py, ADR 0018).
SPAN_MERGE_BASE = 16

__all__ = ["ConfigError", "Settings", "Topics"]

# librdkafka compression.type values.
COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")
# sinks.writers.WRITERS keys (tests/unit/test_config_settings.py keeps them equal).
SINK_STREAMS = ("spans", "red", "edges", "accounting")
# streams.raw_encodings.ENCODINGS (tests/unit/test_raw_encodings.py keeps them equal).
RAW_ENCODINGS = ("otlp_proto", "otlp_json", "zipkin_json", "zipkin_proto", "jaeger_proto")
_topic = config.check_topic
# Settings never printed (`tracehouse config` empties them): passwords and keys.
SECRET_FIELDS = (
    "kafka_sasl_password",
    "kafka_oauth_client_secret",
    "kafka_ssl_key_password",
    "clickhouse_password",
)


@dataclass(frozen=True)
class Topics:
    """Kafka topic names (the contracts in docs/architecture.md, "Topic contracts")."""

    raw_spans: str = setting(
        "otlp_spans", "topics", "raw_spans", "OTLP spans from ingest", check=_topic
    )
    sampled_spans: str = setting(
        "spans.sampled",
        "topics",
        "sampled_spans",
        "Sampled spans (Avro) for the sink",
        check=_topic,
    )
    red_metrics: str = setting(
        "metrics.red", "topics", "red_metrics", "RED metric windows", check=_topic
    )
    graph_edges: str = setting(
        "graph.edges", "topics", "graph_edges", "Service-graph edges", check=_topic
    )
    accounting: str = setting(
        "pipeline.accounting", "topics", "accounting", "Per-stage span accounting", check=_topic
    )
    # Dead-letter topics, one per component that writes them: what it could not process,
    # with the reason in a header.
    streams_dlq: str = setting(
        "streams.dlq",
        "topics",
        "streams_dlq",
        "Dead letters of streams: malformed raw messages and spans refused one by one",
        check=_topic,
    )
    sink_dlq: str = setting(
        "sink.dlq",
        "topics",
        "sink_dlq",
        "Dead letters of the sink: records of any sunk topic it could not store",
        check=_topic,
    )

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]


@dataclass(frozen=True)
class Settings:
    # --- kafka ---
    kafka_bootstrap: str = setting(
        "127.0.0.1:9092",
        "kafka",
        "bootstrap",
        "Kafka brokers, host:port[,host:port...]",
        check=config.check_bootstrap,
        list_ok=True,
    )
    topics: Topics = field(default_factory=Topics)
    # Partitions bound the number of streams and sink workers that can share the load, and
    # every request becomes one message per partition it touches: more partitions than
    # workers make smaller messages and raise the per-span cost of every stage (4 instead of
    # 8 on this 2-core machine: 27 instead of 37 us per span end to end, docs/perf.md).
    # Clusters set TRACEHOUSE_PARTITIONS to their maximum worker count (deploy/k8s: 16).
    partitions: int = setting(
        4,
        "kafka",
        "partitions",
        "Partitions of every topic `tracehouse topics`/`init` creates; caps the streams and"
        " sink workers that share the load (set it to the maximum worker count)",
        lo=1,
        hi=100_000,
    )
    clickhouse_url: str = setting(
        "http://127.0.0.1:8123",
        "clickhouse",
        "url",
        "ClickHouse HTTP interface, http://host:port",
        check=config.check_clickhouse_url,
    )
    clickhouse_database: str = setting(
        "tracehouse",
        "clickhouse",
        "database",
        "Database of every table (created by migrate)",
        check=config.check_identifier,
    )
    # Sharded ClickHouse (docs/adr/0013-clickhouse-cluster-mode.md): every shard's native
    # host:port as the servers reach each other, and the HTTP URL `tracehouse migrate` uses to
    # create that shard's tables, in the same order. Empty: one node (clickhouse_url).
    # Components keep talking to clickhouse_url, any one of the shards.
    clickhouse_shards: str = setting(
        "",
        "clickhouse",
        "shards",
        "Comma-separated native host:port of every shard (empty: one node); the tables of the"
        " plain names then spread rows over all of them",
    )
    clickhouse_shard_urls: str = setting(
        "",
        "clickhouse",
        "shard_urls",
        "Comma-separated HTTP URL of every shard, in the order of `shards` (migrate creates"
        " each shard's local tables through it)",
    )
    ingest_host: str = setting(
        "127.0.0.1",
        "ingest",
        "host",
        "Listen address of all ingest receivers",
        check=config.check_bind_host,
    )
    ingest_http_port: int = setting(
        4318, "ingest", "http_port", "OTLP/HTTP (also /health and /metrics)", lo=1, hi=65535
    )
    streams_metrics_port: int = setting(
        6066,
        "streams",
        "metrics_port",
        "Streams metrics port (Prometheus /metrics, also /health)",
        lo=1,
        hi=65535,
    )
    # Bind addresses of the streams web/metrics and sink metrics endpoints: loopback locally,
    # 0.0.0.0 in containers so probes and Prometheus can reach them.
    streams_metrics_host: str = setting(
        "127.0.0.1",
        "streams",
        "metrics_host",
        "Bind address of the streams metrics port (0.0.0.0 in containers)",
        check=config.check_bind_host,
    )
    sink_metrics_host: str = setting(
        "127.0.0.1",
        "sink",
        "metrics_host",
        "Bind address of the sink metrics port (0.0.0.0 in containers)",
        check=config.check_bind_host,
    )
    sink_metrics_port: int = setting(
        9464, "sink", "metrics_port", "Sink Prometheus /metrics port", lo=1, hi=65535
    )
    streams_group: str = setting(
        "tracehouse-streams",
        "streams",
        "group",
        "Kafka consumer group (faust app id)",
        check=config.check_group,
    )
    sink_group: str = setting(
        "tracehouse-sink",
        "sink",
        "group",
        "Kafka consumer group of the sink workers",
        check=config.check_group,
    )
    sink_batch_rows: int = setting(
        50_000, "sink", "batch_rows", "A partition batch is inserted at this many rows", lo=1
    )
    # Each insert is a part with a fixed cost in ClickHouse (~20-40 ms of server CPU for a
    # span batch, docs/perf.md): 2 s halves the parts of 1 s, but adds up to a second to the
    # latency, which tail sampling cannot spare (ADR 0018).
    sink_batch_seconds: float = setting(
        1.0, "sink", "batch_seconds", "... or when its first record is this old", lo=0, lo_open=True
    )
    # Which streams one sink process stores (comma list of spans, red, edges, accounting):
    # all four by default; a deployment may run one process per stream instead.
    sink_streams: str = setting(
        "spans,red,edges,accounting",
        "sink",
        "streams",
        "Streams this sink process stores (comma list or YAML list of spans, red, edges,"
        " accounting); a deployment may run one process per stream",
        check=config.check_names_list(SINK_STREAMS),
        list_ok=True,
    )
    # Partition batches one sink worker stores at the same time (each on its own ClickHouse
    # connection). One insert stream leaves the server half idle while the worker decodes;
    # several partitions' batches in flight at once raise rows/s (docs/perf.md). 1: serial.
    sink_insert_threads: int = setting(
        4,
        "sink",
        "insert_threads",
        "Partition batches one sink worker inserts at the same time, each on its own"
        " ClickHouse connection (1: serial)",
        lo=1,
        hi=256,
    )
    # Parts below this many uncompressed bytes are stored as one file (ClickHouse's packed part
    # storage, from 26.9 here): each sink insert is a part, and creating a file per column
    # stream cost the server more than the rows (schemas/part_storage.py, ADR 0016).
    clickhouse_packed_part_bytes: int = setting(
        PACKED_PART_BYTES,
        "clickhouse",
        "packed_part_bytes",
        "Parts below this uncompressed size are written as one packed file; `tracehouse"
        " migrate` applies a change (0: every part in full storage)",
        lo=0,
        hi=1 << 40,
    )
    clickhouse_span_merge_base: int = setting(
        SPAN_MERGE_BASE,
        "clickhouse",
        "span_merge_base",
        "otel_traces' merge_selector_base: larger merges fewer times, with more active parts;"
        " `tracehouse migrate` applies a change (5: ClickHouse's default)",
        lo=2,
        hi=1000,
    )
    # Retention, one setting per table family (0: keep forever). ClickHouse drops whole daily
    # parts once their newest row is older (ttl_only_drop_parts); `tracehouse migrate` applies
    # a change to existing tables and `tracehouse status` shows the oldest row kept. The
    # archive (otel_traces_archive) is kept forever by design.
    retention_spans_days: int = setting(
        7,
        "clickhouse",
        "retention_spans_days",
        "Days of spans kept in otel_traces (0: forever)",
        lo=0,
        hi=36_500,
    )
    retention_trace_lookup_days: int = setting(
        7,
        "clickhouse",
        "retention_trace_lookup_days",
        "Days kept in otel_traces_trace_id_ts, the trace-id lookup; never shorter than the"
        " spans' (the longer applies), so every stored trace can be opened by id (0: forever)",
        lo=0,
        hi=36_500,
    )
    retention_red_days: int = setting(
        30,
        "clickhouse",
        "retention_red_days",
        "Days of per-window RED rows kept in red_metrics (0: forever)",
        lo=0,
        hi=36_500,
    )
    retention_red_hourly_days: int = setting(
        400,
        "clickhouse",
        "retention_red_hourly_days",
        "Days of the hourly RED rollup kept in red_metrics_1h (0: forever)",
        lo=0,
        hi=36_500,
    )
    retention_graph_days: int = setting(
        30,
        "clickhouse",
        "retention_graph_days",
        "Days of service-graph edges kept in service_graph_edges (0: forever)",
        lo=0,
        hi=36_500,
    )
    retention_counters_days: int = setting(
        30,
        "clickhouse",
        "retention_counters_days",
        "Days of pipeline accounting kept in pipeline_counters (0: forever)",
        lo=0,
        hi=36_500,
    )
    # Kafka group timings: short by default because Tansu needs ~half the session timeout to
    # complete a join (docs/architecture.md, "Measured facts"); production can raise them.
    session_timeout_ms: int = setting(
        6000,
        "kafka",
        "session_timeout_ms",
        "Consumer-group session timeout (short for the local test broker; production: 30000)",
        lo=1,
        hi=3_600_000,
    )
    heartbeat_interval_ms: int = setting(
        1000,
        "kafka",
        "heartbeat_interval_ms",
        "Consumer-group heartbeat interval; must be below session_timeout_ms",
        lo=1,
        hi=3_600_000,
    )
    max_request_bytes: int = setting(
        16 * 1024 * 1024,
        "kafka",
        "max_request_bytes",
        "Largest request ingest accepts and largest produce request streams sends",
        lo=1024,
        hi=1_000_000_000,
    )
    # Query API + web UI (Jaeger's default UI port).
    query_host: str = setting(
        "127.0.0.1",
        "query",
        "host",
        "Listen address of the query API and UI",
        check=config.check_bind_host,
    )
    query_http_port: int = setting(
        16686, "query", "http_port", "Query API and web UI port (Jaeger's)", lo=1, hi=65535
    )
    # Bring your own Jaeger UI (docs/jaeger-ui.md): a build the user made from Jaeger's public
    # source, served at / with the config injection Jaeger's query service does; the own UI
    # then lives at /tracehouse/. The project never ships Jaeger's code.
    query_ui_dir: str = setting(
        "",
        "query",
        "ui_dir",
        "Directory of a Jaeger UI build (holding index.html) to serve at / instead of the own"
        " UI, which stays reachable at /tracehouse/ (docs/jaeger-ui.md); empty: own UI at /",
        check=jaeger_ui_files.ui_dir_problem,
    )
    query_ui_config: str = setting(
        "",
        "query",
        "ui_config",
        "Jaeger UI config file (.json object or .js defining function UIConfig()) injected"
        " into that UI's index.html, like Jaeger's --query.ui-config; needs query.ui_dir",
        check=jaeger_ui_files.ui_config_problem,
    )
    # Jaeger's api_v3 QueryService over gRPC (query/grpc_query.py), on Jaeger's gRPC port.
    query_grpc_port: int = setting(
        16685,
        "query",
        "grpc_port",
        "gRPC port of Jaeger's api_v3 QueryService (Jaeger's); 0 disables",
        lo=0,
        hi=65535,
    )
    # --- remote sampling (query/README.md, "Remote sampling"): Jaeger's strategies endpoints ---
    sampling_http_port: int = setting(
        5778,
        "query",
        "sampling_http_port",
        "Remote-sampling HTTP port (/sampling?service=, Jaeger's); 0 disables",
        lo=0,
        hi=65535,
    )
    sampling_grpc_port: int = setting(
        5779,
        "query",
        "sampling_grpc_port",
        "Remote-sampling gRPC port (jaeger.api_v2.SamplingManager, Jaeger's); 0 disables",
        lo=0,
        hi=65535,
    )
    sampling_strategies_file: str = setting(
        "",
        "query",
        "sampling_strategies_file",
        "Sampling strategies in Jaeger's JSON file format (checked strictly, reloaded when it"
        " changes); empty: every service probabilistic at sampling_default_probability",
    )
    sampling_default_probability: float = setting(
        0.001,
        "query",
        "sampling_default_probability",
        "Probability served where the strategies file says nothing (Jaeger's default)",
        lo=0,
        hi=1,
    )
    sampling_reload_seconds: float = setting(
        10.0,
        "query",
        "sampling_reload_seconds",
        "How often the strategies file's mtime is checked for a reload",
        lo=0,
        lo_open=True,
        hi=86_400,
    )
    # Adaptive sampling (query/adaptive_sampling.py): Jaeger's knobs, Jaeger's defaults.
    sampling_adaptive: bool = setting(
        False,
        "query",
        "sampling_adaptive",
        "Adaptive sampling: per-operation probabilities recalculated from the RED throughput"
        " for services the strategies file does not name",
    )
    sampling_target_samples_per_second: float = setting(
        1.0,
        "query",
        "sampling_target_samples_per_second",
        "Adaptive: sampled traces per second each operation should keep",
        lo=0,
        lo_open=True,
        hi=1e9,
    )
    sampling_delta_tolerance: float = setting(
        0.3,
        "query",
        "sampling_delta_tolerance",
        "Adaptive: relative distance from the target within which a probability is kept",
        lo=0,
        hi=0.99,
    )
    sampling_initial_probability: float = setting(
        0.001,
        "query",
        "sampling_initial_probability",
        "Adaptive: probability of an operation before its first calculation",
        lo=0,
        lo_open=True,
        hi=1,
    )
    sampling_min_probability: float = setting(
        1e-5,
        "query",
        "sampling_min_probability",
        "Adaptive: lowest probability ever served",
        lo=0,
        lo_open=True,
        hi=1,
    )
    sampling_max_probability: float = setting(
        1.0,
        "query",
        "sampling_max_probability",
        "Adaptive: highest probability ever served",
        lo=0,
        lo_open=True,
        hi=1,
    )
    sampling_lower_bound_traces_per_second: float = setting(
        1.0 / 60,
        "query",
        "sampling_lower_bound_traces_per_second",
        "Adaptive: traces per second every operation keeps in each SDK whatever its"
        " probability (defaultLowerBoundTracesPerSecond)",
        lo=0,
        hi=1e6,
    )
    sampling_calculation_interval_seconds: int = setting(
        60,
        "query",
        "sampling_calculation_interval_seconds",
        "Adaptive: how often probabilities are recalculated (whole seconds, >= the RED window)",
        lo=1,
        hi=86_400,
    )
    sampling_aggregation_buckets: int = setting(
        10,
        "query",
        "sampling_aggregation_buckets",
        "Adaptive: calculation intervals of throughput averaged (newer ones weigh more)",
        lo=1,
        hi=1000,
    )
    sampling_calculation_delay_seconds: float = setting(
        30.0,
        "query",
        "sampling_calculation_delay_seconds",
        "Adaptive: an interval is calculated this long after it ends, so its RED windows"
        " are stored (>= RED window + sink batch time)",
        lo=0,
        hi=86_400,
    )
    # --- ingest (see ingest/README.md for every option) ---
    ingest_grpc_port: int = setting(
        4317, "ingest", "grpc_port", "OTLP/gRPC port; 0 disables", lo=0, hi=65535
    )
    ingest_zipkin_port: int = setting(
        9411, "ingest", "zipkin_port", "Zipkin v2 JSON port; 0 disables", lo=0, hi=65535
    )
    # --- Jaeger receivers (ingest/README.md, "Jaeger"); each port 0 disables that listener ---
    ingest_jaeger_enabled: bool = setting(
        True, "ingest", "jaeger_enabled", "Jaeger receivers on (Thrift HTTP, gRPC, agent UDP)"
    )
    ingest_jaeger_http_port: int = setting(
        14268,
        "ingest",
        "jaeger_http_port",
        "Jaeger Thrift over HTTP (POST /api/traces, application/x-thrift); 0 disables",
        lo=0,
        hi=65535,
    )
    ingest_jaeger_grpc_port: int = setting(
        14250,
        "ingest",
        "jaeger_grpc_port",
        "Jaeger gRPC jaeger.api_v2.CollectorService/PostSpans; 0 disables",
        lo=0,
        hi=65535,
    )
    ingest_jaeger_compact_port: int = setting(
        6831,
        "ingest",
        "jaeger_compact_port",
        "Jaeger agent UDP, Thrift compact emitBatch; 0 disables",
        lo=0,
        hi=65535,
    )
    ingest_jaeger_binary_port: int = setting(
        6832,
        "ingest",
        "jaeger_binary_port",
        "Jaeger agent UDP, Thrift binary emitBatch; 0 disables",
        lo=0,
        hi=65535,
    )
    ingest_reuse_port: bool = setting(
        False,
        "ingest",
        "reuse_port",
        "SO_REUSEPORT on every listener, so several ingest processes can share the ports",
    )
    ingest_wait_for_ack: bool = setting(
        True,
        "ingest",
        "wait_for_ack",
        "Answer clients only after Kafka acknowledged (acks=all): an OTLP success means durable",
    )
    ingest_partitioner: str = setting(
        "murmur2",
        "ingest",
        "partitioner",
        "murmur2 (Kafka's default on the raw trace id), collector (the OTel Collector Kafka"
        " exporter's default: sticky_key, sarama_compat FNV-1a on the hex id) or"
        " collector_murmur2 (its sticky_key with the murmur2 hasher, on the hex id)",
        choices=("murmur2", "collector", "collector_murmur2"),
    )
    ingest_max_message_bytes: int = setting(
        1_000_000,
        "ingest",
        "max_message_bytes",
        "Largest Kafka message ingest writes; bigger payloads are split (<= the broker's"
        " message.max.bytes)",
        lo=1024,
        hi=1_000_000_000 - 65_536,
    )
    ingest_compression: str = setting(
        "lz4", "ingest", "compression", "Kafka producer compression", choices=COMPRESSIONS
    )
    # 25 rather than 5: at 30k spans/s keep-all the broker spent 30-45 % less CPU per span
    # (fewer, larger produce requests and record batches, which streams then fetches in fewer
    # reads too) for up to 20 ms more per OTLP response, against a 5 s decision wait
    # (docs/perf.md, issue 18).
    ingest_linger_ms: int = setting(
        25,
        "ingest",
        "linger_ms",
        "Producer linger: requests share produce requests",
        lo=0,
        hi=900_000,
    )
    ingest_kafka_timeout_ms: int = setting(
        30_000,
        "ingest",
        "kafka_timeout_ms",
        "How long a request waits for Kafka before a retryable error",
        lo=1,
        hi=2_147_483_647,
    )
    ingest_auth_tokens: str = setting(
        "", "ingest", "auth_tokens", 'Per-tenant auth "token=tenant,..."; empty: off'
    )
    ingest_auth_file: str = setting(
        "", "ingest", "auth_file", "Per-tenant auth YAML file (ingest/README.md); empty: none"
    )
    ingest_tenant_spans_per_second: float = setting(
        0.0, "ingest", "tenant_spans_per_second", "Default per-tenant limit (0: unlimited)", lo=0
    )
    ingest_tenant_burst: float = setting(
        0.0, "ingest", "tenant_burst", "Default per-tenant bucket size (0: 2 x rate)", lo=0
    )
    ingest_sampling_ratio: float = setting(
        1.0,
        "ingest",
        "sampling_ratio",
        "Consistent head sampling ratio; 1: off",
        lo=0,
        lo_open=True,
        hi=1,
    )
    ingest_retry_after_seconds: int = setting(
        2,
        "ingest",
        "retry_after_seconds",
        "Retry-After sent with 503 / UNAVAILABLE when Kafka cannot take spans",
        lo=0,
        hi=3600,
    )
    # Streams (see streams/README.md). An empty policy file keeps every trace.
    sampling_policy_file: str = setting(
        "",
        "streams",
        "sampling_policy_file",
        "Tail-sampling policy YAML (streams/README.md); empty: keep every trace",
    )
    red_window_seconds: float = setting(
        10.0, "streams", "red_window_seconds", "RED metric window", lo=0, lo_open=True
    )
    red_max_series: int = setting(
        5000, "streams", "red_max_series", "RED series kept per window and partition", lo=1
    )
    graph_wait_seconds: float = setting(
        10.0,
        "streams",
        "graph_wait_seconds",
        "How long a service-graph half waits for its partner",
        lo=0,
    )
    # aiokafka compresses lz4 at level 9 (LZ4 HC) with no way to choose: 2.9-3.9 us per kept
    # span, 11 % of a keep-all worker, against 0.9-1.2 us for zstd level 3 at 1.6 times the
    # ratio (bench/compression.py; docs/perf.md, "Throughput").
    streams_compression: str = setting(
        "zstd",
        "streams",
        "compression",
        "Compression of what streams workers produce (sampled spans, aggregates, state log)",
        choices=COMPRESSIONS,
    )
    # The compiled pass over OTLP protobuf (streams/otlp_scan.py, ADR 0015): an accelerator
    # the protobuf path checks it against; off only to rule it out when chasing a problem.
    streams_otlp_scan: bool = setting(
        True,
        "streams",
        "otlp_scan",
        "Read OTLP protobuf raw messages with the compiled pass (falls back to the protobuf"
        " path per message, and entirely when the module is not built)",
    )
    streams_tick_seconds: float = setting(
        0.5,
        "streams",
        "tick_seconds",
        "Streams timer (window and graph flushes)",
        lo=0,
        lo_open=True,
    )
    # Raw-topic encodings (streams/raw_encodings.py; the names the OTel Collector Kafka
    # exporter uses). A message's "encoding" header overrides this per message.
    raw_encoding: str = setting(
        "otlp_proto",
        "streams",
        "raw_encoding",
        "Encoding of raw-topic messages without an 'encoding' header: otlp_proto (what ingest"
        " writes), otlp_json, zipkin_json, zipkin_proto or jaeger_proto",
        choices=RAW_ENCODINGS,
    )

    # --- production: topic durability, Kafka security, ClickHouse login and TLS ---------------
    # Topic settings apply to every topic `tracehouse init`/`topics` (and the streams worker,
    # for its decisions log) creates; `tracehouse status` warns where the cluster differs.
    # Local default 1/1 (one broker); clusters: 3 and 2 (docker-compose-for-clusters, k8s).
    kafka_replication_factor: int = setting(
        1,
        "kafka",
        "replication_factor",
        "Replicas of every topic created (clusters: 3, so losing one broker loses nothing)",
        lo=1,
        hi=32767,
    )
    kafka_min_insync_replicas: int = setting(
        1,
        "kafka",
        "min_insync_replicas",
        "min.insync.replicas of every topic created: an acks=all write needs this many"
        " replicas (clusters: 2); at most replication_factor",
        lo=1,
        hi=32767,
    )
    kafka_retention_ms: int = setting(
        7 * 24 * 3600 * 1000,
        "kafka",
        "retention_ms",
        "retention.ms of the pipeline topics (-1: forever); must outlast the longest outage"
        " of a consumer (a sink down longer loses spans)",
        lo=-1,
        check=topic_overrides.check_retention_ms,
    )
    kafka_decisions_retention_ms: int = setting(
        24 * 3600 * 1000,
        "kafka",
        "decisions_retention_ms",
        "retention.ms of the streams decisions log (delete policy; it bounds restore reads"
        " and must exceed the longest decision wait)",
        lo=-1,
        check=topic_overrides.check_retention_ms,
    )
    kafka_topic_overrides: str = setting(
        "",
        "kafka",
        "topic_overrides",
        "Per-topic configs over the above: <topic>.<config>=<value>,... with <topic> a topics"
        " key or decisions (e.g. sink_dlq.retention.ms=-1); configs: retention.ms,"
        " retention.bytes, cleanup.policy, min.insync.replicas, max.message.bytes, segment.ms,"
        " segment.bytes",
        check=topic_overrides.checker(f.name for f in fields(Topics)),
        list_ok=True,
    )
    # Kafka security, for every client (confluent-kafka and faust/aiokafka): core/kafka.py.
    kafka_security_protocol: str = setting(
        "PLAINTEXT",
        "kafka",
        "security_protocol",
        "How clients reach the brokers",
        choices=SECURITY_PROTOCOLS,
    )
    kafka_sasl_mechanism: str = setting(
        "PLAIN",
        "kafka",
        "sasl_mechanism",
        "SASL mechanism (with SASL_PLAINTEXT / SASL_SSL)",
        choices=SASL_MECHANISMS,
    )
    kafka_sasl_username: str = setting(
        "", "kafka", "sasl_username", "SASL user (PLAIN, SCRAM-SHA-256/512)"
    )
    kafka_sasl_password: str = setting(
        "", "kafka", "sasl_password", "SASL password (prefer the environment variable)"
    )
    kafka_oauth_token_url: str = setting(
        "", "kafka", "oauth_token_url", "OAUTHBEARER: OAuth 2.0 token endpoint (https://...)"
    )
    kafka_oauth_client_id: str = setting(
        "", "kafka", "oauth_client_id", "OAUTHBEARER: client id of the client-credentials grant"
    )
    kafka_oauth_client_secret: str = setting(
        "", "kafka", "oauth_client_secret", "OAUTHBEARER: client secret"
    )
    kafka_oauth_scope: str = setting("", "kafka", "oauth_scope", "OAUTHBEARER: scope (optional)")
    kafka_ssl_ca_file: str = setting(
        "",
        "kafka",
        "ssl_ca_file",
        "PEM CA bundle the brokers' certificates are checked against (empty: system CAs)",
    )
    kafka_ssl_cert_file: str = setting(
        "", "kafka", "ssl_cert_file", "PEM client certificate (mutual TLS; with ssl_key_file)"
    )
    kafka_ssl_key_file: str = setting("", "kafka", "ssl_key_file", "PEM client private key")
    kafka_ssl_key_password: str = setting(
        "", "kafka", "ssl_key_password", "Password of the client private key, if encrypted"
    )
    kafka_ssl_endpoint_identification: bool = setting(
        True,
        "kafka",
        "ssl_endpoint_identification",
        "Check that the broker certificate names the broker's host (off only for test CAs)",
    )
    clickhouse_user: str = setting(
        "default", "clickhouse", "user", "ClickHouse user of every component"
    )
    clickhouse_password: str = setting(
        "", "clickhouse", "password", "Its password (prefer the environment variable)"
    )
    clickhouse_ca_file: str = setting(
        "",
        "clickhouse",
        "ca_file",
        "PEM CA bundle for an https:// URL (empty: system CAs)",
    )
    clickhouse_verify: bool = setting(
        True,
        "clickhouse",
        "verify",
        "Verify the server certificate of an https:// URL (off only for test servers)",
    )

    @property
    def kafka(self) -> KafkaConnection:
        """The brokers and how to log in: what every Kafka client is created from."""
        return KafkaConnection(
            bootstrap=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            oauth_token_url=self.kafka_oauth_token_url,
            oauth_client_id=self.kafka_oauth_client_id,
            oauth_client_secret=self.kafka_oauth_client_secret,
            oauth_scope=self.kafka_oauth_scope,
            ssl_ca_file=self.kafka_ssl_ca_file,
            ssl_cert_file=self.kafka_ssl_cert_file,
            ssl_key_file=self.kafka_ssl_key_file,
            ssl_key_password=self.kafka_ssl_key_password,
            ssl_endpoint_identification=self.kafka_ssl_endpoint_identification,
        )

    @property
    def clickhouse(self) -> ClickHouseTarget:
        """The ClickHouse endpoint and login: what every ClickHouse client is created from."""
        return ClickHouseTarget(
            self.clickhouse_url,
            self.clickhouse_user,
            self.clickhouse_password,
            self.clickhouse_ca_file,
            self.clickhouse_verify,
        )

    def retention_days(self) -> dict[str, int]:
        """Storage table -> days it keeps (0: forever), from the ``retention_*`` settings.

        Tables not named here (the archive, the sink's intents) have no retention setting. The
        lookup keeps at least as long as the spans: a stored trace must stay findable by id.
        """
        spans, lookup = self.retention_spans_days, self.retention_trace_lookup_days
        return {
            "otel_traces": spans,
            "otel_traces_trace_id_ts": 0 if 0 in (spans, lookup) else max(spans, lookup),
            "red_metrics": self.retention_red_days,
            "red_metrics_1h": self.retention_red_hourly_days,
            "service_graph_edges": self.retention_graph_days,
            "pipeline_counters": self.retention_counters_days,
            # Adaptive sampling's history is derived from RED: it lives as long.
            "sampling_probabilities": self.retention_red_days,
        }

    def without_secrets(self) -> tuple[Settings, list[str]]:
        """These settings with every password emptied, and the keys that were set: what
        `tracehouse config` prints, so a configuration can be shown without its secrets."""
        hidden = [f for f in SECRET_FIELDS if getattr(self, f)]
        return self.with_(**{f: "" for f in hidden}), hidden

    # --- end of production block ----------------------------------------------------------

    @classmethod
    def from_env(
        cls, env: dict[str, str] | None = None, config_file: str | Path | None = None
    ) -> Settings:
        """Defaults, then the YAML file (``config_file`` or ``TRACEHOUSE_CONFIG``), then the
        ``TRACEHOUSE_<FIELD>`` / ``TRACEHOUSE_TOPIC_<NAME>`` variables of ``env`` (default:
        os.environ). Raises :class:`ConfigError` naming every bad variable or key."""
        settings: Settings = config.load(cls, Topics, env, config_file)
        return settings.validate()

    @classmethod
    def from_file(cls, path: str | Path) -> Settings:
        """The YAML file alone (no environment variables)."""
        return cls.from_env({}, config_file=path)

    def validate(self) -> Settings:
        """Every field against its declaration, and the rules between fields; returns self."""
        config.validate(self, Topics)
        problems = []
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            problems.append(
                f"TRACEHOUSE_HEARTBEAT_INTERVAL_MS (kafka.heartbeat_interval_ms) "
                f"{self.heartbeat_interval_ms} must be below TRACEHOUSE_SESSION_TIMEOUT_MS "
                f"(kafka.session_timeout_ms) {self.session_timeout_ms}"
            )
        names = self.topics.all()
        for f in fields(Topics):
            name = getattr(self.topics, f.name)
            if names.count(name) > 1:
                problems.append(
                    f"TRACEHOUSE_TOPIC_{f.name.upper()} (topics.{f.name}): {name!r} is also "
                    "used for another topic"
                )
        if self.query_ui_config and not self.query_ui_dir:
            problems.append(
                "TRACEHOUSE_QUERY_UI_CONFIG (query.ui_config) is set but TRACEHOUSE_QUERY_UI_DIR"
                " (query.ui_dir) is not: the config is injected into a Jaeger UI build"
            )
        ports = {
            "TRACEHOUSE_INGEST_HTTP_PORT (ingest.http_port)": self.ingest_http_port,
            "TRACEHOUSE_INGEST_GRPC_PORT (ingest.grpc_port)": self.ingest_grpc_port,
            "TRACEHOUSE_INGEST_ZIPKIN_PORT (ingest.zipkin_port)": self.ingest_zipkin_port,
        }
        if self.ingest_jaeger_enabled:
            ports |= {
                "TRACEHOUSE_INGEST_JAEGER_HTTP_PORT (ingest.jaeger_http_port)": (
                    self.ingest_jaeger_http_port
                ),
                "TRACEHOUSE_INGEST_JAEGER_GRPC_PORT (ingest.jaeger_grpc_port)": (
                    self.ingest_jaeger_grpc_port
                ),
                "TRACEHOUSE_INGEST_JAEGER_COMPACT_PORT (ingest.jaeger_compact_port)": (
                    self.ingest_jaeger_compact_port
                ),
                "TRACEHOUSE_INGEST_JAEGER_BINARY_PORT (ingest.jaeger_binary_port)": (
                    self.ingest_jaeger_binary_port
                ),
            }
        used = [p for p in ports.values() if p]
        for name, port in ports.items():
            if port and used.count(port) > 1:
                problems.append(f"{name}: port {port} is also used by another ingest listener")
        if not (
            self.sampling_min_probability
            <= self.sampling_initial_probability
            <= self.sampling_max_probability
        ):
            problems.append(
                "TRACEHOUSE_SAMPLING_INITIAL_PROBABILITY (query.sampling_initial_probability)"
                f" {self.sampling_initial_probability} must be within sampling_min_probability"
                f" {self.sampling_min_probability} and sampling_max_probability"
                f" {self.sampling_max_probability}"
            )
        problems += production_problems(self)
        if problems:
            raise ConfigError(problems)
        return self

    def to_env(self) -> dict[str, str]:
        """The inverse of :meth:`from_env`, used to hand settings to child processes."""
        env = {
            f"TRACEHOUSE_{f.name.upper()}": str(getattr(self, f.name))
            for f in fields(self)
            if f.name != "topics"
        }
        for f in fields(Topics):
            env[f"TRACEHOUSE_TOPIC_{f.name.upper()}"] = getattr(self.topics, f.name)
        return env

    def to_yaml(self, docs: bool = True) -> str:
        """These settings as a sectioned config file (what ``tracehouse config`` prints)."""
        return config.render_yaml(self, Topics, docs)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def shard_addresses(self) -> list[str]:
        return [a.strip() for a in self.clickhouse_shards.split(",") if a.strip()]

    def shard_targets(self) -> list[ClickHouseTarget]:
        """One login per shard (same user and TLS as ``clickhouse``), in the order of
        ``shard_addresses``; raises when the two lists do not pair up."""
        urls = [u.strip() for u in self.clickhouse_shard_urls.split(",") if u.strip()]
        if len(urls) != len(self.shard_addresses):
            raise ValueError(
                f"clickhouse shard_urls has {len(urls)} entries, shards"
                f" {len(self.shard_addresses)}: give one URL per shard, in the same order"
            )
        c = self.clickhouse
        return [ClickHouseTarget(u, c.user, c.password, c.ca_file, c.verify) for u in urls]

    @property
    def clickhouse_host_port(self) -> tuple[str, int]:
        return host_port(self.clickhouse_url)

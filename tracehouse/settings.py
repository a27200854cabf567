"""One place for every knob the components share.

Each process (ingest, streams, sink, status) reads the same ``TRACEHOUSE_*`` environment
variables, so the local runner, the tests, docker-compose and Kubernetes configure the whole
pipeline the same way: by environment, never by editing code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class Topics:
    """Kafka topic names (the contracts in DESIGN.md)."""

    raw_spans: str = "otlp_spans"
    sampled_spans: str = "spans.sampled"
    red_metrics: str = "metrics.red"
    graph_edges: str = "graph.edges"
    accounting: str = "pipeline.accounting"
    # Dead-letter topics: records that cannot be processed, with the reason in a header.
    raw_dlq: str = "otlp_spans.dlq"
    dlq: str = "spans.sampled.dlq"

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    topics: Topics = field(default_factory=Topics)
    # Partitions bound the number of streams and sink workers that can share the load, and
    # every request becomes one message per partition it touches: more partitions than
    # workers make smaller messages and raise the per-span cost of every stage (4 instead of
    # 8 on this 2-core machine: 27 instead of 37 us per span end to end, docs/perf.md).
    # Clusters set TRACEHOUSE_PARTITIONS to their maximum worker count (deploy/k8s: 16).
    partitions: int = 4
    clickhouse_url: str = "http://127.0.0.1:8123"
    clickhouse_database: str = "tracehouse"
    ingest_host: str = "127.0.0.1"
    ingest_http_port: int = 4318
    streams_web_port: int = 6066
    # Bind addresses of the streams web/metrics and sink metrics endpoints: loopback locally,
    # 0.0.0.0 in containers so probes and Prometheus can reach them.
    streams_web_host: str = "127.0.0.1"
    sink_metrics_host: str = "127.0.0.1"
    sink_metrics_port: int = 9464
    streams_group: str = "tracehouse-streams"
    sink_group: str = "tracehouse-sink"
    sink_batch_rows: int = 50_000
    sink_batch_seconds: float = 1.0
    # Which streams one sink process stores (comma list of spans, red, edges, accounting):
    # all four by default; a deployment may run one process per stream instead.
    sink_streams: str = "spans,red,edges,accounting"
    # Processes decoding Avro for one sink worker (0: in the worker's thread). Worth it for
    # span_batch v1/v2, whose decoding is CPU-bound; v3 decodes cheaply (docs/perf.md).
    sink_decode_processes: int = 0
    # Partition batches one sink worker stores at the same time (each on its own ClickHouse
    # connection). One insert stream leaves the server half idle while the worker decodes;
    # several partitions' batches in flight at once raise rows/s (docs/perf.md). 1: serial.
    sink_insert_threads: int = 4
    ttl_days: int = 0
    # Kafka group timings: short by default because Tansu needs ~half the session timeout to
    # complete a join (DESIGN.md); production can raise them.
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_request_bytes: int = 16 * 1024 * 1024
    # Query API + web UI (Jaeger's default UI port).
    query_host: str = "127.0.0.1"
    query_http_port: int = 16686
    # --- ingest (see ingest/README.md for every option) ---
    ingest_grpc_port: int = 4317  # OTLP/gRPC; 0 disables
    ingest_zipkin_port: int = 9411  # Zipkin v2 JSON; 0 disables
    # SO_REUSEPORT on every listener, so several ingest processes can share the ports.
    ingest_reuse_port: bool = False
    # Answer clients only after Kafka acknowledged (acks=all): an OTLP success means durable.
    ingest_wait_for_ack: bool = True
    # "murmur2" (Kafka's default; librdkafka murmur2_random on the raw trace id) or
    # "collector" (the OTel Collector Kafka exporter's Sarama-compatible FNV-1a on the hex id).
    ingest_partitioner: str = "murmur2"
    # Largest Kafka message ingest writes; bigger partition payloads are split (<= broker's
    # message.max.bytes, Kafka's default is 1048588).
    ingest_max_message_bytes: int = 1_000_000
    ingest_compression: str = "lz4"
    ingest_linger_ms: int = 5
    ingest_kafka_timeout_ms: int = 30_000
    # Per-tenant auth: "token=tenant,..." and/or a YAML file (ingest/README.md); empty = off.
    ingest_auth_tokens: str = ""
    ingest_auth_file: str = ""
    # Default per-tenant limit in spans/s (0 = unlimited) and bucket size (0 = 2 x rate).
    ingest_tenant_spans_per_second: float = 0.0
    ingest_tenant_burst: float = 0.0
    # Consistent head sampling ratio in (0, 1]; 1 = off.
    ingest_sampling_ratio: float = 1.0
    # Retry-After seconds sent with 503 / UNAVAILABLE when Kafka cannot take spans.
    ingest_retry_after_seconds: int = 2
    # Streams (see streams/README.md). An empty policy file keeps every trace.
    sampling_policy_file: str = ""
    red_window_seconds: float = 10.0
    red_max_series: int = 5000
    graph_wait_seconds: float = 10.0
    streams_tick_seconds: float = 0.5

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from ``TRACEHOUSE_<FIELD>`` and ``TRACEHOUSE_TOPIC_<NAME>`` variables."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "topics":
                continue
            raw = env.get(f"TRACEHOUSE_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _coerce(raw, type(getattr(cls(), f.name)))
        topic_values = {
            f.name: env[f"TRACEHOUSE_TOPIC_{f.name.upper()}"]
            for f in fields(Topics)
            if f"TRACEHOUSE_TOPIC_{f.name.upper()}" in env
        }
        return cls(topics=Topics(**topic_values), **values)

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

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def clickhouse_host_port(self) -> tuple[str, int]:
        rest = self.clickhouse_url.split("://", 1)[-1].rstrip("/")
        host, _, port = rest.partition(":")
        return host, int(port or 8123)


def _coerce(raw: str, kind: type) -> Any:
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    return raw

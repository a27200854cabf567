"""Strict TRACEHOUSE_* parsing: every variable names a setting, every value is typed and in range.

The issue this guards: ``TRACEHOUSE_INGEST_WAIT_FOR_ACK=ture`` silently turned durable acks off,
``TRACEHOUSE_SINK_BATCH_ROW`` (typo) was ignored, ``PARTITIONS=0`` and port 99999 were accepted.
"""

from __future__ import annotations

import dataclasses

import pytest

from core.config import NOT_SETTINGS, ConfigError, bindings
from core.settings import SINK_STREAMS, Settings, Topics
from sinks.writers import WRITERS
from tracehouse.cli import main


def _error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    return str(info.value)


# (variable, bad value, words the message must contain)
REJECTED = [
    ("TRACEHOUSE_INGEST_WAIT_FOR_ACK", "ture", "cannot coerce 'ture' to bool"),
    ("TRACEHOUSE_INGEST_REUSE_PORT", "enabled", "cannot coerce 'enabled' to bool"),
    ("TRACEHOUSE_INGEST_REUSE_PORT", "", "cannot coerce '' to bool"),
    ("TRACEHOUSE_PARTITIONS", "0", "0 is out of range (must be 1..100000)"),
    ("TRACEHOUSE_PARTITIONS", "-3", "out of range"),
    ("TRACEHOUSE_PARTITIONS", "8.0", "cannot coerce '8.0' to int"),
    ("TRACEHOUSE_PARTITIONS", "eight", "cannot coerce 'eight' to int"),
    ("TRACEHOUSE_PARTITIONS", "", "cannot coerce '' to int"),
    ("TRACEHOUSE_INGEST_HTTP_PORT", "99999", "99999 is out of range (must be 1..65535)"),
    ("TRACEHOUSE_INGEST_HTTP_PORT", "0", "0 is out of range (must be 1..65535)"),
    ("TRACEHOUSE_QUERY_HTTP_PORT", "65536", "out of range"),
    ("TRACEHOUSE_STREAMS_METRICS_PORT", "0", "out of range"),
    ("TRACEHOUSE_SINK_METRICS_PORT", "-1", "out of range"),
    ("TRACEHOUSE_INGEST_GRPC_PORT", "70000", "out of range (must be 0..65535)"),
    ("TRACEHOUSE_SINK_BATCH_ROWS", "0", "out of range"),
    ("TRACEHOUSE_SINK_BATCH_SECONDS", "0", "must be > 0"),
    ("TRACEHOUSE_SINK_BATCH_SECONDS", "nan", "finite"),
    ("TRACEHOUSE_SINK_BATCH_SECONDS", "inf", "finite"),
    ("TRACEHOUSE_SINK_INSERT_THREADS", "0", "out of range"),
    ("TRACEHOUSE_RETENTION_SPANS_DAYS", "-1", "out of range"),
    ("TRACEHOUSE_SESSION_TIMEOUT_MS", "0", "out of range"),
    ("TRACEHOUSE_INGEST_KAFKA_TIMEOUT_MS", "0", "out of range"),
    ("TRACEHOUSE_INGEST_SAMPLING_RATIO", "0", "must be > 0 and <= 1"),
    ("TRACEHOUSE_INGEST_SAMPLING_RATIO", "1.5", "must be > 0 and <= 1"),
    ("TRACEHOUSE_INGEST_TENANT_SPANS_PER_SECOND", "-5", "out of range"),
    ("TRACEHOUSE_RED_WINDOW_SECONDS", "0", "must be > 0"),
    ("TRACEHOUSE_STREAMS_TICK_SECONDS", "-0.5", "must be > 0"),
    ("TRACEHOUSE_MAX_REQUEST_BYTES", "10", "out of range"),
    ("TRACEHOUSE_INGEST_PARTITIONER", "fnv", "is not one of murmur2, collector"),
    ("TRACEHOUSE_INGEST_COMPRESSION", "brotli", "is not one of none, gzip, snappy, lz4, zstd"),
    ("TRACEHOUSE_SINK_STREAMS", "spans,metrics", "unknown metrics"),
    ("TRACEHOUSE_SINK_STREAMS", "", "comma list"),
    ("TRACEHOUSE_SINK_STREAMS", "spans,spans", "twice"),
    ("TRACEHOUSE_KAFKA_BOOTSTRAP", "kafka", "not host:port"),
    ("TRACEHOUSE_KAFKA_BOOTSTRAP", "", "host:port"),
    ("TRACEHOUSE_KAFKA_BOOTSTRAP", "a:9092,", "host:port"),
    ("TRACEHOUSE_KAFKA_BOOTSTRAP", "a:9092,b:99999", "port 99999 is not in 1..65535"),
    ("TRACEHOUSE_KAFKA_BOOTSTRAP", "kafka://a:9092", "not host:port"),
    ("TRACEHOUSE_CLICKHOUSE_URL", "clickhouse:8123", "must be an http:// or https:// URL"),
    ("TRACEHOUSE_CLICKHOUSE_URL", "ftp://ch:8123", "must be an http:// or https:// URL"),
    ("TRACEHOUSE_CLICKHOUSE_URL", "http://ch", "has no port"),
    ("TRACEHOUSE_CLICKHOUSE_URL", "http://:8123", "has no host"),
    ("TRACEHOUSE_CLICKHOUSE_URL", "http://ch:99999", "not a valid URL"),
    ("TRACEHOUSE_CLICKHOUSE_URL", "http://ch:8123/db", "no path or query"),
    ("TRACEHOUSE_CLICKHOUSE_URL", "http://u:p@ch:8123", "TRACEHOUSE_CLICKHOUSE_PASSWORD"),
    ("TRACEHOUSE_CLICKHOUSE_URL", "https://ch", "has no port"),
    ("TRACEHOUSE_KAFKA_REPLICATION_FACTOR", "0", "must be 1..32767"),
    ("TRACEHOUSE_KAFKA_RETENTION_MS", "0", "would delete every record"),
    ("TRACEHOUSE_KAFKA_RETENTION_MS", "-2", "-1"),
    ("TRACEHOUSE_KAFKA_TOPIC_OVERRIDES", "raw_spans.retention.ms", "<topic>.<config>=<value>"),
    ("TRACEHOUSE_KAFKA_TOPIC_OVERRIDES", "spans.retention.ms=1", "unknown topic 'spans'"),
    ("TRACEHOUSE_KAFKA_TOPIC_OVERRIDES", "raw_spans.flush.ms=1", "is not one of retention.ms"),
    ("TRACEHOUSE_KAFKA_TOPIC_OVERRIDES", "raw_spans.retention.ms=x", "not an integer"),
    ("TRACEHOUSE_KAFKA_TOPIC_OVERRIDES", "raw_spans.cleanup.policy=keep", "delete, compact"),
    ("TRACEHOUSE_KAFKA_TOPIC_OVERRIDES", "decisions.cleanup.policy=compact", "not be compacted"),
    (
        "TRACEHOUSE_KAFKA_TOPIC_OVERRIDES",
        "sink_dlq.retention.ms=1,sink_dlq.retention.ms=2",
        "given twice",
    ),
    ("TRACEHOUSE_KAFKA_SECURITY_PROTOCOL", "TLS", "is not one of PLAINTEXT"),
    ("TRACEHOUSE_KAFKA_SASL_MECHANISM", "GSSAPI", "is not one of PLAIN"),
    ("TRACEHOUSE_CLICKHOUSE_DATABASE", "my-db", "not a ClickHouse database name"),
    ("TRACEHOUSE_CLICKHOUSE_DATABASE", "", "not a ClickHouse database name"),
    ("TRACEHOUSE_INGEST_HOST", "", "not a host name"),
    ("TRACEHOUSE_INGEST_HOST", "0.0.0.0 ", "not a host name"),
    ("TRACEHOUSE_SINK_GROUP", "", "not a consumer group name"),
    ("TRACEHOUSE_TOPIC_RAW_SPANS", "bad topic", "not a Kafka topic name"),
    ("TRACEHOUSE_TOPIC_SINK_DLQ", "..", "not a Kafka topic name"),
]


@pytest.mark.parametrize(("var", "raw", "expected"), REJECTED)
def test_bad_values_are_rejected_naming_the_variable(var: str, raw: str, expected: str) -> None:
    message = _error({var: raw})
    assert message.startswith(f"{var}: "), message
    assert expected in message, message


# (variable, text, parsed value of the field)
ACCEPTED = [
    ("TRACEHOUSE_INGEST_WAIT_FOR_ACK", "false", False),
    ("TRACEHOUSE_INGEST_WAIT_FOR_ACK", "OFF", False),
    ("TRACEHOUSE_INGEST_WAIT_FOR_ACK", "No", False),
    ("TRACEHOUSE_INGEST_WAIT_FOR_ACK", "0", False),
    ("TRACEHOUSE_INGEST_REUSE_PORT", "True", True),
    ("TRACEHOUSE_INGEST_REUSE_PORT", " yes ", True),
    ("TRACEHOUSE_INGEST_REUSE_PORT", "on", True),
    ("TRACEHOUSE_INGEST_REUSE_PORT", "1", True),
    ("TRACEHOUSE_PARTITIONS", "16", 16),
    ("TRACEHOUSE_PARTITIONS", " 8 ", 8),
    ("TRACEHOUSE_INGEST_HTTP_PORT", "65535", 65535),
    ("TRACEHOUSE_INGEST_GRPC_PORT", "0", 0),  # documented: 0 disables
    ("TRACEHOUSE_INGEST_ZIPKIN_PORT", "0", 0),
    ("TRACEHOUSE_SINK_BATCH_SECONDS", "0.25", 0.25),
    ("TRACEHOUSE_SINK_BATCH_SECONDS", "2", 2.0),
    ("TRACEHOUSE_INGEST_SAMPLING_RATIO", "1", 1.0),
    ("TRACEHOUSE_INGEST_SAMPLING_RATIO", "1e-3", 0.001),
    ("TRACEHOUSE_RETENTION_SPANS_DAYS", "0", 0),
    ("TRACEHOUSE_RETENTION_COUNTERS_DAYS", "3650", 3650),
    ("TRACEHOUSE_SINK_STREAMS", "spans, red", "spans, red"),
    ("TRACEHOUSE_KAFKA_BOOTSTRAP", "kafka-0.kafka:9092,kafka-1.kafka:9092", None),
    ("TRACEHOUSE_KAFKA_BOOTSTRAP", "[::1]:9092", None),
    ("TRACEHOUSE_CLICKHOUSE_URL", "http://clickhouse.clickhouse.svc:8123", None),
    ("TRACEHOUSE_CLICKHOUSE_URL", "http://127.0.0.1:8123/", None),
    ("TRACEHOUSE_INGEST_HOST", "::", None),
    ("TRACEHOUSE_INGEST_AUTH_TOKENS", "", ""),
    ("TRACEHOUSE_TOPIC_RAW_SPANS", "otlp_spans_x.1-2", None),
]


@pytest.mark.parametrize(("var", "raw", "value"), ACCEPTED)
def test_good_values_are_parsed(var: str, raw: str, value: object) -> None:
    s = Settings.from_env({var: raw})
    name = var.removeprefix("TRACEHOUSE_").lower()
    if name.startswith("topic_"):
        got = getattr(s.topics, name.removeprefix("topic_"))
    else:
        got = getattr(s, name)
    assert got == (raw if value is None else value)
    assert type(got) is type(getattr(Settings(), name, "")) or name.startswith("topic_")


def test_unknown_variable_names_the_closest_setting() -> None:
    assert _error({"TRACEHOUSE_SINK_BATCH_ROW": "10"}) == (
        "TRACEHOUSE_SINK_BATCH_ROW: unknown setting; did you mean TRACEHOUSE_SINK_BATCH_ROWS?"
        " (also close: TRACEHOUSE_SINK_BATCH_SECONDS)"
    )
    assert "did you mean TRACEHOUSE_TOPIC_RAW_SPANS?" in _error({"TRACEHOUSE_TOPIC_RAW_SPAN": "x"})
    assert _error({"TRACEHOUSE_XYZZY": "1"}) == ("TRACEHOUSE_XYZZY: unknown setting")


def test_every_problem_is_reported_at_once() -> None:
    problems = _error(
        {
            "TRACEHOUSE_INGEST_WAIT_FOR_ACK": "ture",
            "TRACEHOUSE_SINK_BATCH_ROW": "10",
            "TRACEHOUSE_PARTITIONS": "0",
            "TRACEHOUSE_INGEST_HTTP_PORT": "99999",
        }
    ).splitlines()
    assert [p.split(":")[0] for p in problems] == [
        "TRACEHOUSE_INGEST_HTTP_PORT",
        "TRACEHOUSE_INGEST_WAIT_FOR_ACK",
        "TRACEHOUSE_PARTITIONS",
        "TRACEHOUSE_SINK_BATCH_ROW",
    ]


def test_other_variables_and_test_hooks_are_not_settings() -> None:
    env = {
        "PATH": "/bin",
        "TRACEHOUSEX": "1",  # no TRACEHOUSE_ prefix
        "TRACEHOUSE_FUZZ_EXAMPLES": "5000",
        "TRACEHOUSE_BIG_TRACE_REPORT": "/tmp/report",
    }
    assert set(env) - {"PATH", "TRACEHOUSEX"} <= set(NOT_SETTINGS)
    assert Settings.from_env(env) == Settings()


def test_rules_between_settings() -> None:
    assert "must be below TRACEHOUSE_SESSION_TIMEOUT_MS" in _error(
        {"TRACEHOUSE_SESSION_TIMEOUT_MS": "3000", "TRACEHOUSE_HEARTBEAT_INTERVAL_MS": "3000"}
    )
    assert "TRACEHOUSE_TOPIC_SINK_DLQ (topics.sink_dlq): 'otlp_spans' is also used" in _error(
        {"TRACEHOUSE_TOPIC_SINK_DLQ": "otlp_spans"}
    )
    assert "port 4318 is also used by another ingest listener" in _error(
        {"TRACEHOUSE_INGEST_GRPC_PORT": "4318"}
    )
    # 0 disables a listener, so two disabled ones do not collide.
    s = Settings.from_env(
        {"TRACEHOUSE_INGEST_GRPC_PORT": "0", "TRACEHOUSE_INGEST_ZIPKIN_PORT": "0"}
    )
    assert (s.ingest_grpc_port, s.ingest_zipkin_port) == (0, 0)


def test_every_field_is_declared_once_with_a_section_doc_and_env_var() -> None:
    binds = bindings(Settings, Topics)
    declared = {b.field for b in binds if not b.topic}
    assert declared == {f.name for f in dataclasses.fields(Settings)} - {"topics"}
    assert {b.field for b in binds if b.topic} == {f.name for f in dataclasses.fields(Topics)}
    assert len({b.path for b in binds}) == len(binds)
    assert all(b.option.doc for b in binds)
    for b in binds:
        assert b.env == ("TRACEHOUSE_TOPIC_" if b.topic else "TRACEHOUSE_") + b.field.upper()


def test_defaults_are_valid_and_the_env_round_trip_keeps_every_value() -> None:
    Settings().validate()
    s = Settings(
        kafka_bootstrap="a:1,b:2",
        partitions=3,
        ingest_wait_for_ack=False,
        ingest_reuse_port=True,
        ingest_sampling_ratio=0.125,
        ingest_grpc_port=0,
        sink_batch_seconds=0.25,
        sink_streams="spans,red",
        retention_red_days=7,
        topics=Topics(raw_spans="raw_x"),
    )
    assert Settings.from_env(s.to_env()) == s


def test_validate_checks_settings_built_in_code() -> None:
    with pytest.raises(ConfigError, match=r"TRACEHOUSE_PARTITIONS \(kafka.partitions\): 0 is"):
        Settings(partitions=0).validate()
    with pytest.raises(ConfigError, match="expected bool, got 'ture'"):
        Settings(ingest_wait_for_ack="ture").validate()  # type: ignore[arg-type]


def test_sink_streams_choices_match_the_sink_writers() -> None:
    assert set(SINK_STREAMS) == set(WRITERS)


def test_cli_reports_bad_configuration_with_status_2_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRACEHOUSE_INGEST_WAIT_FOR_ACK", "ture")
    monkeypatch.setenv("TRACEHOUSE_SINK_BATCH_ROW", "10")
    with pytest.raises(SystemExit) as info:
        main(["status"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("tracehouse: invalid configuration:\n")
    assert "  TRACEHOUSE_INGEST_WAIT_FOR_ACK: cannot coerce 'ture' to bool" in err
    assert "  TRACEHOUSE_SINK_BATCH_ROW: unknown setting; did you mean " in err
    assert "Traceback" not in err

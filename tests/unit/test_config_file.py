"""The YAML config file: sections per component mapped onto the flat settings, env overrides it,
and anything it does not understand is an error naming the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.config import SECTIONS, ConfigError, bindings
from core.settings import Settings, Topics
from tracehouse.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "tracehouse.example.yaml"

FULL = """\
kafka:
  bootstrap: [kafka-0:9092, kafka-1:9092]
  partitions: 16
  session_timeout_ms: 30000
  heartbeat_interval_ms: 3000
clickhouse:
  url: http://clickhouse:8123
  database: traces
  retention_spans_days: 14
  retention_trace_lookup_days: 14
ingest:
  host: 0.0.0.0
  http_port: 14318
  grpc_port: 0
  wait_for_ack: false
  reuse_port: yes
  sampling_ratio: 1
  partitioner: collector
streams:
  group: s1
  tick_seconds: 0.25
sink:
  batch_rows: 10000
  batch_seconds: 2
  streams: [spans, red]
query:
  http_port: 16687
topics:
  raw_spans: raw.x
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tracehouse.yaml"
    path.write_text(text)
    return path


def _file_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env or {}, config_file=path)
    return str(info.value).replace(f"{path}: ", "")


def test_sections_map_onto_the_flat_settings(tmp_path: Path) -> None:
    s = Settings.from_file(_write(tmp_path, FULL))
    assert s == Settings().with_(
        kafka_bootstrap="kafka-0:9092,kafka-1:9092",
        partitions=16,
        session_timeout_ms=30000,
        heartbeat_interval_ms=3000,
        clickhouse_url="http://clickhouse:8123",
        clickhouse_database="traces",
        retention_spans_days=14,
        retention_trace_lookup_days=14,
        ingest_host="0.0.0.0",
        ingest_http_port=14318,
        ingest_grpc_port=0,
        ingest_wait_for_ack=False,
        ingest_reuse_port=True,
        ingest_sampling_ratio=1.0,
        ingest_partitioner="collector",
        streams_group="s1",
        streams_tick_seconds=0.25,
        sink_batch_rows=10000,
        sink_batch_seconds=2.0,
        sink_streams="spans,red",
        query_http_port=16687,
        topics=Topics(raw_spans="raw.x"),
    )
    assert isinstance(s.sink_batch_seconds, float)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, FULL)
    env = {"TRACEHOUSE_PARTITIONS": "2", "TRACEHOUSE_TOPIC_RAW_SPANS": "raw.y"}
    s = Settings.from_env(env, config_file=path)
    assert (s.partitions, s.topics.raw_spans, s.sink_batch_rows) == (2, "raw.y", 10000)
    # TRACEHOUSE_CONFIG names the file when no path is given.
    via_env = Settings.from_env({**env, "TRACEHOUSE_CONFIG": str(path)})
    assert via_env == s


def test_a_bad_env_value_is_reported_even_when_the_file_sets_it(tmp_path: Path) -> None:
    message = _file_error(tmp_path, FULL, {"TRACEHOUSE_INGEST_WAIT_FOR_ACK": "ture"})
    assert message.startswith("TRACEHOUSE_INGEST_WAIT_FOR_ACK: cannot coerce 'ture' to bool")


# (file text, the message, after the file name)
REJECTED = [
    ("sink:\n  batch_row: 10\n", "sink.batch_row: unknown option; did you mean batch_rows?"),
    ("sinks:\n  batch_rows: 10\n", "sinks: unknown section; did you mean sink?"),
    ("kafka:\n  partitions: 0\n", "kafka.partitions: 0 is out of range (must be 1..100000)"),
    ("kafka:\n  partitions: '8'\n", "kafka.partitions: expected an integer, got '8'"),
    ("kafka:\n  partitions: 8.5\n", "kafka.partitions: expected an integer, got 8.5"),
    ("kafka:\n  partitions: true\n", "kafka.partitions: expected an integer, got True"),
    ("ingest:\n  http_port: 99999\n", "ingest.http_port: 99999 is out of range (must be 1..65535)"),
    ("ingest:\n  wait_for_ack: ture\n", "ingest.wait_for_ack: expected true or false, got 'ture'"),
    ("ingest:\n  wait_for_ack: 1\n", "ingest.wait_for_ack: expected true or false, got 1"),
    ("ingest:\n  sampling_ratio: .nan\n", "ingest.sampling_ratio: expected a finite number"),
    ("ingest:\n  sampling_ratio: 0\n", "ingest.sampling_ratio: 0 is out of range (must be > 0"),
    ("sink:\n  batch_seconds: '1'\n", "sink.batch_seconds: expected a number, got '1'"),
    ("clickhouse:\n  database: 123\n", "clickhouse.database: expected a string, got 123"),
    ("clickhouse:\n  url: clickhouse:8123\n", "clickhouse.url: 'clickhouse:8123' must be an"),
    ("kafka:\n  bootstrap: [a:1, 2]\n", "kafka.bootstrap: expected a string or a list of strings"),
    ("kafka:\n  bootstrap: kafka\n", "kafka.bootstrap: 'kafka' is not host:port"),
    ("sink:\n  streams: [spans, logs]\n", "sink.streams: unknown logs; choose from"),
    (
        "topics:\n  sink_dlq: otlp_spans\n",
        "TRACEHOUSE_TOPIC_SINK_DLQ (topics.sink_dlq): 'otlp_spans' is also",
    ),
    ("kafka: 8\n", "kafka: expected a mapping of options, got 8"),
    ("- kafka\n", "expected sections (kafka:, clickhouse:, ...) at the top"),
    ("kafka:\n  partitions: 2\n  partitions: 3\n", "duplicate key 'partitions'"),
    ("kafka: [\n", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "expected"), REJECTED)
def test_bad_files_are_rejected_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    message = _file_error(tmp_path, text)
    assert expected in message, message


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    text = "sink:\n  batch_row: 10\ningest:\n  wait_for_ack: ture\n  http_port: 99999\n"
    problems = _file_error(tmp_path, text).splitlines()
    assert [p.split(":")[0] for p in problems] == [
        "sink.batch_row",
        "ingest.wait_for_ack",
        "ingest.http_port",
    ]


def test_missing_file_empty_file_and_empty_sections(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*missing.yaml: cannot read it"):
        Settings.from_file(tmp_path / "missing.yaml")
    assert Settings.from_file(_write(tmp_path, "")) == Settings()
    assert Settings.from_file(_write(tmp_path, "# nothing\nkafka:\nsink: {}\n")) == Settings()


def test_example_file_lists_every_option_with_its_default(tmp_path: Path) -> None:
    """deploy/tracehouse.example.yaml is `tracehouse config --defaults`: it cannot drift."""
    assert Settings.from_file(EXAMPLE) == Settings()
    listed = yaml.safe_load(EXAMPLE.read_text())
    assert list(listed) == list(SECTIONS)
    assert {(s, k) for s, body in listed.items() for k in body} == {
        (b.option.section, b.option.key) for b in bindings(Settings, Topics)
    }
    assert EXAMPLE.read_text() == Settings().to_yaml(), (
        "regenerate: tracehouse config --defaults > deploy/tracehouse.example.yaml"
    )
    for line in EXAMPLE.read_text().splitlines():
        assert len(line) <= 100, line


def test_rendered_config_loads_back_to_the_same_settings(tmp_path: Path) -> None:
    s = Settings.from_file(_write(tmp_path, FULL))
    for docs in (True, False):
        assert Settings.from_file(_write(tmp_path, s.to_yaml(docs=docs))) == s


def test_cli_config_flag_and_config_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRACEHOUSE_CONFIG", "")  # restored after the test: main() sets it
    path = _write(tmp_path, FULL)
    monkeypatch.setenv("TRACEHOUSE_PARTITIONS", "2")
    with pytest.raises(SystemExit) as info:
        main(["--config", str(path), "config", "--no-docs"])
    assert info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["kafka"]["partitions"] == 2  # env over file
    assert printed["sink"]["batch_rows"] == 10000

    bad = _write(tmp_path, "sink:\n  batch_row: 10\n")
    with pytest.raises(SystemExit) as info:
        main(["--config", str(bad), "status"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"{bad}: sink.batch_row: unknown option; did you mean batch_rows?" in err
    assert "Traceback" not in err


def test_the_operations_guide_example_is_a_valid_config(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    s = Settings.from_file(_write(tmp_path, block))
    assert (s.partitions, s.retention_spans_days, s.kafka_bootstrap.count(",")) == (16, 14, 1)

"""`tracehouse up` as a user runs it: real processes, a demo load, status, clean Ctrl-C."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.settings import Settings
from tests.integration.cli_runner import start_up

ROOT = Path(__file__).resolve().parents[2]


def test_up_runs_demo_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracehouse.cli",
            "up",
            "--auto-ports",
            "--demo",
            # The synthetic batches: a known span count (the demo shop has its own test).
            "--demo-synthetic",
            "--demo-requests",
            "5",
            "--demo-traces",
            "40",
            "--run-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("  sink_batches"):
                break  # the status table has been printed in full
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert "demo: sent 1000 spans" in output
    assert re.search(r"demo: 1000 spans in ClickHouse after [\d.]+ s", output), output
    assert re.search(r"otel_traces\s+1000\b", output), output
    # Lag rows for both groups, per partition, with the caveat about the test broker.
    assert "approximate on the local Tansu broker" in output
    partitions = Settings.from_env().partitions  # what `up`, run with this env, creates
    assert len(re.findall(r"tracehouse-sink\s+spans\.sampled\s+\d+", output)) == partitions
    for name in ("query", "sink", "streams", "ingest", "clickhouse", "broker"):
        assert re.search(rf"{name}\s+stopped \(exit 0\)", output), output
    logs = {p.name for p in (tmp_path / "logs").iterdir()}
    assert logs == {
        f"{n}.log" for n in ("broker", "clickhouse", "ingest", "streams", "sink", "query")
    }


def test_up_reports_a_taken_port_by_name(tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**os.environ, "TRACEHOUSE_INGEST_HTTP_PORT": str(port)}
        result = subprocess.run(
            [sys.executable, "-m", "tracehouse.cli", "up", "--run-dir", str(tmp_path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"ingest OTLP/HTTP: port 127.0.0.1:{port} is already in use" in result.stderr


def test_docker_compose_file_is_valid() -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install docker-compose to validate docker-compose.yml")
        pytest.skip("docker-compose not installed (CI installs it)")
    result = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # The three-broker variant, merged as an operator runs it: each pipeline service keeps the
    # base settings and gets the cluster's bootstrap list and replication on top.
    merged = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "-f",
         str(ROOT / "docker-compose.cluster.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    services = yaml.safe_load(merged.stdout)["services"]
    for name in ("init", "ingest", "streams", "sink", "query"):
        env = Settings.from_env({k: str(v) for k, v in services[name]["environment"].items()})
        assert env.kafka_bootstrap == "kafka:9092,kafka-2:9092,kafka-3:9092", name
        assert (env.kafka_replication_factor, env.kafka_min_insync_replicas) == (3, 2), name
        assert env.ingest_host == "0.0.0.0", name  # the base file's settings are kept


def test_scale_sink_workers_in_a_running_stack(tmp_path: Path) -> None:
    from core.clickhouse import connect
    from tests.integration.helpers import wait_until
    from tracehouse.demo_traces import send_demo_load

    proc = start_up(tmp_path)
    assert proc.stdout is not None
    seen: list[str] = []

    def read_until(marker: str) -> str:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if marker in line:
                return line
        raise AssertionError("".join(seen))

    def scale(count: int) -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tracehouse.cli",
                "scale",
                "sink",
                str(count),
                "--run-dir",
                str(tmp_path),
            ],
            cwd=ROOT,
            check=True,
            timeout=30,
        )
        read_until(f"scaled sink to {count}")

    try:
        ch_url = read_until("clickhouse  up").split()[2]
        read_until("UI and Jaeger API")
        ingest = read_until("send OTLP/HTTP to").split()[-1]
        scale(3)
        assert {"sink-2.log", "sink-3.log"} <= {p.name for p in (tmp_path / "logs").iterdir()}
        sent = send_demo_load(ingest, requests=6, traces_per_request=50)
        client = connect(ch_url, "tracehouse")
        count = wait_until(
            lambda: int(client.command("SELECT count() FROM otel_traces")),
            lambda n: n >= sent,
            timeout=90,
        )
        assert count == sent  # three workers share the partitions: nothing lost or doubled
        scale(1)
        out = "".join(seen)
        assert re.search(r"sink-3\s+stopped \(exit 0\)", out) and re.search(
            r"sink-2\s+stopped \(exit 0\)", out
        ), out
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(seen) + rest

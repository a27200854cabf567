"""`tracehouse up` supervises: a SIGKILLed worker comes back alone, with backoff, while the
broker (memory storage) and ClickHouse keep running, and spans sent afterwards are stored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from core.clickhouse import connect
from tests.integration.cli_runner import start_up
from tests.integration.helpers import wait_until
from tracehouse.demo_traces import send_demo_load

ROOT = Path(__file__).resolve().parents[2]


class Output:
    """`up`'s stdout, drained by a thread so the test can wait for lines with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line)

    def wait_for(self, marker: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if marker in line:
                    return line
            if self._proc.poll() is not None and not self._thread.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"no {marker!r} in output:\n{self.text}")

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def join(self) -> None:
        self._thread.join(10)


def _components(run_dir: Path) -> dict[str, dict[str, Any]]:
    state = json.loads((run_dir / "supervisor.json").read_text())
    return {c["name"]: c for c in state["components"]}


def test_killed_sink_is_restarted_alone_and_keeps_storing(tmp_path: Path) -> None:
    proc = start_up(tmp_path)
    out = Output(proc)
    try:
        bootstrap = out.wait_for("broker      up").split()[2].removeprefix("kafka://")
        ch_url = out.wait_for("clickhouse  up").split()[2]
        ingest = out.wait_for("send OTLP/HTTP to").split()[-1]
        out.wait_for("supervising:")
        client = connect(ch_url, "tracehouse")

        def stored() -> int:
            return int(client.command("SELECT count() FROM otel_traces"))

        before = send_demo_load(ingest, requests=3, traces_per_request=20)
        wait_until(stored, lambda n: n >= before, timeout=90)

        first = wait_until(lambda: _components(tmp_path), lambda c: "sink" in c, timeout=10)
        old_sink = first["sink"]["pid"]
        os.kill(old_sink, signal.SIGKILL)
        killed_at = time.monotonic()
        out.wait_for("sink exited with code -9; restarting in 1 s", timeout=10)
        out.wait_for("restarted (pid", timeout=90)
        after = wait_until(
            lambda: _components(tmp_path),
            lambda c: c["sink"]["state"] == "running" and c["sink"]["restarts"] == 1,
            timeout=30,
        )
        # Back within the 1 s backoff plus the sink's own start-up (health check).
        assert time.monotonic() - killed_at < 60
        assert after["sink"]["pid"] not in (None, old_sink)
        assert after["sink"]["last_exit_code"] == -9
        for name in ("broker", "clickhouse", "ingest", "streams", "query"):
            assert after[name]["pid"] == first[name]["pid"], name
            assert after[name]["restarts"] == 0 and after[name]["state"] == "running", name
        assert "component died" not in out.text and "stopped (exit" not in out.text

        report = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tracehouse.cli",
                    "status",
                    "--json",
                    "--run-dir",
                    str(tmp_path),
                ],
                cwd=ROOT,
                env={
                    **os.environ,
                    "TRACEHOUSE_KAFKA_BOOTSTRAP": bootstrap,
                    "TRACEHOUSE_CLICKHOUSE_URL": ch_url,
                },
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
        )
        sup = report["supervisor"]
        assert sup["running"] is True and sup["up_pid"] == proc.pid
        comps = {c["name"]: c for c in sup["components"]}
        assert comps["sink"]["restarts"] == 1 and comps["sink"]["state"] == "running"
        assert comps["sink"]["pid"] == after["sink"]["pid"]
        assert comps["broker"]["restarts"] == 0

        # Seeds 1-3 were sent already; the same seed would repeat trace and span ids.
        more = send_demo_load(ingest, requests=3, traces_per_request=20, seed=100)
        count = wait_until(stored, lambda n: n >= before + more, timeout=90)
        assert count == before + more  # the replayed batch was deduplicated, not doubled

        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        out.join()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out.text
    for name in ("query", "sink", "streams", "ingest", "clickhouse", "broker"):
        assert f"{name:<11} stopped" in out.text, out.text
    final = json.loads((tmp_path / "supervisor.json").read_text())
    assert final["running"] is False

"""`tracehouse up`: broker, ClickHouse, ingest, streams and sink as separate processes.

Each process is started only after the previous one answers its health check, logs go to
``<run-dir>/logs/<name>.log``, and stopping (Ctrl-C) terminates them in reverse order so the
pipeline drains front to back: receivers first, storage last.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.broker import start_broker
from deploy.local.clickhouse_server import start_clickhouse
from deploy.local.ports import COMPONENT_PORT_FIELDS, ensure_free, free_port
from deploy.local.topics import ensure_topics
from schemas.migrations import migrate
from sinks.clickhouse_store import connect
from tracehouse.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCALE_FILE = "scale.json"
# Consumer-group components: the env var of their health port and the health URL template.
SCALABLE = {
    "streams": ("TRACEHOUSE_STREAMS_WEB_PORT", "http://127.0.0.1:{port}/health"),
    "sink": ("TRACEHOUSE_SINK_METRICS_PORT", "http://127.0.0.1:{port}/metrics"),
}


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class LocalStack:
    settings: Settings
    run_dir: Path
    clickhouse_tcp_port: int = 9000
    children: list[Child] = field(default_factory=list)
    say: Callable[[str], None] = print

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    def _log(self, name: str) -> tuple[Path, int]:
        self.logs.mkdir(parents=True, exist_ok=True)
        path = self.logs / f"{name}.log"
        return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def start(self) -> None:
        s = self.settings
        for field_name, what in COMPONENT_PORT_FIELDS.items():
            port = getattr(s, field_name)
            if port:  # 0 = that receiver is disabled
                ensure_free(port, what)
        try:
            self.start_services()
            self.prepare()
            self.start_pipeline()
        except BaseException:
            self.stop()
            raise

    def start_services(self) -> None:
        """The real broker and ClickHouse, from the pinned wheels."""
        s = self.settings
        broker_port = int(s.kafka_bootstrap.rsplit(":", 1)[1])
        _, ch_http = s.clickhouse_host_port
        path, fd = self._log("broker")
        try:
            self.children.append(Child("broker", start_broker(broker_port, fd), path))
        finally:
            os.close(fd)
        self.say(f"broker      up  kafka://{s.kafka_bootstrap}  (Tansu, memory storage)")
        path, fd = self._log("clickhouse")
        try:
            ch = start_clickhouse(
                self.run_dir / "clickhouse", ch_http, self.clickhouse_tcp_port, fd
            )
        finally:
            os.close(fd)
        self.children.append(Child("clickhouse", ch, path))
        self.say(f"clickhouse  up  {s.clickhouse_url}  (native :{self.clickhouse_tcp_port})")

    def prepare(self) -> None:
        """Topics and tables, idempotently."""
        s = self.settings
        ensure_topics(s)
        applied = migrate(connect(s.clickhouse_url, "default"), s.clickhouse_database, s.ttl_days)
        self.say(
            f"schema      ok  database {s.clickhouse_database}, migrations applied "
            f"now: {applied or 'none'}"
        )

    def start_pipeline(self) -> None:
        """Ingest, streams and sink, each its own process, in data-flow order."""
        s = self.settings
        self.start_component("ingest", f"http://127.0.0.1:{s.ingest_http_port}/health")
        self.start_component("streams", f"http://127.0.0.1:{s.streams_web_port}/health")
        self.start_component("sink", f"http://127.0.0.1:{s.sink_metrics_port}/metrics")
        self.start_component("query", f"http://127.0.0.1:{s.query_http_port}/health")

    def start_component(
        self,
        name: str,
        health_url: str,
        timeout: float = 60,
        extra_env: dict[str, str] | None = None,
        command: str | None = None,
    ) -> Child:
        """Start ``tracehouse <name>`` and wait for its health URL."""
        path, fd = self._log(name)
        env = {**os.environ, **self.settings.to_env(), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracehouse.cli", command or name],
            env=env,
            stdout=fd,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
        os.close(fd)
        child = Child(name, proc, path)
        self.children.append(child)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode} while starting; "
                    f"see {path}:\n{_tail(path)}"
                )
            if http_ok(health_url):
                self.say(f"{name:<11} up  {health_url}")
                return child
            time.sleep(0.2)
        raise RuntimeError(f"{name} not healthy at {health_url} within {timeout} s; see {path}")

    def dead(self) -> list[Child]:
        return [c for c in self.children if c.proc.poll() is not None]

    # -- scaling consumer groups ---------------------------------------------------------
    def instances(self, kind: str) -> list[Child]:
        return [c for c in self.children if c.name == kind or c.name.startswith(f"{kind}-")]

    def scale(self, kind: str, count: int) -> None:
        """Run ``count`` processes of a consumer-group component (streams or sink).

        Extra instances join the same consumer group, so Kafka rebalances partitions over
        them; each gets its own health/metrics port. Scaling down stops the newest first,
        with SIGTERM so it leaves the group cleanly.
        """
        if kind not in SCALABLE:
            raise ValueError(f"only {', '.join(sorted(SCALABLE))} can be scaled, not {kind!r}")
        if count < 1:
            raise ValueError("keep at least one instance")
        running = self.instances(kind)
        for n in range(len(running) + 1, count + 1):
            port = free_port()
            self.start_component(
                f"{kind}-{n}",
                SCALABLE[kind][1].format(port=port),
                extra_env={SCALABLE[kind][0]: str(port)},
                command=kind,
            )
        for child in reversed(running[count:]):
            child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(30)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            self.children.remove(child)
            self.say(f"{child.name:<11} stopped (exit {child.proc.returncode})")

    def apply_scale_requests(self) -> None:
        """Apply what `tracehouse scale` wrote to ``<run-dir>/scale.json``, once."""
        path = self.run_dir / SCALE_FILE
        try:
            wanted = json.loads(path.read_text())
            path.unlink()
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self.say(f"ignoring unreadable {path}: {exc}")
            return
        for kind, count in wanted.items():
            try:
                self.scale(kind, int(count))
                self.say(f"scaled {kind} to {count}")
            except (ValueError, RuntimeError) as exc:
                self.say(f"cannot scale {kind} to {count}: {exc}")

    def stop(self, timeout: float = 20) -> None:
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
                try:
                    child.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait()
            self.say(f"{child.name:<11} stopped (exit {child.proc.returncode})")
        self.children.clear()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""

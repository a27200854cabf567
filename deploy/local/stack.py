"""`tracehouse up`: broker, ClickHouse, ingest, streams and sink as separate processes.

Each process is started only after the previous one answers its health check, logs go to
``<run-dir>/logs/<name>.log``, and stopping (Ctrl-C) terminates them in reverse order so the
pipeline drains front to back: receivers first, storage last. While running, each child can
be started again on its own (``Child.restart``), which ``deploy.local.supervisor`` uses to
replace a crashed component without touching the others.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings
from core.topics import ensure_topics
from deploy.local.broker import start_broker
from deploy.local.clickhouse_server import start_clickhouse
from deploy.local.ports import COMPONENT_PORT_FIELDS, UDP_PORT_FIELDS, ensure_free, free_port
from deploy.local.supervisor import PIPELINE, SERVICE
from schemas.apply import apply_migrations

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCALE_FILE = "scale.json"
# Consumer-group components: the env var of their health port and the health URL template.
SCALABLE = {
    "streams": ("TRACEHOUSE_STREAMS_METRICS_PORT", "http://127.0.0.1:{port}/health"),
    "sink": ("TRACEHOUSE_SINK_METRICS_PORT", "http://127.0.0.1:{port}/metrics"),
}


# Settings naming files or directories. The children run in PROJECT_ROOT, so a path relative
# to where `tracehouse up` was started would name another file there (or none).
PATH_SETTINGS = ("ingest_auth_file", "sampling_policy_file", "query_ui_dir", "query_ui_config")


def absolute_paths(settings: Settings) -> Settings:
    """``settings`` with every relative path setting made absolute against the current dir."""
    return settings.with_(
        **{
            name: str(Path(value).resolve())
            for name in PATH_SETTINGS
            if (value := getattr(settings, name)) and not Path(value).is_absolute()
        }
    )


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


BROKER_DATA_LOSS = (
    "the in-memory Tansu broker lost all its data: topics, committed offsets, the streams "
    "state log and every span not yet stored"
)


class StackStoppingError(RuntimeError):
    """Raised by a start that was abandoned because `up` is shutting down."""


@dataclass
class Child:
    """One process of the stack, and how to start it again after it died.

    ``role`` is ``SERVICE`` for the broker and ClickHouse (they hold the data) and
    ``PIPELINE`` for the rest; ``lost_on_restart`` says what a restart cannot bring back,
    for the supervisor's log.
    """

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    role: str = PIPELINE
    launch: Callable[[], subprocess.Popen[bytes]] | None = None
    lost_on_restart: str = ""

    def restart(self) -> None:
        """Start the process again (blocks until healthy); raises if it does not come up."""
        if self.launch is None:
            raise RuntimeError(f"{self.name} cannot be restarted")
        self.proc = self.launch()


@dataclass
class LocalStack:
    settings: Settings
    run_dir: Path
    clickhouse_tcp_port: int = 9000
    children: list[Child] = field(default_factory=list)
    say: Callable[[str], None] = print
    # Set by `up` on Ctrl-C/SIGTERM: a restart in progress gives up waiting for health.
    stop_requested: bool = False

    def __post_init__(self) -> None:
        self.settings = absolute_paths(self.settings)

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
            if field_name.startswith("ingest_jaeger_") and not s.ingest_jaeger_enabled:
                continue
            if port:  # 0 = that receiver is disabled
                ensure_free(port, what, udp=field_name in UDP_PORT_FIELDS)
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
        self.children.append(
            Child(
                "broker",
                self._launch_broker(),
                self.logs / "broker.log",
                SERVICE,
                self._relaunch_broker,
                BROKER_DATA_LOSS,
            )
        )
        self.say(f"broker      up  kafka://{s.kafka_bootstrap}  (Tansu, memory storage)")
        self.children.append(
            Child(
                "clickhouse",
                self._launch_clickhouse(),
                self.logs / "clickhouse.log",
                SERVICE,
                self._launch_clickhouse,
            )
        )
        self.say(f"clickhouse  up  {s.clickhouse_url}  (native :{self.clickhouse_tcp_port})")

    def _launch_broker(self) -> subprocess.Popen[bytes]:
        broker_port = int(self.settings.kafka_bootstrap.rsplit(":", 1)[1])
        _, fd = self._log("broker")
        try:
            return start_broker(broker_port, fd)
        finally:
            os.close(fd)

    def _relaunch_broker(self) -> subprocess.Popen[bytes]:
        """A new, empty broker on the same port, with the topics the pipeline expects.

        The components reconnect on their own (tests/integration/test_faults.py proves it);
        without the topics, ingest would get errors until someone ran `tracehouse topics`.
        """
        proc = self._launch_broker()
        try:
            ensure_topics(self.settings)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        return proc

    def _launch_clickhouse(self) -> subprocess.Popen[bytes]:
        """ClickHouse on the run dir's data directory: a restart keeps every stored row."""
        _, ch_http = self.settings.clickhouse_host_port
        _, fd = self._log("clickhouse")
        try:
            return start_clickhouse(
                self.run_dir / "clickhouse", ch_http, self.clickhouse_tcp_port, fd
            )
        finally:
            os.close(fd)

    def prepare(self) -> None:
        """Topics and tables, idempotently."""
        s = self.settings
        ensure_topics(s)
        applied = apply_migrations(s)
        self.say(
            f"schema      ok  database {s.clickhouse_database}, migrations applied "
            f"now: {applied or 'none'}"
        )

    def start_pipeline(self) -> None:
        """Ingest, streams and sink, each its own process, in data-flow order."""
        s = self.settings
        self.start_component("ingest", f"http://127.0.0.1:{s.ingest_http_port}/health")
        self.start_component("streams", f"http://127.0.0.1:{s.streams_metrics_port}/health")
        self.start_component("sink", f"http://127.0.0.1:{s.sink_metrics_port}/metrics")
        self.start_component("query", f"http://127.0.0.1:{s.query_http_port}/health")

    def start_component(
        self,
        name: str,
        health_url: str,
        timeout: float = 60,
        extra_env: dict[str, str] | None = None,
        command: str | None = None,
        argv: Sequence[str] | None = None,
    ) -> Child:
        """Start ``tracehouse <name>`` and wait for its health URL.

        ``argv`` (the interpreter's arguments, e.g. ``["-m", "some.module"]``) runs another
        entry point instead, with the same settings and supervision: tests use it to start
        a component wrapped with a fault (tests/integration/crashing_sink.py)."""
        env = {**os.environ, **self.settings.to_env(), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        args = list(argv) if argv else ["-m", "tracehouse.cli", command or name]

        def launch() -> subprocess.Popen[bytes]:
            return self._spawn_healthy(name, health_url, timeout, env, args)

        child = Child(name, launch(), self.logs / f"{name}.log", PIPELINE, launch)
        self.children.append(child)
        self.say(f"{name:<11} up  {health_url}")
        return child

    def _spawn_healthy(
        self, name: str, health_url: str, timeout: float, env: dict[str, str], args: list[str]
    ) -> subprocess.Popen[bytes]:
        """One process of a component, returned once healthy; killed if it never gets there."""
        path, fd = self._log(name)
        proc = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=fd,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
        os.close(fd)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with code {proc.returncode} while starting; "
                        f"see {path}:\n{_tail(path)}"
                    )
                if http_ok(health_url):
                    return proc
                if self.stop_requested:
                    raise StackStoppingError(f"{name}: start abandoned, stopping")
                time.sleep(0.2)
            raise RuntimeError(f"{name} not healthy at {health_url} within {timeout} s; see {path}")
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise

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

"""Every `tracehouse ...` command line a deployment runs, through the real CLI.

The command lines come from the deployment files themselves: docker-compose.yml (service
``command``), deploy/docker/Dockerfile* (``ENTRYPOINT`` + ``CMD``) and each deploy/k8s overlay as
`kubectl kustomize` renders it
(container ``command`` + ``args``). Each is parsed by the real parser (``tracehouse.cli``'s
``build_parser``: a manifest line it rejects fails here, not in a cluster), its settings are
validated with exactly the environment the manifest gives the container, and the commands that
terminate (``init``, ``topics``, ``migrate``, ``status``, ``config``) are executed as a separate
process against the test services, with only the broker and ClickHouse addresses and the
topic/database names pointed at this test's isolated ones. Long-running components (ingest,
streams, sink, query) are parsed and validated only; other integration tests run them.

`tracehouse init` crashed (AttributeError on ``print_sql``) after creating topics, and that is
exactly the docker-compose ``init`` service and the k8s init Job.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.clickhouse import connect
from core.config import CONFIG_ENV
from core.settings import Settings
from core.topics import partition_count
from deploy.local.stack import PROJECT_ROOT, LocalStack
from schemas.migrations import load_migrations
from tests.conftest import isolated_settings
from tests.integration.cli_runner import cli_process, environ_without_settings
from tests.k8s_render import OVERLAYS, container_env, render
from tracehouse.cli import build_parser, cmd_component

ROOT = Path(PROJECT_ROOT)
TERMINATING = {"init", "topics", "migrate", "status", "config"}
LONG_RUNNING = {"ingest", "streams", "sink", "query", "up"}


@dataclass(frozen=True)
class CommandLine:
    source: str  # file and service/container, for messages and test ids
    argv: list[str]  # argv[0] is the executable
    env: dict[str, str]  # the TRACEHOUSE_* environment the manifest gives the container

    @property
    def args(self) -> list[str]:
        return self.argv[1:]


def _dockerfile_array(lines: list[str], instruction: str) -> list[str] | None:
    found = None
    for line in lines:
        if line.upper().startswith(instruction + " "):
            rest = line[len(instruction) :].strip()
            # The JSON (exec) form; the shell form would run `sh -c`, not the CLI directly.
            found = json.loads(rest) if rest.startswith("[") else ["sh", "-c", rest]
    return found


def image_entrypoint() -> list[str]:
    """ENTRYPOINT of the pipeline image: what compose ``command`` / k8s ``args`` append to."""
    lines = (ROOT / "deploy" / "docker" / "Dockerfile").read_text().splitlines()
    entry = _dockerfile_array(lines, "ENTRYPOINT")
    assert entry is not None, "deploy/docker/Dockerfile has no ENTRYPOINT"
    return entry


def dockerfile_commands() -> list[CommandLine]:
    out = []
    for path in sorted((ROOT / "deploy" / "docker").glob("Dockerfile*")):
        lines = path.read_text().splitlines()
        entry = _dockerfile_array(lines, "ENTRYPOINT") or []
        cmd = _dockerfile_array(lines, "CMD")
        if cmd is not None:
            out.append(CommandLine(f"{path.relative_to(ROOT)}:CMD", entry + cmd, {}))
    return out


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compose_commands() -> list[CommandLine]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    out = []
    for name, svc in compose["services"].items():
        if not str(svc.get("image", "")).startswith("tracehouse") and "build" not in svc:
            continue
        entry = svc.get("entrypoint", image_entrypoint())
        entry = shlex.split(entry) if isinstance(entry, str) else list(entry)
        command = svc.get("command", [])
        command = shlex.split(command) if isinstance(command, str) else list(command)
        env = svc.get("environment", {})
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        env = {k: _env_text(v) for k, v in env.items()}
        out.append(CommandLine(f"docker-compose.yml:{name}", entry + command, env))
    return out


def k8s_commands() -> list[CommandLine]:
    """Each overlay's workloads as `kubectl kustomize` renders them (tests/k8s_render.py); the
    environment is the ConfigMap's, plus the Secret's keys where the overlay requires it."""
    out = []
    for overlay in OVERLAYS:
        docs = render(overlay)
        for d in docs:
            if d["kind"] not in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
                continue
            spec = d["spec"]["jobTemplate"]["spec"] if d["kind"] == "CronJob" else d["spec"]
            pod = spec["template"]["spec"]
            for c in pod.get("initContainers", []) + pod["containers"]:
                if not c["image"].split(":")[0].endswith("tracehouse"):
                    continue
                argv = list(c.get("command", image_entrypoint())) + list(c.get("args", []))
                source = f"deploy/k8s/overlays/{overlay}:{d['metadata']['name']}/{c['name']}"
                out.append(CommandLine(source, argv, container_env(c, docs)))
    return out


ALL_COMMANDS = dockerfile_commands() + compose_commands() + k8s_commands()


def test_every_deployment_file_contributes_its_command_lines() -> None:
    """The extraction finds what the manifests run (an empty list would prove nothing)."""
    assert image_entrypoint() == ["tracehouse"]
    sources = {c.source for c in ALL_COMMANDS}
    for expected in (
        "docker-compose.yml:init",
        "docker-compose.yml:ingest",
        "docker-compose.yml:streams",
        "docker-compose.yml:sink",
        "docker-compose.yml:query",
        "deploy/k8s/overlays/dev:tracehouse-init/init",
        "deploy/k8s/overlays/dev:tracehouse-ingest/ingest",
        "deploy/k8s/overlays/dev:tracehouse-streams/streams",
        "deploy/k8s/overlays/dev:tracehouse-sink/sink",
        "deploy/k8s/overlays/dev:tracehouse-query/query",
        "deploy/k8s/overlays/production:tracehouse-init/init",
        "deploy/k8s/overlays/production:tracehouse-ingest/ingest",
        "deploy/k8s/overlays/production:tracehouse-streams/streams",
        "deploy/k8s/overlays/production:tracehouse-sink/sink",
        "deploy/k8s/overlays/production:tracehouse-query/query",
    ):
        assert expected in sources, sorted(sources)


def _parse(line: CommandLine) -> Any:
    if line.argv[:1] != ["tracehouse"]:
        pytest.fail(f"{line.source}: {line.argv} does not run the tracehouse CLI")
    try:
        return build_parser().parse_args(line.args)
    except SystemExit as exc:  # argparse reports the problem on stderr and exits 2
        pytest.fail(f"{line.source}: the CLI parser rejects {shlex.join(line.argv)} ({exc})")


def _command_env(line: CommandLine, test_env: dict[str, str]) -> dict[str, str]:
    """This process's environment without its TRACEHOUSE_* variables, plus the manifest's."""
    return {**environ_without_settings(), **line.env, **test_env}


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return cli_process(argv, env)


def _service_env(settings: Settings) -> dict[str, str]:
    """Point a manifest's environment at the test services and this test's own names only."""
    env = settings.to_env()
    keep = ("KAFKA_BOOTSTRAP", "CLICKHOUSE_URL", "CLICKHOUSE_DATABASE", "TOPIC_", "_GROUP")
    return {k: v for k, v in env.items() if any(part in k for part in keep)}


def _tables(settings: Settings) -> set[str]:
    client = connect(settings.clickhouse_url, "default")
    rows = client.query(
        "SELECT name FROM system.tables WHERE database = {d:String}",
        parameters={"d": settings.clickhouse_database},
    ).result_rows
    return {r[0] for r in rows}


@pytest.mark.parametrize("line", ALL_COMMANDS, ids=lambda c: c.source)
def test_manifest_command_line(line: CommandLine, services: LocalStack) -> None:
    args = _parse(line)
    # What the container gets: exactly the manifest's environment, validated as at start.
    manifest_settings = Settings.from_env(line.env)
    if args.command in LONG_RUNNING:
        assert args.func is cmd_component or args.command == "up", line.source
        return
    assert args.command in TERMINATING, f"{line.source}: unexpected command {args.command}"
    if manifest_settings.kafka_security_protocol != "PLAINTEXT":
        # overlays/production logs in with SASL over TLS, which the local broker cannot serve
        # (docs/operations.md, "Security"): its lines are parsed and validated above only.
        return

    settings = manifest_settings.with_(**_diff(isolated_settings(services)))
    env = _command_env(line, _service_env(settings))
    for attempt in (1, 2):  # deployments re-run init on every release: it must be idempotent
        out = _run(line.args, env)
        assert out.returncode == 0, (
            f"{line.source}: {shlex.join(line.argv)} (run {attempt}) exited {out.returncode}:\n"
            f"{out.stdout}\n{out.stderr}"
        )
        assert "Traceback" not in out.stderr, out.stderr
    if args.command in ("init", "topics"):
        for topic in settings.topics.all():
            assert partition_count(settings.kafka, topic) == settings.partitions
    if args.command == "init" or (args.command == "migrate" and not args.print_sql):
        assert {"otel_traces", "red_metrics", "service_graph_edges"} <= _tables(settings)


def _diff(isolated: Settings) -> dict[str, Any]:
    """The fields _service_env points at the test services, as Settings changes."""
    return {
        "kafka_bootstrap": isolated.kafka_bootstrap,
        "clickhouse_url": isolated.clickhouse_url,
        "clickhouse_database": isolated.clickhouse_database,
        "topics": isolated.topics,
        "streams_group": isolated.streams_group,
        "sink_group": isolated.sink_group,
    }


# Every terminating command and flag the README documents, beyond what the manifests run.
CLI_LINES = [
    ["topics"],
    ["migrate"],
    ["migrate", "--print-sql"],
    ["migrate", "--cluster", "main"],
    ["init"],
    ["status"],
    ["status", "--json"],
    ["config"],
    ["config", "--no-docs"],
    ["config", "--defaults"],
]


def test_terminating_commands_and_flags_run_against_the_services(
    services: LocalStack, tmp_path: Path
) -> None:
    settings = isolated_settings(services).with_(
        retention_spans_days=14, retention_trace_lookup_days=14
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")},
        **settings.to_env(),
    }
    outputs = {}
    for argv in CLI_LINES:
        out = _run([*argv, *(["--run-dir", str(tmp_path)] if argv[0] == "status" else [])], env)
        assert out.returncode == 0, f"tracehouse {shlex.join(argv)}: {out.stdout}\n{out.stderr}"
        outputs[shlex.join(argv)] = out.stdout
    assert "created" in outputs["topics"]
    assert "exists" in outputs["init"] and "none (up to date)" in outputs["init"]
    assert f"applied migrations: {[m.version for m in load_migrations()]}" in outputs["migrate"]
    assert "CREATE TABLE" in outputs["migrate --print-sql"]
    assert "ON CLUSTER main" in outputs["migrate --cluster main"].replace("`", "")
    assert settings.topics.raw_spans in json.dumps(json.loads(outputs["status --json"]))
    assert Settings.from_env({}, config_file=_write(tmp_path, outputs["config"])) == settings
    assert outputs["config --defaults"] == Settings().to_yaml()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "printed.yaml"
    path.write_text(text)
    return path


def test_init_from_a_yaml_config_file(services: LocalStack, tmp_path: Path) -> None:
    """The file route end to end: `tracehouse --config FILE init`, no TRACEHOUSE_* variables."""
    settings = isolated_settings(services).with_(partitions=2)
    path = tmp_path / "tracehouse.yaml"
    path.write_text(settings.to_yaml())
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
    out = _run(["--config", str(path), "init"], env)
    assert out.returncode == 0, out.stderr
    assert partition_count(settings.kafka, settings.topics.raw_spans) == 2
    assert "otel_traces" in _tables(settings)
    # TRACEHOUSE_CONFIG is the same thing for containers.
    out = _run(["topics"], {**env, CONFIG_ENV: str(path)})
    assert out.returncode == 0 and "exists" in out.stdout, out.stderr


def test_bad_configuration_stops_a_command_before_it_does_anything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
    bad = {
        "TRACEHOUSE_INGEST_WAIT_FOR_ACK": "ture",
        "TRACEHOUSE_SINK_BATCH_ROW": "10",
        "TRACEHOUSE_PARTITIONS": "0",
        "TRACEHOUSE_INGEST_HTTP_PORT": "99999",
        # Unreachable: if the command got as far as connecting, it would hang or fail there.
        "TRACEHOUSE_KAFKA_BOOTSTRAP": "127.0.0.1:9",
    }
    for argv in (["init"], ["ingest"], ["sink"]):
        out = _run(argv, {**env, **bad})
        assert out.returncode == 2, (argv, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
        for var in bad:
            if var != "TRACEHOUSE_KAFKA_BOOTSTRAP":
                assert f"  {var}: " in out.stderr, out.stderr

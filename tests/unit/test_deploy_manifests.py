"""docker-compose.yml and deploy/k8s must only use commands and settings that exist."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from tracehouse.cli import build_parser
from tracehouse.settings import Settings, Topics

ROOT = Path(__file__).resolve().parents[2]
KNOWN_ENV = {f"TRACEHOUSE_{f.name.upper()}" for f in fields(Settings) if f.name != "topics"} | {
    f"TRACEHOUSE_TOPIC_{f.name.upper()}" for f in fields(Topics)
}


def _commands() -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def _k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_compose_services_use_real_commands_and_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env_block = compose["x-tracehouse-env"]
    assert set(env_block) <= KNOWN_ENV, set(env_block) - KNOWN_ENV
    for name, svc in compose["services"].items():
        if svc.get("image", "").startswith("tracehouse"):
            assert svc["command"][0] in _commands(), name


def test_k8s_containers_use_real_commands_and_settings() -> None:
    docs = _k8s_docs()
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert set(config["data"]) <= KNOWN_ENV, set(config["data"]) - KNOWN_ENV
    deployments = [d for d in docs if d["kind"] in ("Deployment", "Job")]
    assert {d["metadata"]["name"] for d in deployments} >= {
        "tracehouse-ingest",
        "tracehouse-streams",
        "tracehouse-sink",
        "tracehouse-query",
        "tracehouse-init",
    }
    for d in deployments:
        for c in d["spec"]["template"]["spec"]["containers"]:
            assert c["args"][0] in _commands(), d["metadata"]["name"]
            for var in c.get("env", []):
                assert var["name"] in KNOWN_ENV, var["name"]


def test_keda_scales_consumer_groups_within_partition_count() -> None:
    docs = _k8s_docs()
    partitions = int(
        next(d for d in docs if d["kind"] == "ConfigMap")["data"]["TRACEHOUSE_PARTITIONS"]
    )
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in docs if d["kind"] == "ScaledObject"}
    defaults = Settings()
    expected = {
        "tracehouse-streams": (defaults.streams_group, defaults.topics.raw_spans),
        "tracehouse-sink": (defaults.sink_group, defaults.topics.sampled_spans),
    }
    assert set(scaled) == set(expected)
    for name, (group, topic) in expected.items():
        spec = scaled[name]["spec"]
        assert spec["maxReplicaCount"] <= partitions
        [trigger] = spec["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == group
        assert trigger["metadata"]["topic"] == topic

"""docker-compose.yml and deploy/k8s must only use commands and settings that exist."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from core.settings import Settings, Topics
from tracehouse.cli import build_parser

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


# Pods that serve requests behind a Service: the load balancer must stop sending first.
SERVED = {"tracehouse-ingest", "tracehouse-query"}


def test_every_pod_has_a_grace_period_and_served_pods_a_prestop_sleep() -> None:
    """SIGTERM drains in-flight work; Kubernetes kills the pod when the grace period ends.

    The default 30 s is shorter than ingest's Kafka ack timeout plus its flush, so it is
    set explicitly everywhere; served pods sleep in preStop so endpoint removal propagates
    before the drain starts (and the sleep must fit well inside the grace period).
    """
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in _k8s_docs()
        if d["kind"] in ("Deployment", "Job")
    }
    assert pods
    for name, pod in pods.items():
        grace = pod.get("terminationGracePeriodSeconds")
        assert isinstance(grace, int) and grace >= 30, name
        if name in ("tracehouse-streams", "tracehouse-sink"):
            assert grace >= 60, name  # finish a batch, commit, leave the group
        for c in pod["containers"]:
            pre_stop = c.get("lifecycle", {}).get("preStop")
            if name not in SERVED:
                continue
            assert pre_stop is not None, name
            command = pre_stop["exec"]["command"]
            assert command[0] == "sleep", name
            assert 0 < int(command[1]) <= grace - 30, name


def test_compose_publishes_ports_on_loopback_only() -> None:
    """Ingest has no auth by default and the UI none of its own: nothing listens beyond the
    host unless the operator publishes it on purpose (docs/operations.md, "Security")."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    published = [
        (name, port) for name, svc in compose["services"].items() for port in svc.get("ports", [])
    ]
    assert published
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), (name, port)


def test_cluster_compose_replicates_topics_on_enough_brokers() -> None:
    cluster = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
    env = cluster["x-cluster-tracehouse"]
    assert set(env) <= KNOWN_ENV
    settings = Settings.from_env({**env})
    brokers = [name for name in cluster["services"] if name.startswith("kafka")]
    assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (3, 2)
    assert len(brokers) >= settings.kafka_replication_factor
    assert len(settings.kafka_bootstrap.split(",")) == len(brokers)
    voters = cluster["x-cluster-kafka"]["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert len(voters) == len(brokers)
    for name, svc in cluster["services"].items():
        if name in ("init", "ingest", "streams", "sink", "query"):
            assert svc["environment"] == env, name


def test_k8s_replicates_topics_and_reads_secrets_from_one_optional_secret() -> None:
    docs = _k8s_docs()
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    settings = Settings.from_env(dict(config))
    assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (3, 2)
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert set(secret["stringData"]) <= KNOWN_ENV
    for d in docs:
        if d["kind"] not in ("Deployment", "Job"):
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            refs = c["envFrom"]
            assert {"secretRef": {"name": "tracehouse-secrets", "optional": True}} in refs
    kustomization = yaml.safe_load((ROOT / "deploy" / "k8s" / "kustomization.yaml").read_text())
    assert "secrets.example.yaml" not in kustomization["resources"]

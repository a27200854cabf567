"""docker-compose.yml and deploy/k8s's overlays must only use commands and settings that exist.

The Kubernetes checks read each overlay as `kubectl kustomize` renders it (tests/k8s_render.py);
the safety properties of the overlays are in test_k8s_overlays.py.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from core.settings import Settings, Topics
from tests.k8s_render import OVERLAYS, config_map, container_env, render, secret_example, workloads
from tracehouse.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
KNOWN_ENV = {f"TRACEHOUSE_{f.name.upper()}" for f in fields(Settings) if f.name != "topics"} | {
    f"TRACEHOUSE_TOPIC_{f.name.upper()}" for f in fields(Topics)
}


def _commands() -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def test_compose_services_use_real_commands_and_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env_block = compose["x-tracehouse-env"]
    assert set(env_block) <= KNOWN_ENV, set(env_block) - KNOWN_ENV
    for name, svc in compose["services"].items():
        if svc.get("image", "").startswith("tracehouse"):
            assert svc["command"][0] in _commands(), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_containers_use_real_commands_and_settings(overlay: str) -> None:
    docs = render(overlay)
    config = config_map(docs)
    assert set(config) <= KNOWN_ENV, set(config) - KNOWN_ENV
    deployments = workloads(docs)
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
            # What the container starts with (production: plus the Secret's keys) is valid.
            Settings.from_env(container_env(c, docs))


def test_keda_scales_consumer_groups_within_partition_count() -> None:
    docs = render("production")
    partitions = int(config_map(docs)["TRACEHOUSE_PARTITIONS"])
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


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_has_a_grace_period_and_served_pods_a_prestop_sleep(overlay: str) -> None:
    """SIGTERM drains in-flight work; Kubernetes kills the pod when the grace period ends.

    The default 30 s is shorter than ingest's Kafka ack timeout plus its flush, so it is
    set explicitly everywhere; served pods sleep in preStop so endpoint removal propagates
    before the drain starts (and the sleep must fit well inside the grace period).
    """
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in workloads(render(overlay))
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


def test_production_replicates_topics_and_dev_fits_one_broker() -> None:
    prod = Settings.from_env({**config_map(render("production")), **secret_example()})
    assert (prod.kafka_replication_factor, prod.kafka_min_insync_replicas) == (3, 2)
    dev = Settings.from_env(config_map(render("dev")))
    assert (dev.kafka_replication_factor, dev.kafka_min_insync_replicas) == (1, 1)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_reads_the_one_secret_required_only_in_production(overlay: str) -> None:
    required = overlay == "production"
    for d in workloads(render(overlay)):
        for c in d["spec"]["template"]["spec"]["containers"]:
            refs = c["envFrom"]
            expected = {"secretRef": {"name": "tracehouse-secrets", "optional": not required}}
            assert expected in refs, (overlay, d["metadata"]["name"])
    example = ROOT / "deploy" / "k8s" / "overlays" / "production" / "secrets.example.yaml"
    secret = yaml.safe_load(example.read_text())
    assert set(secret["stringData"]) <= KNOWN_ENV
    # The example is documentation: no kustomization applies it.
    for kustomization in (ROOT / "deploy" / "k8s").rglob("kustomization.yaml"):
        resources = yaml.safe_load(kustomization.read_text()).get("resources", [])
        assert "secrets.example.yaml" not in resources, kustomization

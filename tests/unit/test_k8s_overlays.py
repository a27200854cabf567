"""Each Kubernetes overlay, rendered by the real `kubectl kustomize`, is valid and safe.

Validation is offline, against the Kubernetes OpenAPI schemas that the pinned
`kubernetes-validate` package ships (strict: an unknown field is an error, as the API server's
strict field validation would report it). KEDA's custom resources have no schema there; they
are listed, and checked by shape below.

The safety properties are what docs/operations.md ("Kubernetes install") promises operators.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from core.settings import SECRET_FIELDS, Settings
from tests.k8s_render import OVERLAYS, render, workloads

# The oldest Kubernetes minor the manifests target; its schemas ship in kubernetes-validate.
K8S_VERSION = "1.30.0"
CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication"}  # keda.sh, no bundled schema
SECRET_ENV = {f"TRACEHOUSE_{f.upper()}" for f in SECRET_FIELDS} | {"TRACEHOUSE_INGEST_AUTH_TOKENS"}

# Each component's real health endpoint: the path its code serves and the setting whose default
# is the port (ingest/http_receiver.py, query/api.py, streams/app.py; the sink has only
# prometheus_client's server, sinks/worker.py, which answers /metrics).
_defaults = Settings()
HEALTH = {
    "tracehouse-ingest": ("/health", _defaults.ingest_http_port),
    "tracehouse-query": ("/health", _defaults.query_http_port),
    "tracehouse-streams": ("/health", _defaults.streams_metrics_port),
    "tracehouse-sink": ("/metrics", _defaults.sink_metrics_port),
}
SERVED = {"tracehouse-ingest", "tracehouse-query"}


def _deployments(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "Deployment"]


def _containers(d: dict[str, Any]) -> list[dict[str, Any]]:
    return list(d["spec"]["template"]["spec"]["containers"])


def _labels(d: dict[str, Any]) -> dict[str, str]:
    return dict(d["spec"]["template"]["metadata"].get("labels", {}))


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A plain matchLabels selector (the only form used here) matches these pod labels."""
    assert set(selector) <= {"matchLabels"}, selector
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _has_auth(d: dict[str, Any]) -> bool:
    """Ingest/query authenticate when the tenant tokens come from a required Secret key."""
    for c in _containers(d):
        for var in c.get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if var["name"] == "TRACEHOUSE_INGEST_AUTH_TOKENS" and ref and not ref.get("optional"):
                return True
    return False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    docs = render(overlay)
    assert len(docs) >= 8
    kinds = set()
    for doc in docs:
        kinds.add(doc["kind"])
        if doc["kind"] in CUSTOM_KINDS:
            assert doc["apiVersion"] == "keda.sh/v1alpha1", doc["metadata"]["name"]
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay}: {doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert {"Deployment", "Job", "Service", "ConfigMap"} <= kinds


def test_schema_validation_rejects_a_broken_object() -> None:
    """The validator is really strict: a misspelt field in a rendered Deployment fails."""
    [ingest] = [
        d for d in _deployments(render("dev")) if d["metadata"]["name"] == "tracehouse-ingest"
    ]
    kubernetes_validate.validate(ingest, K8S_VERSION, strict=True)
    ingest["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ingest, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_on_every_deployment_hit_the_real_health_endpoints(overlay: str) -> None:
    deployments = _deployments(render(overlay))
    assert {d["metadata"]["name"] for d in deployments} == set(HEALTH)
    for d in deployments:
        path, port = HEALTH[d["metadata"]["name"]]
        for c in _containers(d):
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            for kind in ("readinessProbe", "livenessProbe"):
                probe = c.get(kind)
                assert probe is not None, (overlay, d["metadata"]["name"], kind)
                get = probe["httpGet"]
                assert get["path"] == path, (d["metadata"]["name"], kind)
                assert ports.get(get["port"], get["port"]) == port, (d["metadata"]["name"], kind)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_exposed_service_without_auth(overlay: str) -> None:
    docs = render(overlay)
    services = [d for d in docs if d["kind"] == "Service"]
    assert services
    for svc in services:
        if svc["spec"].get("type", "ClusterIP") == "ClusterIP":
            continue
        selected = [
            d
            for d in _deployments(docs)
            if _selects({"matchLabels": svc["spec"]["selector"]}, _labels(d))
        ]
        assert selected and all(_has_auth(d) for d in selected), (
            f"{overlay}: Service {svc['metadata']['name']} is {svc['spec']['type']} in front of "
            "pods without authentication"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_value_is_inlined(overlay: str) -> None:
    docs = render(overlay)
    assert not [d for d in docs if d["kind"] == "Secret"], "Secrets are created by the operator"
    for d in docs:
        if d["kind"] == "ConfigMap":
            assert not set(d["data"]) & SECRET_ENV, d["metadata"]["name"]
    for d in workloads(docs):
        for c in _containers(d):
            for var in c.get("env", []):
                if var["name"] in SECRET_ENV:
                    assert "value" not in var, (d["metadata"]["name"], var["name"])
                    assert "secretKeyRef" in var["valueFrom"], var


def test_production_turns_auth_on_for_ingest_and_query_and_clients() -> None:
    docs = render("production")
    for d in _deployments(docs):
        if d["metadata"]["name"] in SERVED:
            assert _has_auth(d), d["metadata"]["name"]
    [config] = [d for d in docs if d["kind"] == "ConfigMap"]
    assert config["data"]["TRACEHOUSE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["data"]["TRACEHOUSE_CLICKHOUSE_URL"].startswith("https://")


def test_production_has_resources_on_every_container() -> None:
    for d in workloads(render("production")):
        for c in _containers(d):
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]), d["metadata"]["name"]
            assert {"cpu", "memory"} <= set(res["limits"]), d["metadata"]["name"]


def test_production_has_a_disruption_budget_per_component() -> None:
    docs = render("production")
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for d in _deployments(docs):
        matching = [b for b in budgets if _selects(b["spec"]["selector"], _labels(d))]
        assert len(matching) == 1, d["metadata"]["name"]
        assert matching[0]["spec"].get("maxUnavailable") == 1


def test_production_network_policies_deny_by_default() -> None:
    docs = render("production")
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, "no default-deny NetworkPolicy"
    # Ingress to the served ports of ingest and query comes only from the ingress controller.
    for d in _deployments(docs):
        labels = _labels(d)
        served_ports = {p["containerPort"] for c in _containers(d) for p in c["ports"]}
        metrics = (
            {HEALTH[d["metadata"]["name"]][1]} if d["metadata"]["name"] not in SERVED else set()
        )
        for p in policies:
            if not p["spec"]["podSelector"] or not _selects(p["spec"]["podSelector"], labels):
                continue
            for rule in p["spec"].get("ingress", []):
                ports = {x["port"] for x in rule["ports"]}
                sources = [s["namespaceSelector"]["matchLabels"] for s in rule["from"]]
                namespaces = {s["kubernetes.io/metadata.name"] for s in sources}
                if ports & served_ports - metrics and d["metadata"]["name"] in SERVED:
                    assert namespaces == {"ingress-nginx"}, (p["metadata"]["name"], rule)
                else:
                    assert ports <= {6066, 9464} and namespaces == {"monitoring"}, rule
        # Every pipeline pod has an egress policy of its own (Kafka and/or ClickHouse).
        egress = [
            p
            for p in policies
            if p["spec"]["podSelector"]
            and _selects(p["spec"]["podSelector"], labels)
            and "Egress" in p["spec"]["policyTypes"]
        ]
        assert egress, d["metadata"]["name"]


def test_production_ingress_terminates_tls_for_every_host() -> None:
    ingresses = [d for d in render("production") if d["kind"] == "Ingress"]
    assert ingresses
    for ing in ingresses:
        hosts = {r["host"] for r in ing["spec"]["rules"]}
        tls_hosts = {h for t in ing["spec"]["tls"] for h in t["hosts"]}
        assert hosts <= tls_hosts, ing["metadata"]["name"]

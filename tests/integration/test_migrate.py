"""`tracehouse migrate` on the real ClickHouse: idempotent, TTL follows the setting, and the
cluster DDL (which cannot run on one node) at least parses on ClickHouse 26.9."""

from __future__ import annotations

import uuid
from typing import Any

from core.clickhouse import connect
from deploy.local.stack import LocalStack
from schemas.migrations import load_migrations, migrate, render_all
from tests.integration.cli_runner import run_cli


def _engine(client: Any, db: str, table: str) -> str:
    return str(
        client.command(
            "SELECT engine_full FROM system.tables"
            " WHERE database = {d:String} AND name = {t:String}",
            parameters={"d": db, "t": table},
        )
    )


def test_migrate_is_idempotent_and_applies_ttl_changes(services: LocalStack) -> None:
    db = f"mig_{uuid.uuid4().hex[:8]}"
    client = connect(services.settings.clickhouse_url, "default")
    versions = [m.version for m in load_migrations()]
    assert migrate(client, db, ttl_days=0) == versions
    assert migrate(client, db, ttl_days=0) == []
    assert " TTL " not in _engine(client, db, "otel_traces")

    # Through the CLI, as an operator would change retention.
    out = run_cli(services.settings.with_(clickhouse_database=db, ttl_days=14), "migrate")
    assert "none (up to date)" in out
    for table, column in (
        ("otel_traces", "Timestamp"),
        ("otel_traces_trace_id_ts", "Start"),
        ("red_metrics", "TimeUnix"),
        ("red_metrics_1h", "TimeUnix"),
        ("service_graph_edges", "TimeUnix"),
        ("pipeline_counters", "TimeUnix"),
    ):
        engine = _engine(client, db, table)
        assert f"TTL toDateTime({column}) + toIntervalDay(14)" in engine, engine
        assert "ttl_only_drop_parts = 1" in engine
    migrate(client, db, ttl_days=0)
    assert " TTL " not in _engine(client, db, "red_metrics")


def test_cluster_ddl_parses(services: LocalStack) -> None:
    client = connect(services.settings.clickhouse_url, "default")
    statements = render_all("tracehouse", ttl_days=30, cluster="main")
    assert len(statements) > 10
    for statement in statements:
        formatted = client.command("SELECT formatQuery({q:String})", parameters={"q": statement})
        if statement.startswith("INSERT INTO"):
            # A backfill runs on each shard's local table; an INSERT has no ON CLUSTER.
            assert "_local" in statement
            continue
        assert "ON CLUSTER main" in str(formatted).replace("`", "")

"""`tracehouse migrate` on the real ClickHouse: idempotent, TTL follows the setting, and the
cluster DDL (which cannot run on one node) at least parses on ClickHouse 26.9."""

from __future__ import annotations

import uuid
from typing import Any

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.stack import LocalStack
from schemas.migrations import load_migrations, migrate, render_all
from tests.integration.cli_runner import run_cli
from tracehouse import status_retention

RETENTION_TABLES = ("spans", "trace_lookup", "red", "red_hourly", "graph", "counters")


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
    assert migrate(client, db, retention=0) == versions
    assert migrate(client, db, retention=0) == []
    assert " TTL " not in _engine(client, db, "otel_traces")

    # Through the CLI, as an operator would change retention.
    fourteen = {f"retention_{t}_days": 14 for t in RETENTION_TABLES}
    out = run_cli(services.settings.with_(clickhouse_database=db, **fourteen), "migrate")
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
    migrate(client, db, retention=0)
    assert " TTL " not in _engine(client, db, "red_metrics")
    # Per table, as the settings give it; the archive keeps everything.
    migrate(client, db, Settings().retention_days())
    assert "toIntervalDay(7)" in _engine(client, db, "otel_traces")
    assert "toIntervalDay(400)" in _engine(client, db, "red_metrics_1h")
    assert "toIntervalDay(30)" in _engine(client, db, "pipeline_counters")
    assert " TTL " not in _engine(client, db, "otel_traces_archive")


def test_cluster_ddl_parses(services: LocalStack) -> None:
    client = connect(services.settings.clickhouse_url, "default")
    statements = render_all("tracehouse", retention=30, cluster="main")
    assert len(statements) > 10
    for statement in statements:
        formatted = client.command("SELECT formatQuery({q:String})", parameters={"q": statement})
        if statement.startswith("INSERT INTO"):
            # A backfill runs on each shard's local table; an INSERT has no ON CLUSTER.
            assert "_local" in statement
            continue
        assert "ON CLUSTER main" in str(formatted).replace("`", "")


def test_status_shows_retention_and_the_oldest_and_newest_rows(services: LocalStack) -> None:
    settings = Settings(
        clickhouse_url=services.settings.clickhouse_url,
        clickhouse_database=f"ret_{uuid.uuid4().hex[:8]}",
        retention_red_days=3,
    )
    admin = connect(services.settings.clickhouse_url, "default")
    migrate(admin, settings.clickhouse_database, settings.retention_days())
    client = connect(settings.clickhouse_url, settings.clickhouse_database)
    # Within the 7 days kept (older rows would be dropped by the TTL as they arrive).
    old, new = client.query(
        "SELECT toStartOfDay(now64(9)) - toIntervalDay(5) + toIntervalNanosecond(123456789),"
        " toStartOfHour(now64(9))"
    ).result_rows[0]
    client.command(
        "INSERT INTO otel_traces (Timestamp, TraceId, SpanId) VALUES "
        f"('{old:%Y-%m-%d %H:%M:%S.%f}', 'a', '1'), ('{new:%Y-%m-%d %H:%M:%S}', 'a', '2')"
    )
    rows = {r["table"]: r for r in status_retention.collect(client, settings)}
    assert rows["otel_traces"]["oldest"] == str(old)
    assert rows["otel_traces"]["newest"] == str(new)
    assert rows["otel_traces_trace_id_ts"]["oldest"] == str(old.replace(microsecond=0))
    assert rows["red_metrics"]["keep_days"] == 3 and rows["red_metrics"]["server_ttl"]
    assert rows["red_metrics"]["oldest"] is None
    text = "\n".join(status_retention.render(list(rows.values())))
    assert "red_metrics                  3 days       empty" in text
    assert "otel_traces_archive          forever      empty" in text
    # A server whose TTL differs from the settings is pointed out.
    changed = settings.with_(retention_graph_days=0)
    graph = [
        r for r in status_retention.collect(client, changed) if r["table"] == "service_graph_edges"
    ]
    assert "server differs" in "\n".join(status_retention.render(graph))


def _part_storage(client: Any, db: str, table: str) -> list[str]:
    return [
        str(row[0])
        for row in client.query(
            "SELECT part_storage_type FROM system.parts WHERE database = {d:String}"
            " AND table = {t:String} AND active ORDER BY modification_time, name",
            parameters={"d": db, "t": table},
        ).result_rows
    ]


def test_small_parts_are_packed_and_the_setting_turns_it_off(services: LocalStack) -> None:
    db = f"packed_{uuid.uuid4().hex[:8]}"
    admin = connect(services.settings.clickhouse_url, "default")
    migrate(admin, db)
    client = connect(services.settings.clickhouse_url, db)
    assert f"min_bytes_for_full_part_storage = {Settings().clickhouse_packed_part_bytes}" in (
        _engine(client, db, "otel_traces")
    )
    insert = (
        "INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ServiceName, SpanAttributes)"
        " SELECT now64(9), hex(number % 7), hex(number), 'svc', map('k', toString(number))"
        " FROM numbers({n:UInt64})"
    )
    client.command(insert, parameters={"n": 5000})
    assert _part_storage(client, db, "otel_traces") == ["Packed"]
    assert _part_storage(client, db, "otel_traces_trace_id_ts") == ["Packed"]
    # Reads through the text indexes of a packed part find what was written.
    found = client.command(
        "SELECT count() FROM otel_traces WHERE TraceId = '03' AND SpanAttributes['k'] = '10'"
        " SETTINGS force_data_skipping_indices = 'idx_trace_id'"
    )
    assert int(found) == 1

    # Through the CLI, as an operator turns it off: later parts are full, merges keep rows.
    run_cli(
        services.settings.with_(clickhouse_database=db, clickhouse_packed_part_bytes=0),
        "migrate",
    )
    assert "min_bytes_for_full_part_storage" not in _engine(client, db, "otel_traces")
    client.command(insert, parameters={"n": 5000})
    assert _part_storage(client, db, "otel_traces") == ["Packed", "Full"]
    client.command("OPTIMIZE TABLE otel_traces FINAL")
    assert _part_storage(client, db, "otel_traces") == ["Full"]
    assert int(client.command("SELECT count() FROM otel_traces")) == 10_000


def test_span_merges_are_widened_and_the_setting_resets_them(services: LocalStack) -> None:
    db = f"merges_{uuid.uuid4().hex[:8]}"
    admin = connect(services.settings.clickhouse_url, "default")
    migrate(admin, db)
    client = connect(services.settings.clickhouse_url, db)
    base = Settings().clickhouse_span_merge_base
    assert f"merge_selector_base = {base}" in _engine(client, db, "otel_traces")
    # Only the span table: the lookup and the rollups keep ClickHouse's merges.
    assert "merge_selector_base" not in _engine(client, db, "otel_traces_trace_id_ts")
    assert "merge_selector_base" not in _engine(client, db, "red_metrics")

    # Through the CLI, as an operator changes it, then back to the server's default.
    run_cli(
        services.settings.with_(clickhouse_database=db, clickhouse_span_merge_base=40), "migrate"
    )
    assert "merge_selector_base = 40" in _engine(client, db, "otel_traces")
    run_cli(
        services.settings.with_(clickhouse_database=db, clickhouse_span_merge_base=5), "migrate"
    )
    assert "merge_selector_base" not in _engine(client, db, "otel_traces")
    # Parts written under either width merge into the same rows.
    insert = (
        "INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ServiceName)"
        " SELECT now64(9), hex(number % 7), hex(number), 'svc' FROM numbers({n:UInt64})"
    )
    for _ in range(3):
        client.command(insert, parameters={"n": 1000})
    client.command("OPTIMIZE TABLE otel_traces FINAL")
    assert int(client.command("SELECT count() FROM otel_traces")) == 3000

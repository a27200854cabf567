"""Rendering of the migration templates: one node, cluster, and TTL alterations."""

from __future__ import annotations

import re

from schemas.migrations import (
    SHARDING_KEYS,
    Layout,
    has_text_index,
    load_migrations,
    render,
    render_all,
    storage_tables,
    ttl_changes,
)


def _tables(statements: list[str]) -> list[str]:
    return [
        m.group(1)
        for s in statements
        if (m := re.match(r"CREATE TABLE IF NOT EXISTS `db`\.(\w+)", s))
    ]


def test_single_node_has_no_placeholders_or_cluster_terms() -> None:
    sql = render_all("db", retention=0)
    text = "\n".join(sql)
    assert not re.search(r"\{(db|local|engine|ttl|on_cluster)", text)
    assert "Replicated" not in text and "Distributed" not in text and "ON CLUSTER" not in text
    assert set(_tables(sql)) >= {
        "otel_traces",
        "otel_traces_trace_id_ts",
        "sink_batches",
        "red_metrics",
        "red_metrics_1h",
        "service_graph_edges",
        "pipeline_counters",
    }
    assert "TTL" not in text


def test_cluster_renders_replicated_local_tables_behind_distributed_ones() -> None:
    sql = render_all("db", retention=30, cluster="main")
    tables = _tables(sql)
    # A staging table (renamed over the real one by its migration) has no Distributed table.
    local = [t for t in tables if t.endswith("_local") and not t.endswith("_next_local")]
    assert local and all(t.removesuffix("_local") in tables for t in local)
    for statement in sql:
        if statement.startswith("INSERT INTO"):  # a backfill of each node's local table
            assert re.match(r"INSERT INTO `db`\.\w+_local\b", statement)
            continue
        assert " ON CLUSTER `main`" in statement
        if re.match(r"CREATE TABLE IF NOT EXISTS `db`\.\w+_local", statement):
            assert re.search(r"ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/", statement)
    dist = {s.split()[5].split(".")[1]: s for s in sql if "ENGINE = Distributed" in s}
    assert "cityHash64(TraceId)" in dist["otel_traces"]
    assert "rand()" in dist["red_metrics"]
    # Views read and write the local tables, so each node aggregates what it stores.
    mv = next(s for s in sql if "red_metrics_1h_mv" in s)
    assert "TO `db`.red_metrics_1h_local" in mv and "FROM `db`.red_metrics_local" in mv
    assert any("TTL toDateTime(Timestamp) + toIntervalDay(30)" in s for s in sql)


def test_every_time_table_has_a_ttl_column() -> None:
    columns: dict[str, str] = {}
    for mig in load_migrations():
        columns.update(mig.ttl_columns())
    assert columns["otel_traces"] == "Timestamp"
    assert columns["otel_traces_trace_id_ts"] == "Start"
    assert {"red_metrics", "red_metrics_1h", "service_graph_edges", "pipeline_counters"} <= set(
        columns
    )


def test_ttl_changes_only_where_needed() -> None:
    engines = {
        "a": "MergeTree ORDER BY x TTL toDateTime(T) + toIntervalDay(7) SETTINGS y = 1",
        "b": "MergeTree ORDER BY x SETTINGS y = 1",
    }
    columns = {"a": "T", "b": "T", "missing": "T"}
    assert ttl_changes(engines, columns, 7) == [
        "ALTER TABLE {db}.b MODIFY TTL toDateTime(T) + toIntervalDay(7)"
    ]
    assert ttl_changes(engines, columns, 3) == [
        "ALTER TABLE {db}.a MODIFY TTL toDateTime(T) + toIntervalDay(3)",
        "ALTER TABLE {db}.b MODIFY TTL toDateTime(T) + toIntervalDay(3)",
    ]
    assert ttl_changes(engines, columns, 0) == ["ALTER TABLE {db}.a REMOVE TTL"]


def test_archive_outlives_retention_and_shards_by_trace() -> None:
    columns: dict[str, str] = {}
    for mig in load_migrations():
        columns.update(mig.ttl_columns())
    assert "otel_traces_archive" not in columns  # archived traces are kept without a TTL
    sql = render_all("db", retention=30, cluster="main")
    [local] = [s for s in sql if "CREATE TABLE IF NOT EXISTS `db`.otel_traces_archive_local" in s]
    assert "TTL" not in local and "ReplicatedReplacingMergeTree" in local
    distributed = "Distributed(`main`, `db`, otel_traces_archive_local, cityHash64(TraceId))"
    assert any(distributed in s for s in sql)


def test_text_indexes_from_clickhouse_26_2_like_the_exporter() -> None:
    assert has_text_index("26.9.2.1") and has_text_index("26.2.1.1") and has_text_index("27.1")
    assert not has_text_index("26.1.3.1") and not has_text_index("25.12.1.1")
    assert not has_text_index("") and not has_text_index("unknown")


def test_each_server_gets_one_index_family() -> None:
    [mig] = [m for m in load_migrations() if m.name == "upstream_trace_layout"]
    text = " ".join(render(mig.sql, Layout("db", text_indexes=True)))
    bloom = " ".join(render(mig.sql, Layout("db", text_indexes=False)))
    assert "TYPE text(tokenizer = 'array')" in text and "DROP INDEX IF EXISTS idx_trace_id" in text
    assert "TYPE text" not in bloom and "DROP INDEX" not in bloom  # 0001's blooms stay
    for sql in (text, bloom):
        assert "idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0)" in sql
        assert "{" not in sql.replace("{shard}", "").replace("{replica}", "")


SHARDED = Layout("db", retention=30, shards=("127.0.0.1:9001", "127.0.0.1:9002"))


def test_sharded_layout_renders_plain_local_tables_without_cluster_ddl() -> None:
    sql = [s for mig in load_migrations() for s in render(mig.sql, SHARDED)]
    text = "\n".join(sql)
    # What runs on the local servers: no Keeper (Replicated), no remote_servers (ON CLUSTER,
    # Distributed(`name`)); each statement runs on every shard by migrate_sharded.
    assert "Replicated" not in text and "ON CLUSTER" not in text and "Distributed" not in text
    tables = _tables(sql)
    assert tables and all(t.endswith("_local") for t in tables)
    assert not re.search(r"ALTER TABLE `db`\.sink_batches\b", text)  # 0006's {cluster} line
    mv = next(
        s for s in sql if "CREATE MATERIALIZED VIEW IF NOT EXISTS `db`.red_metrics_1h_mv" in s
    )
    assert "TO `db`.red_metrics_1h_local" in mv and "FROM `db`.red_metrics_local" in mv
    assert "TTL toDateTime(Timestamp) + toIntervalDay(30)" in text


def test_sharded_layout_reads_and_writes_every_shard_with_the_sharding_keys() -> None:
    names = storage_tables()
    assert "otel_traces_trace_id_ts_next" not in names  # staging: renamed away
    assert {"otel_traces", "otel_traces_trace_id_ts", "sink_batches", "red_metrics_1h"} <= set(
        names
    )
    for table in names:
        ddl = SHARDED.shard_table(table)
        assert ddl.startswith(f"CREATE OR REPLACE TABLE `db`.{table} AS remote(")
        assert f"'127.0.0.1:9001,127.0.0.1:9002', 'db', '{table}_local'" in ddl
        assert ddl.endswith(f", {SHARDING_KEYS.get(table, 'rand()')})")


def test_sharded_ttl_changes_alter_the_local_tables() -> None:
    engines = {"a_local": "MergeTree ORDER BY x SETTINGS y = 1", "a": "Proxy"}
    assert ttl_changes(engines, {"a": "T"}, {"a": 5}, local_suffix="_local") == [
        "ALTER TABLE {db}.a_local MODIFY TTL toDateTime(T) + toIntervalDay(5)"
    ]

"""Versioned, idempotent ClickHouse migrations, for one node or a cluster.

Files ``schemas/clickhouse/NNNN_name.sql`` run in order; each applied version is recorded in
``schema_migrations``. Every statement is itself idempotent (IF NOT EXISTS), so a run that died
between a statement and its record is simply repeated.

The SQL files are templates with a few placeholders, so one file serves both layouts:

- ``{db}`` the database; ``{ttl:Column}`` the retention clause on that column (or nothing);
- ``{local:name}`` a storage table: ``name`` on one node, ``name_local`` in a cluster;
- ``{engine:XMergeTree}`` ``XMergeTree`` on one node, ``ReplicatedXMergeTree(...)`` in a cluster;
- ``{on_cluster}`` nothing on one node, `` ON CLUSTER `name` `` in a cluster.

In cluster mode every storage table additionally gets a ``Distributed`` table under the plain
name, so the sink and analysts use the same table names in both layouts. Retention is not
frozen at creation: :func:`sync_ttl` compares each table's TTL with ``ttl_days`` and alters it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_TTL = re.compile(r"\{ttl:(\w+)\}")
_LOCAL = re.compile(r"\{local:(\w+)\}")
_ENGINE = re.compile(r"\{engine:(\w*MergeTree)\}")
_STORAGE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS \{db\}\.\{local:(\w+)\}")

# Rows of one trace stay on one shard so a trace lookup touches one node; rows that FINAL must
# collapse (intents of one partition, counters of one instance) share a shard; the rest spread.
SHARDING_KEYS = {
    "otel_traces": "cityHash64(TraceId)",
    "otel_traces_trace_id_ts": "cityHash64(TraceId)",
    "otel_traces_archive": "cityHash64(TraceId)",
    "sink_batches": "cityHash64(ConsumerGroup, Topic, Partition)",
    "pipeline_counters": "cityHash64(Component, Instance)",
    "sampling_probabilities": "cityHash64(TenantId, ServiceName, SpanName)",
}
REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
MIGRATIONS_TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS {db}.{local:schema_migrations}{on_cluster} "
    "(version UInt32, name String, applied_at DateTime64(3) DEFAULT now64(3)) "
    "ENGINE = {engine:ReplacingMergeTree} ORDER BY version"
)


@dataclass(frozen=True)
class Layout:
    """How to render the templates: one node (``cluster=None``) or a named cluster."""

    database: str
    ttl_days: int = 0
    cluster: str | None = None

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""

    def local(self, table: str) -> str:
        return f"{table}_local" if self.cluster else table

    def engine(self, family: str) -> str:
        return f"Replicated{family}({REPLICA_PATH})" if self.cluster else family

    def distributed(self, table: str) -> str:
        key = SHARDING_KEYS.get(table, "rand()")
        db = f"`{self.database}`"
        return (
            f"CREATE TABLE IF NOT EXISTS {db}.{table}{self.on_cluster} AS {db}.{table}_local "
            f"ENGINE = Distributed(`{self.cluster}`, {db}, {table}_local, {key})"
        )


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, database: str, ttl_days: int, cluster: str | None = None) -> list[str]:
        return render(self.sql, Layout(database, ttl_days, cluster))

    def ttl_columns(self) -> dict[str, str]:
        """Storage table -> the column its retention is measured on."""
        out = {}
        for statement in _split_statements(self.sql):
            table = _STORAGE_TABLE.search(statement)
            ttl = _TTL.search(statement)
            if table and ttl:
                out[table.group(1)] = ttl.group(1)
        return out


def ttl_expression(column: str, ttl_days: int) -> str:
    return f"toDateTime({column}) + toIntervalDay({ttl_days})"


def render(sql: str, layout: Layout) -> list[str]:
    """Template -> executable statements (plus Distributed tables in cluster mode)."""
    out: list[str] = []
    for template in _split_statements(sql):
        template = template.strip()
        if not template:
            continue
        text = template.replace("{db}", f"`{layout.database}`").replace(
            "{on_cluster}", layout.on_cluster
        )
        text = _TTL.sub(
            lambda m: (
                f"TTL {ttl_expression(m.group(1), layout.ttl_days)}" if layout.ttl_days > 0 else ""
            ),
            text,
        )
        text = _LOCAL.sub(lambda m: layout.local(m.group(1)), text)
        text = _ENGINE.sub(lambda m: layout.engine(m.group(1)), text)
        out.append(text)
        table = _STORAGE_TABLE.search(template)
        if layout.cluster and table:
            out.append(layout.distributed(table.group(1)))
    return out


def _split_statements(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    return "\n".join(lines).split(";\n")


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("schemas").joinpath("clickhouse").iterdir():
        m = _FILE.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text()))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions: {versions}")
    return found


def render_all(database: str, ttl_days: int = 0, cluster: str | None = None) -> list[str]:
    """Every statement a fresh install runs, in order (used for cluster DDL review and tests)."""
    layout = Layout(database, ttl_days, cluster)
    out = [f"CREATE DATABASE IF NOT EXISTS `{database}`{layout.on_cluster}"]
    out += render(MIGRATIONS_TABLE_DDL, layout)
    for mig in load_migrations():
        out += render(mig.sql, layout)
    return out


def migrate(client: Any, database: str, ttl_days: int = 0) -> list[int]:
    """Apply pending migrations with a clickhouse-connect client; returns versions applied.

    Afterwards the retention of every table is brought in line with ``ttl_days``, so changing
    the setting and re-running ``tracehouse migrate`` applies it to existing tables too.
    """
    layout = Layout(database, ttl_days)
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    for statement in render(MIGRATIONS_TABLE_DDL, layout):
        client.command(statement)
    done = {
        row[0]
        for row in client.query(
            f"SELECT version FROM `{database}`.schema_migrations FINAL"
        ).result_rows
    }
    applied = []
    for mig in load_migrations():
        if mig.version in done:
            continue
        for statement in mig.statements(database, ttl_days):
            client.command(statement)
        client.insert(
            f"`{database}`.schema_migrations",
            [[mig.version, mig.name]],
            column_names=["version", "name"],
        )
        applied.append(mig.version)
    sync_ttl(client, database, ttl_days)
    return applied


def ttl_changes(
    current_engine_full: dict[str, str], ttl_columns: dict[str, str], ttl_days: int
) -> list[str]:
    """ALTERs that make each table's TTL match ``ttl_days`` (pure: compares engine_full text)."""
    out = []
    for table, column in sorted(ttl_columns.items()):
        engine_full = current_engine_full.get(table)
        if engine_full is None:
            continue
        has_ttl = " TTL " in f" {engine_full} "
        wanted = ttl_expression(column, ttl_days)
        if ttl_days <= 0 and has_ttl:
            out.append(f"ALTER TABLE {{db}}.{table} REMOVE TTL")
        elif ttl_days > 0 and wanted not in engine_full:
            out.append(f"ALTER TABLE {{db}}.{table} MODIFY TTL {wanted}")
    return out


def sync_ttl(client: Any, database: str, ttl_days: int) -> list[str]:
    """Apply :func:`ttl_changes`; parts written earlier get the new TTL recalculated."""
    columns: dict[str, str] = {}
    for mig in load_migrations():
        columns.update(mig.ttl_columns())
    engines = {
        str(name): str(engine_full)
        for name, engine_full in client.query(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            parameters={"db": database},
        ).result_rows
    }
    statements = [
        s.replace("{db}", f"`{database}`") for s in ttl_changes(engines, columns, ttl_days)
    ]
    for statement in statements:
        client.command(statement)
    return statements

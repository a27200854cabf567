"""Versioned, idempotent ClickHouse migrations, for one node or a cluster.

Files ``schemas/clickhouse/NNNN_name.sql`` run in order; each applied version is recorded in
``schema_migrations``. Every statement is itself idempotent (IF NOT EXISTS), so a run that died
between a statement and its record is simply repeated.

The SQL files are templates with a few placeholders, so one file serves both layouts:

- ``{db}`` the database; ``{ttl:Column}`` the retention clause of the statement's table on that
  column (or nothing when the table keeps data forever);
- ``{local:name}`` a storage table: ``name`` on one node, ``name_local`` in a cluster;
- ``{engine:XMergeTree}`` ``XMergeTree`` on one node, ``ReplicatedXMergeTree(...)`` in a cluster;
- ``{on_cluster}`` nothing on one node, `` ON CLUSTER `name` `` in a cluster;
- a line starting ``{text}`` is kept only on servers with text indexes (ClickHouse >= 26.2), a
  line starting ``{bloom}`` only on older ones: the exporter picks its indexes the same way;
- a line starting ``{cluster}`` is kept only in a cluster, where ``{distributed:name}`` is the
  ``Distributed`` table over ``name_local`` (for migrations that replace a storage table).

In cluster mode every storage table additionally gets a ``Distributed`` table under the plain
name, so the sink and analysts use the same table names in both layouts.

A third layout, *sharded* (``Layout.shards``: the native ``host:port`` of every shard), is the
one that runs for real on the local ClickHouse (chdb's server reads no ``remote_servers``,
``macros`` or ``keeper_server``, docs/adr/0013-clickhouse-cluster-mode.md): every node gets
plain ``*MergeTree`` ``name_local`` tables, migrated node by node (:func:`migrate_sharded`),
and the plain name is a ``remote()`` table over all shards with the same sharding key, a
``Distributed`` storage whose shard list is written in the DDL instead of a config file.

Retention is not frozen at creation: :func:`sync_ttl` compares each table's TTL with its
retention and alters it. A retention is either one number of days for every table (tests,
tools) or a mapping from storage table to days (``Settings.retention_days()``); 0 or a
missing table: keep forever.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from schemas.merge_width import DEFAULT_SPAN_MERGE_BASE, sync_merge_width
from schemas.part_storage import DEFAULT_PACKED_PART_BYTES, sync_part_storage
from schemas.table_settings import run_changes, table_engines

Retention = int | Mapping[str, int]


def days_for(retention: Retention, table: str) -> int:
    """Days ``table`` keeps its rows under ``retention`` (0: forever)."""
    if isinstance(retention, int):
        return retention
    return int(retention.get(table, 0))


_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_TTL = re.compile(r"\{ttl:(\w+)\}")
_LOCAL = re.compile(r"\{local:(\w+)\}")
_ENGINE = re.compile(r"\{engine:(\w*MergeTree)\}")
_DISTRIBUTED = re.compile(r"\{distributed:(\w+)\}")
# A staging table (created, filled, then renamed over the real one) gets no Distributed table.
_STAGING_SUFFIX = "_next"
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


# The first ClickHouse release whose ``text`` index the exporter uses (and so do we).
TEXT_INDEX_SINCE = (26, 2)


def has_text_index(server_version: str) -> bool:
    """``"26.9.2.1"`` -> True: does this server get text indexes instead of bloom filters?"""
    parts = re.findall(r"\d+", server_version)[:2]
    if len(parts) < 2:
        return False
    return (int(parts[0]), int(parts[1])) >= TEXT_INDEX_SINCE


@dataclass(frozen=True)
class Layout:
    """How to render the templates: one node (``cluster=None``) or a named cluster.

    ``text_indexes`` says which index family ``{text}``/``{bloom}`` lines select; rendering
    without a server (``--print-sql``, cluster DDL) assumes a current server.
    """

    database: str
    retention: Retention = 0
    cluster: str | None = None
    text_indexes: bool = True
    shards: tuple[str, ...] = ()

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""

    @property
    def split(self) -> bool:
        """Storage tables are ``name_local`` behind a table of the plain name."""
        return bool(self.cluster or self.shards)

    def local(self, table: str) -> str:
        return f"{table}_local" if self.split else table

    def engine(self, family: str) -> str:
        return f"Replicated{family}({REPLICA_PATH})" if self.cluster else family

    def shard_table(self, table: str) -> str:
        """Sharded layout: the plain-name table reading and writing ``table_local`` of every
        shard. ``CREATE OR REPLACE`` because its columns are copied from the local table at
        creation: re-created after every migration run, it follows added columns."""
        key = SHARDING_KEYS.get(table, "rand()")
        db = f"`{self.database}`"
        shards = ",".join(self.shards)
        return (
            f"CREATE OR REPLACE TABLE {db}.{table} AS "
            f"remote('{shards}', '{self.database}', '{table}_local', {key})"
        )

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

    def statements(
        self,
        database: str,
        retention: Retention,
        cluster: str | None = None,
        text_indexes: bool = True,
    ) -> list[str]:
        return render(self.sql, Layout(database, retention, cluster, text_indexes))

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


def _ttl_clause(match: re.Match[str], days: int) -> str:
    return f"TTL {ttl_expression(match.group(1), days)}" if days > 0 else ""


def render(sql: str, layout: Layout) -> list[str]:
    """Template -> executable statements (plus Distributed tables in cluster mode)."""
    out: list[str] = []
    for template in _split_statements(_select_lines(sql, layout)):
        template = template.strip()
        if not template:
            continue
        text = template.replace("{db}", f"`{layout.database}`").replace(
            "{on_cluster}", layout.on_cluster
        )
        table = _STORAGE_TABLE.search(template)
        days = days_for(layout.retention, table.group(1)) if table else 0
        text = _TTL.sub(functools.partial(_ttl_clause, days=days), text)
        text = _DISTRIBUTED.sub(lambda m: layout.distributed(m.group(1)), text)
        text = _LOCAL.sub(lambda m: layout.local(m.group(1)), text)
        text = _ENGINE.sub(lambda m: layout.engine(m.group(1)), text)
        out.append(text)
        if layout.cluster and table and not table.group(1).endswith(_STAGING_SUFFIX):
            out.append(layout.distributed(table.group(1)))
    return out


def _select_lines(sql: str, layout: Layout) -> str:
    keep = ["{text}" if layout.text_indexes else "{bloom}"]
    drop = ["{bloom}" if layout.text_indexes else "{text}"]
    # {cluster} lines maintain Distributed tables; the sharded layout re-creates its own.
    (keep if layout.cluster else drop).append("{cluster}")
    lines = []
    for line in sql.splitlines():
        if any(line.startswith(p) for p in drop):
            continue
        for prefix in keep:
            line = line.removeprefix(prefix)
        lines.append(line)
    return "\n".join(lines) + "\n"


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


def render_all(database: str, retention: Retention = 0, cluster: str | None = None) -> list[str]:
    """Every statement a fresh install runs, in order (used for cluster DDL review and tests)."""
    layout = Layout(database, retention, cluster)
    out = [f"CREATE DATABASE IF NOT EXISTS `{database}`{layout.on_cluster}"]
    out += render(MIGRATIONS_TABLE_DDL, layout)
    for mig in load_migrations():
        out += render(mig.sql, layout)
    return out


def migrate(
    client: Any,
    database: str,
    retention: Retention = 0,
    text_indexes: bool | None = None,
    packed_part_bytes: int = DEFAULT_PACKED_PART_BYTES,
    span_merge_base: int = DEFAULT_SPAN_MERGE_BASE,
) -> list[int]:
    """Apply pending migrations with a clickhouse-connect client; returns versions applied.

    Afterwards the retention of every table is brought in line with ``retention``, its
    packed-part threshold with ``packed_part_bytes`` (schemas/part_storage.py) and the span
    table's merge width with ``span_merge_base`` (schemas/merge_width.py), so changing the
    settings and re-running ``tracehouse migrate`` applies them to existing tables too.
    ``text_indexes`` None: decided by the server's version (the bench forces each family).
    """
    if text_indexes is None:
        text_indexes = has_text_index(str(client.command("SELECT version()")))
    layout = Layout(database, retention, text_indexes=text_indexes)
    applied = _migrate_node(client, layout)
    sync_ttl(client, database, retention)
    sync_part_storage(client, database, storage_tables(), packed_part_bytes)
    sync_merge_width(client, database, span_merge_base)
    return applied


def migrate_sharded(
    clients: Sequence[Any],
    shards: Sequence[str],
    database: str,
    retention: Retention = 0,
    packed_part_bytes: int = DEFAULT_PACKED_PART_BYTES,
    span_merge_base: int = DEFAULT_SPAN_MERGE_BASE,
) -> list[int]:
    """The sharded layout: migrate every node's local tables, then (re)create the tables of
    the plain names over all ``shards`` on every node, then each node's TTLs.

    ``clients[i]`` talks to the server at ``shards[i]`` (its native ``host:port`` as the other
    servers reach it). Nodes are migrated one after the other, each recording its versions in
    its own ``schema_migrations_local``, so a node added later or one that missed a run
    catches up on the next run; the shard tables come last because their columns are copied
    from the local tables. Returns the versions any node applied.
    """
    if len(clients) != len(shards) or not shards:
        raise ValueError("one client per shard address, at least one")
    applied: set[int] = set()
    for client in clients:
        text_indexes = has_text_index(str(client.command("SELECT version()")))
        layout = Layout(database, retention, text_indexes=text_indexes, shards=tuple(shards))
        applied.update(_migrate_node(client, layout))
    for client in clients:
        for table in storage_tables():
            client.command(layout.shard_table(table))
        sync_ttl(client, database, retention, local_suffix="_local")
        sync_part_storage(
            client, database, storage_tables(), packed_part_bytes, local_suffix="_local"
        )
        sync_merge_width(client, database, span_merge_base, local_suffix="_local")
    return sorted(applied)


def storage_tables() -> list[str]:
    """Every storage table the migrations leave behind (staging tables are renamed away)."""
    names: list[str] = []
    for mig in load_migrations():
        for statement in _split_statements(mig.sql):
            for m in _STORAGE_TABLE.finditer(statement):
                if not m.group(1).endswith(_STAGING_SUFFIX) and m.group(1) not in names:
                    names.append(m.group(1))
    return names


def _migrate_node(client: Any, layout: Layout) -> list[int]:
    """Pending migrations of one server (one node, or one shard's local tables)."""
    database = layout.database
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    for statement in render(MIGRATIONS_TABLE_DDL, layout):
        client.command(statement)
    record = f"`{database}`.{layout.local('schema_migrations')}"
    done = {row[0] for row in client.query(f"SELECT version FROM {record} FINAL").result_rows}
    applied = []
    for mig in load_migrations():
        if mig.version in done:
            continue
        for statement in render(mig.sql, layout):
            client.command(statement)
        client.insert(record, [[mig.version, mig.name]], column_names=["version", "name"])
        applied.append(mig.version)
    return applied


def ttl_changes(
    current_engine_full: dict[str, str],
    ttl_columns: dict[str, str],
    retention: Retention,
    local_suffix: str = "",
) -> list[str]:
    """ALTERs that make each table's TTL match ``retention`` (pure: compares engine_full text).

    ``local_suffix`` ``"_local"``: the sharded layout, where the rows (and the TTL) live in
    ``name_local`` and retention is still configured per plain name."""
    out = []
    for name, column in sorted(ttl_columns.items()):
        table = f"{name}{local_suffix}"
        engine_full = current_engine_full.get(table)
        if engine_full is None:
            continue
        ttl_days = days_for(retention, name)
        has_ttl = " TTL " in f" {engine_full} "
        wanted = ttl_expression(column, ttl_days)
        if ttl_days <= 0 and has_ttl:
            out.append(f"ALTER TABLE {{db}}.{table} REMOVE TTL")
        elif ttl_days > 0 and wanted not in engine_full:
            out.append(f"ALTER TABLE {{db}}.{table} MODIFY TTL {wanted}")
    return out


def sync_ttl(client: Any, database: str, retention: Retention, local_suffix: str = "") -> list[str]:
    """Apply :func:`ttl_changes`; parts written earlier get the new TTL recalculated."""
    columns: dict[str, str] = {}
    for mig in load_migrations():
        columns.update(mig.ttl_columns())
    changes = ttl_changes(table_engines(client, database), columns, retention, local_suffix)
    return run_changes(client, database, changes)

"""`tracehouse backup` / `tracehouse restore`: ClickHouse's own BACKUP and RESTORE.

ClickHouse copies the parts of MergeTree tables consistently and incrementally-capable on its
side, so tracehouse only names the tables and the destination; nothing streams through this
process. The destination is a disk the server declares for backups (the local server's
``backups`` disk lives under its data directory, deploy/local/clickhouse_server.py) or an S3
prefix whose credentials the server holds (never passed on the command line).

Restore goes into tables that are missing or empty only: ClickHouse refuses to add a backup
to a table that has rows (``allow_non_empty_tables`` would duplicate them), and this module
says which tables those are before asking it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# What a backup holds: spans, the trace-id lookup, RED (raw and hourly), the service graph,
# the pipeline counters, the adaptive-sampling probabilities and the archive (kept forever,
# the one table retention never refills). Left out on purpose: `sink_batches`, the sink's
# exactly-once intents: they describe Kafka offsets of the moment, and restoring old intents
# next to newer offsets would make the sink skip or replay the wrong batches.
BACKUP_TABLES = (
    "otel_traces",
    "otel_traces_trace_id_ts",
    "red_metrics",
    "red_metrics_1h",
    "service_graph_edges",
    "pipeline_counters",
    "sampling_probabilities",
    "otel_traces_archive",
)

DEFAULT_DISK = "backups"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class BackupError(RuntimeError):
    """A backup or restore that cannot go ahead; the message says what to change."""


@dataclass(frozen=True)
class Destination:
    """Where a backup lives: ``Disk(disk, 'name/')`` or ``S3('url/name/')``."""

    name: str
    disk: str = DEFAULT_DISK
    s3_url: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise BackupError(
                f"backup name {self.name!r}: use letters, digits, '.', '_' and '-' only "
                "(it becomes a directory under the backups disk or S3 prefix)"
            )
        if self.s3_url and not self.s3_url.startswith(("https://", "http://")):
            raise BackupError(f"--s3 {self.s3_url!r} must be an http(s):// URL of a prefix")

    def sql(self) -> str:
        if self.s3_url:
            return f"S3({_quote(self.s3_url.rstrip('/') + '/' + self.name + '/')})"
        return f"Disk({_quote(self.disk)}, {_quote(self.name + '/')})"


def default_name(now: datetime | None = None) -> str:
    """``tracehouse-20261202T013000Z``: sortable, one per second."""
    return (now or datetime.now(UTC)).strftime("tracehouse-%Y%m%dT%H%M%SZ")


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def table_list(database: str, tables: tuple[str, ...]) -> str:
    return ", ".join(f"TABLE {_ident(database)}.{_ident(t)}" for t in tables)


def backup_sql(database: str, tables: tuple[str, ...], dest: Destination) -> str:
    return f"BACKUP {table_list(database, tables)} TO {dest.sql()}"


def restore_sql(database: str, tables: tuple[str, ...], dest: Destination) -> str:
    return f"RESTORE {table_list(database, tables)} FROM {dest.sql()}"


def existing_tables(client: Any, database: str) -> tuple[str, ...]:
    """The backup tables present in ``database``, in ``BACKUP_TABLES`` order."""
    rows = client.query(
        "SELECT name FROM system.tables WHERE database = {db:String}", parameters={"db": database}
    ).result_rows
    present = {r[0] for r in rows}
    return tuple(t for t in BACKUP_TABLES if t in present)


def non_empty_tables(client: Any, database: str, tables: tuple[str, ...]) -> dict[str, int]:
    """Tables among ``tables`` that exist and have rows (a restore would be refused)."""
    rows = client.query(
        "SELECT name, total_rows FROM system.tables WHERE database = {db:String}",
        parameters={"db": database},
    ).result_rows
    return {name: int(n) for name, n in rows if name in tables and n}


def backup(client: Any, database: str, dest: Destination) -> tuple[str, ...]:
    """Back up every backup table that exists; returns the tables written."""
    tables = existing_tables(client, database)
    if not tables:
        raise BackupError(f"no tracehouse tables in database {database!r} (run migrate first?)")
    status = client.query(backup_sql(database, tables, dest)).result_rows[0][1]
    if status != "BACKUP_CREATED":
        raise BackupError(f"ClickHouse reported {status} for {dest.sql()}")
    return tables


def restore(client: Any, database: str, dest: Destination) -> tuple[str, ...]:
    """Restore every backup table into a missing or empty table; returns the tables restored.

    The database is created if missing (tables ClickHouse recreates from the backup's DDL).
    Non-empty tables are refused up front, naming them: drop or truncate them first.
    """
    client.command(f"CREATE DATABASE IF NOT EXISTS {_ident(database)}")
    full = non_empty_tables(client, database, BACKUP_TABLES)
    if full:
        listed = ", ".join(f"{t} ({n} rows)" for t, n in full.items())
        raise BackupError(
            f"restore goes into empty tables only; these have rows: {listed}. "
            "TRUNCATE or DROP them first"
        )
    status = client.query(restore_sql(database, BACKUP_TABLES, dest)).result_rows[0][1]
    if status != "RESTORED":
        raise BackupError(f"ClickHouse reported {status} for {dest.sql()}")
    return BACKUP_TABLES

"""Versioned, idempotent ClickHouse migrations.

Files ``schemas/clickhouse/NNNN_name.sql`` run in order; each applied version is recorded in
``schema_migrations``. Every statement is itself idempotent (IF NOT EXISTS), so a run that died
between a statement and its record is simply repeated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, database: str, ttl_days: int) -> list[str]:
        text = _render(self.sql, database, ttl_days)
        return [s.strip() for s in _split_statements(text) if s.strip()]


def _ttl(column: str, ttl_days: int) -> str:
    return f"TTL toDateTime({column}) + toIntervalDay({ttl_days})" if ttl_days > 0 else ""


def _render(sql: str, database: str, ttl_days: int) -> str:
    return (
        sql.replace("{db}", f"`{database}`")
        .replace("{ttl_timestamp}", _ttl("Timestamp", ttl_days))
        .replace("{ttl_start}", _ttl("Start", ttl_days))
    )


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


def migrate(client: Any, database: str, ttl_days: int = 0) -> list[int]:
    """Apply pending migrations with a clickhouse-connect client; returns versions applied."""
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    client.command(
        f"CREATE TABLE IF NOT EXISTS `{database}`.schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3) DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
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
    return applied

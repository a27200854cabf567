"""The retention part of `tracehouse status`: per table, how long data is kept (the
``retention_*`` settings), the TTL the server actually has, and the oldest and newest row.

Oldest/newest are ``min``/``max`` of the table's time column, which ClickHouse answers from
the partition key's min/max index (every table here is partitioned by its time column), so
the report costs metadata reads, not a scan.
"""

from __future__ import annotations

from typing import Any

from core.settings import Settings
from schemas.migrations import load_migrations

# Kept forever by design (POST /api/archive), shown so operators see it is not forgotten.
ARCHIVE = ("otel_traces_archive", "Timestamp")


def time_columns() -> dict[str, str]:
    """Storage table -> the column its retention is measured on (from the migrations)."""
    out: dict[str, str] = {}
    for mig in load_migrations():
        out.update(mig.ttl_columns())
    return out


def collect(client: Any, settings: Settings) -> list[dict[str, Any]]:
    keep = settings.retention_days()
    engines = {
        str(name): str(engine)
        for name, engine in client.query(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            parameters={"db": settings.clickhouse_database},
        ).result_rows
    }
    out = []
    for table, column in [*sorted(time_columns().items()), ARCHIVE]:
        if table not in engines:
            continue
        oldest, newest, rows = client.query(
            f"SELECT min({column}), max({column}), count() FROM `{table}`"
        ).result_rows[0]
        empty = int(rows) == 0
        out.append(
            {
                "table": table,
                "keep_days": keep.get(table, 0),
                # Sharded (ADR 0013): the TTL is on each shard's local table.
                "server_ttl": " TTL " in f" {engines.get(f'{table}_local', engines[table])} ",
                "oldest": None if empty else str(oldest),
                "newest": None if empty else str(newest),
            }
        )
    return out


def render(rows: list[dict[str, Any]] | str) -> list[str]:
    lines = ["Retention (kept / oldest row / newest row):"]
    if isinstance(rows, str):
        return [*lines, f"  {rows}"]
    for r in rows:
        kept = f"{r['keep_days']} days" if r["keep_days"] else "forever"
        if bool(r["keep_days"]) != r["server_ttl"]:
            kept += " (server differs: run `tracehouse migrate`)"
        span = f"{r['oldest']} .. {r['newest']}" if r["oldest"] else "empty"
        lines.append(f"  {r['table']:<28} {kept:<12} {span}")
    return lines

"""Bring one MergeTree setting of some tables to a wanted value (the pure part, and its run).

Table-level MergeTree settings that the project tunes (the packed-part threshold,
``schemas/part_storage.py``; the merge width of ``otel_traces``, ``schemas/merge_width.py``)
are applied by ``tracehouse migrate`` after the migrations, like retention: the table's DDL
(``system.tables.engine_full``) says what it has, and only a difference is altered, so running
it again changes nothing and changing the setting applies it to existing tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any


def current_value(engine_full: str, setting: str, default: int) -> int:
    """The table's ``setting`` as its DDL states it (absent: ``default``, the server's)."""
    match = re.search(rf"(?<![\w.]){re.escape(setting)}\s*=\s*(\d+)", engine_full)
    return int(match.group(1)) if match else default


def setting_changes(
    engine_full: Mapping[str, str],
    tables: Iterable[str],
    setting: str,
    value: int,
    default: int,
    local_suffix: str = "",
) -> list[str]:
    """ALTERs that give each of ``tables`` ``setting = value`` (``{db}`` left for the caller).

    ``value == default`` (the server's own) resets the setting instead of writing it, so the
    DDL stays as plain as ClickHouse's. A table missing from ``engine_full`` (not created in
    this layout) or not a MergeTree is skipped.
    """
    out = []
    for name in tables:
        table = f"{name}{local_suffix}"
        ddl = engine_full.get(table)
        if ddl is None or "MergeTree" not in ddl:
            continue
        if current_value(ddl, setting, default) == value:
            continue
        if value == default:
            out.append(f"ALTER TABLE {{db}}.{table} RESET SETTING {setting}")
        else:
            out.append(f"ALTER TABLE {{db}}.{table} MODIFY SETTING {setting} = {value}")
    return out


def table_engines(client: Any, database: str) -> dict[str, str]:
    """``system.tables.engine_full`` of every table of ``database``."""
    return {
        str(name): str(engine)
        for name, engine in client.query(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            parameters={"db": database},
        ).result_rows
    }


def run_changes(client: Any, database: str, statements: list[str]) -> list[str]:
    """Run statements with ``{db}`` left open (:func:`setting_changes`, and the TTL changes of
    ``schemas.migrations``) in ``database``; returns them as run."""
    out = [s.replace("{db}", f"`{database}`") for s in statements]
    for statement in out:
        client.command(statement)
    return out

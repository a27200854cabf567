"""Packed part storage for small parts: one file per part instead of one per column stream.

Why: every sink insert makes a new part in ``otel_traces`` (and in the trace-id lookup, the
intents, the rollups). A part in ClickHouse's "full" storage is a directory with a file per
column stream, mark file and index substream: 43 files for a small compact ``otel_traces``
part, 159 for a wide one (text indexes alone add 30). Creating and later deleting them costs
the server more than writing the rows does at tracing's insert rate: profiled under 20k spans/s
on ext4, a third of ClickHouse's CPU was the kernel allocating inodes (docs/perf.md). A
*packed* part keeps its files in one archive (``data.packed``); merges turn parts above the
threshold back into full storage, so large, long-lived parts read as before
(docs/adr/0016-packed-small-parts.md).

ClickHouse reads packed parts only from the release that open-sourced them; a server older than
that cannot read a table once it holds one, so the setting is applied only where the server
supports it, and ``packed_part_bytes = 0`` turns it off (new parts full; packed ones stay
readable and are rewritten as full by their next merge).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from core.settings import PACKED_PART_BYTES
from schemas.table_settings import current_value, run_changes, setting_changes, table_engines

SETTING = "min_bytes_for_full_part_storage"

# The first release we verified writes and reads packed parts (the pinned local server). The
# feature was open-sourced in mid-2026; earlier releases list the setting as Cloud-only.
PACKED_PARTS_SINCE = (26, 9)

# The setting's default (``clickhouse.packed_part_bytes``), for callers without settings.
DEFAULT_PACKED_PART_BYTES = PACKED_PART_BYTES


def has_packed_parts(server_version: str) -> bool:
    """``"26.9.2.1"`` -> True: can this server write (and read) packed parts?"""
    parts = re.findall(r"\d+", server_version)[:2]
    if len(parts) < 2:
        return False
    return (int(parts[0]), int(parts[1])) >= PACKED_PARTS_SINCE


def current_threshold(engine_full: str) -> int:
    """The table's packed-part threshold as its DDL states it (absent: 0, always full)."""
    return current_value(engine_full, SETTING, 0)


def part_storage_changes(
    engine_full: Mapping[str, str],
    tables: Iterable[str],
    packed_part_bytes: int,
    local_suffix: str = "",
) -> list[str]:
    """ALTERs that give each of ``tables`` the threshold ``packed_part_bytes`` (pure).

    ``engine_full`` maps the database's table names to ``system.tables.engine_full``; a table
    missing there is skipped (not created in this layout). ``{db}`` is left for the caller.
    """
    if packed_part_bytes < 0:
        raise ValueError(f"packed_part_bytes must be >= 0, got {packed_part_bytes}")
    return setting_changes(engine_full, tables, SETTING, packed_part_bytes, 0, local_suffix)


def sync_part_storage(
    client: Any,
    database: str,
    tables: Iterable[str],
    packed_part_bytes: int,
    local_suffix: str = "",
) -> list[str]:
    """Apply :func:`part_storage_changes` where the server supports packed parts; returns the
    statements run (none on an older server: its tables keep full storage)."""
    if not has_packed_parts(str(client.command("SELECT version()"))):
        return []
    engines = table_engines(client, database)
    changes = part_storage_changes(engines, tables, packed_part_bytes, local_suffix)
    return run_changes(client, database, changes)

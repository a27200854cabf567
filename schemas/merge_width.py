"""How wide ``otel_traces`` merges are: fewer, wider merges rewrite each span fewer times.

Why: every sink insert is a small part, and ClickHouse's merge selector combines parts of
similar size as soon as a few are there (its ``merge_selector_base``, 5 by default), so a span
is rewritten once per level on its way to a large part. In the pinned server, writing and
merging a span cost about the same (~5 µs each, docs/perf.md), and under a sustained keep-all
load merges were over half of ClickHouse's CPU. A larger base waits for more parts of a level
before merging them, so each span is rewritten fewer times, at the price of more active parts
(a level holds up to about ``base`` parts before it is merged).

Only ``otel_traces`` (its local table in a sharded layout) is tuned: the rollups and the
trace-id lookup are small or aggregate in merges, where fewer parts matter more than the
rewrite (docs/adr/0018-wider-span-merges.md). ``tracehouse migrate`` applies a change to
existing tables; the server's default resets the setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.settings import SPAN_MERGE_BASE
from schemas.table_settings import run_changes, setting_changes, table_engines

SETTING = "merge_selector_base"

# ClickHouse's own value: written as a RESET, so the DDL says nothing.
SERVER_DEFAULT = 5

# The tables whose merges are widened.
TABLES = ("otel_traces",)

# The setting's default (``clickhouse.span_merge_base``), for callers without settings.
DEFAULT_SPAN_MERGE_BASE = SPAN_MERGE_BASE


def merge_width_changes(
    engine_full: Mapping[str, str], base: int, local_suffix: str = ""
) -> list[str]:
    """ALTERs that give the span table ``merge_selector_base = base`` (pure)."""
    if base < 2:
        raise ValueError(f"span merge base must be >= 2, got {base}")
    return setting_changes(engine_full, TABLES, SETTING, base, SERVER_DEFAULT, local_suffix)


def sync_merge_width(client: Any, database: str, base: int, local_suffix: str = "") -> list[str]:
    """Apply :func:`merge_width_changes`; returns the statements run."""
    changes = merge_width_changes(table_engines(client, database), base, local_suffix)
    return run_changes(client, database, changes)

"""Row counts per table, for operators and for the drain checks of tests and benchmarks."""

from __future__ import annotations

from typing import Any


def table_row_counts(client: Any, database: str) -> dict[str, int]:
    rows = client.query(
        "SELECT name, total_rows FROM system.tables "
        "WHERE database = {db:String} AND engine LIKE '%MergeTree%' ORDER BY name",
        parameters={"db": database},
    ).result_rows
    return {str(name): int(total or 0) for name, total in rows}


def span_count(client: Any, database: str) -> int:
    return int(client.command(f"SELECT count() FROM `{database}`.otel_traces"))

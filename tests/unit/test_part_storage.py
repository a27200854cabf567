"""Packed small parts: which ALTERs bring a table's threshold to the setting (pure part)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import Settings
from schemas.migrations import storage_tables
from schemas.part_storage import (
    DEFAULT_PACKED_PART_BYTES,
    SETTING,
    current_threshold,
    has_packed_parts,
    part_storage_changes,
)
from tests.unit.setting_ddl import ddl_after

BASE = "ReplacingMergeTree PARTITION BY toDate(T) ORDER BY k SETTINGS index_granularity = 8192"


def _with(threshold: int) -> str:
    return f"{BASE}, {SETTING} = {threshold}" if threshold else BASE


def test_only_servers_that_read_packed_parts_get_them() -> None:
    assert has_packed_parts("26.9.2.1") and has_packed_parts("27.1") and has_packed_parts("30.0")
    assert not has_packed_parts("26.8.1.1") and not has_packed_parts("25.8.3.1")
    assert not has_packed_parts("") and not has_packed_parts("head")


def test_the_default_is_the_settings_default() -> None:
    assert Settings().clickhouse_packed_part_bytes == DEFAULT_PACKED_PART_BYTES > 0


def test_every_storage_table_of_one_node_gets_the_threshold() -> None:
    tables = storage_tables()
    engines = {t: BASE for t in tables}
    engines["otel_traces_sharded"] = "Distributed(x)"  # not a MergeTree: never altered
    statements = part_storage_changes(engines, [*tables, "otel_traces_sharded"], 1 << 20)
    assert len(statements) == len(tables)
    assert all(s.endswith(f"MODIFY SETTING {SETTING} = 1048576") for s in statements)
    assert "otel_traces" in tables and "sink_batches" in tables


def test_sharded_layout_alters_the_local_tables() -> None:
    engines = {"otel_traces_local": BASE, "otel_traces": "Distributed(x)"}
    [statement] = part_storage_changes(engines, ["otel_traces"], 5, local_suffix="_local")
    assert statement == f"ALTER TABLE {{db}}.otel_traces_local MODIFY SETTING {SETTING} = 5"


def test_zero_resets_the_setting_and_missing_tables_are_skipped() -> None:
    engines = {"a": _with(7), "b": BASE}
    assert part_storage_changes(engines, ["a", "b", "gone"], 0) == [
        f"ALTER TABLE {{db}}.a RESET SETTING {SETTING}"
    ]


def test_negative_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        part_storage_changes({"a": BASE}, ["a"], -1)


@given(
    before=st.integers(min_value=0, max_value=(1 << 63) - 1),
    wanted=st.integers(min_value=0, max_value=(1 << 63) - 1),
)
def test_one_run_brings_the_table_to_the_setting_and_a_second_changes_nothing(
    before: int, wanted: int
) -> None:
    ddl = _with(before)
    assert current_threshold(ddl) == before
    statements = part_storage_changes({"t": ddl}, ["t"], wanted)
    assert len(statements) == (before != wanted)
    after = ddl_after(ddl, statements[0], SETTING) if statements else ddl
    assert current_threshold(after) == wanted
    assert part_storage_changes({"t": after}, ["t"], wanted) == []


def test_a_similar_setting_name_is_not_read_as_the_threshold() -> None:
    assert current_threshold(f"{BASE}, x_{SETTING} = 9") == 0

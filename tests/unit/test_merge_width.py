"""Wider span merges: which ALTERs bring otel_traces' merge_selector_base to the setting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import Settings
from schemas.merge_width import (
    DEFAULT_SPAN_MERGE_BASE,
    SERVER_DEFAULT,
    SETTING,
    merge_width_changes,
)
from schemas.table_settings import current_value
from tests.unit.setting_ddl import ddl_after

BASE = "MergeTree PARTITION BY toDate(Timestamp) ORDER BY (ServiceName) SETTINGS x = 1"


def _with(value: int) -> str:
    return f"{BASE}, {SETTING} = {value}" if value != SERVER_DEFAULT else BASE


def test_the_default_widens_merges_and_is_the_settings_default() -> None:
    assert Settings().clickhouse_span_merge_base == DEFAULT_SPAN_MERGE_BASE > SERVER_DEFAULT


def test_only_the_span_table_is_altered() -> None:
    engines = {"otel_traces": BASE, "otel_traces_trace_id_ts": BASE, "sink_batches": BASE}
    assert merge_width_changes(engines, 16) == [
        f"ALTER TABLE {{db}}.otel_traces MODIFY SETTING {SETTING} = 16"
    ]


def test_sharded_layout_alters_the_local_table_never_the_distributed_one() -> None:
    engines = {"otel_traces_local": BASE, "otel_traces": "Distributed(c, db, otel_traces_local)"}
    assert merge_width_changes(engines, 9, local_suffix="_local") == [
        f"ALTER TABLE {{db}}.otel_traces_local MODIFY SETTING {SETTING} = 9"
    ]
    assert merge_width_changes({"otel_traces": "Distributed(x)"}, 9) == []


def test_the_servers_default_resets_and_a_missing_table_is_skipped() -> None:
    assert merge_width_changes({"otel_traces": _with(16)}, SERVER_DEFAULT) == [
        f"ALTER TABLE {{db}}.otel_traces RESET SETTING {SETTING}"
    ]
    assert merge_width_changes({}, 16) == []


@pytest.mark.parametrize("base", [-1, 0, 1])
def test_a_base_below_two_is_refused(base: int) -> None:
    with pytest.raises(ValueError, match=">= 2"):
        merge_width_changes({"otel_traces": BASE}, base)


@given(before=st.integers(2, 10**6), wanted=st.integers(2, 10**6))
def test_one_run_brings_the_table_to_the_setting_and_a_second_changes_nothing(
    before: int, wanted: int
) -> None:
    ddl = _with(before)
    assert current_value(ddl, SETTING, SERVER_DEFAULT) == before
    statements = merge_width_changes({"otel_traces": ddl}, wanted)
    assert len(statements) == (before != wanted)
    after = ddl_after(ddl, statements[0], SETTING) if statements else ddl
    assert current_value(after, SETTING, SERVER_DEFAULT) == wanted
    assert merge_width_changes({"otel_traces": after}, wanted) == []


def test_a_longer_setting_name_is_not_read_as_this_one() -> None:
    ddl = f"{BASE}, x_{SETTING} = 9, {SETTING}_extra = 7"
    assert current_value(ddl, SETTING, SERVER_DEFAULT) == SERVER_DEFAULT

"""The span caps computed inside ClickHouse equal query.span_reads.per_trace_limit's.

A read of several traces is one statement whose window functions cut each trace to its first
spans by start time at the water-filling level; here that cut, on real ClickHouse, is compared
with the Python reference for many trace sizes and caps, through both stores (v1 and api_v3)
and through the v1 path that counts first (several ids, archive on).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from core.clickhouse import connect
from deploy.local.stack import LocalStack
from query.span_reads import per_trace_limit
from query.store import TraceStore
from query.v3_store import V3Store
from tests.conftest import isolated_settings
from tests.integration.query_stack import store_rows

NOW_NS = 1_790_000_000_000_000_000
SIZES = [1, 2, 3, 5, 8, 13, 21, 40]


def _rows() -> list[dict[str, Any]]:
    rng = random.Random(5)
    rows = []
    for t, size in enumerate(SIZES):
        for s in range(size):
            start = NOW_NS + rng.randint(0, 10**9)  # shuffled start order; ties are rare
            rows.append(
                {
                    "trace_id": f"{t + 1:032x}",
                    "span_id": f"{t + 1:08x}{s:08x}",
                    "name": "op",
                    "kind": 2,
                    "service_name": "svc",
                    "start_time_unix_nano": start,
                    "end_time_unix_nano": start + 1000,
                    "status_code": 0,
                }
            )
    rng.shuffle(rows)
    return rows


@pytest.fixture(scope="module")
def stores(services: LocalStack) -> Iterator[tuple[TraceStore, V3Store, list]]:
    settings = isolated_settings(services)
    LocalStack(settings, services.run_dir, say=lambda _m: None).prepare()
    rows = _rows()
    store_rows(settings, rows)
    client = connect(settings.clickhouse_url, settings.clickhouse_database)
    yield TraceStore(client), V3Store(client), rows


def _expected(rows: list[dict[str, Any]], ids: list[str], cap: int, budget: int) -> list[str]:
    """Span ids the caps keep, in response order (trace id, then start time, then span id)."""
    by_trace = {t: sorted((r for r in rows if r["trace_id"] == t), key=_order) for t in ids}
    level = per_trace_limit([len(v) for v in by_trace.values() if v], budget, cap)
    kept = [r["span_id"] for t in sorted(by_trace) for r in by_trace[t][:level]]
    return kept[:budget]


def _order(r: dict[str, Any]) -> tuple[int, str]:
    return r["start_time_unix_nano"], r["span_id"]


@pytest.mark.parametrize(
    ("cap", "budget"), [(100, 100), (10, 100), (100, 30), (7, 30), (3, 5), (1, 4), (50, 1)]
)
def test_sql_cut_equals_water_filling(
    stores: tuple[TraceStore, V3Store, list], cap: int, budget: int
) -> None:
    v1, v3, rows = stores
    rng = random.Random(cap * 1000 + budget)
    all_ids = [f"{t + 1:032x}" for t in range(len(SIZES))]
    for ids in [all_ids, rng.sample(all_ids, 3), [all_ids[-1]], [all_ids[-1], "f" * 32]]:
        want = _expected(rows, ids, cap, budget)
        for archive in (False, True):
            read = v1.spans_of("", ids, cap, budget, archive=archive)
            got = list(read.rows)
            assert [r[1] for r in got] == want, (ids, archive)
            # Each returned trace says how many spans it has stored (the truncation warning).
            assert read.stored == {r[0]: SIZES[int(r[0], 16) - 1] for r in got}
        v3_read = v3.spans("", ids, max_per_trace=cap, max_total=budget)
        got = list(v3_read.rows)
        assert [r[1] for r in got] == want
        assert v3_read.stored == {r[0]: SIZES[int(r[0], 16) - 1] for r in got}

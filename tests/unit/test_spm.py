"""The metrics API's math (query/spm.py, query/metrics_api.py) against brute-force oracles."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict

from query.metrics_api import MAX_POINTS, MetricsQuery, metric_family, parse_metrics_query
from query.params import BadRequestError
from query.spm import Slot, error_fraction, histogram_quantile, per_second, window_totals

BOUNDS: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0)

durations_ms = st.lists(
    st.floats(min_value=0, max_value=5000, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=200,
)


def bucketize(values: list[float]) -> list[int]:
    counts = [0] * (len(BOUNDS) + 1)
    for v in values:
        counts[bisect.bisect_left(BOUNDS, v)] += 1
    return counts


@given(durations_ms, st.floats(min_value=0.001, max_value=1.0))
def test_quantile_lies_in_the_bucket_holding_the_rank(values: list[float], q: float) -> None:
    counts = bucketize(values)
    top = max(values)
    got = histogram_quantile(q, BOUNDS, counts, top)
    # The true q-quantile (nearest rank) lies in the same bucket as the estimate.
    rank = math.ceil(q * len(values))
    true = sorted(values)[max(rank, 1) - 1]
    i = bisect.bisect_left(BOUNDS, true)
    lower = 0.0 if i == 0 else BOUNDS[i - 1]
    upper = min(BOUNDS[i] if i < len(BOUNDS) else top, top)
    assert lower - 1e-9 <= got <= upper + 1e-9
    assert 0 <= got <= top + 1e-9


@given(durations_ms, st.floats(min_value=0.001, max_value=1.0), st.floats(0.001, 1.0))
def test_quantile_is_monotone_in_q(values: list[float], q1: float, q2: float) -> None:
    counts = bucketize(values)
    lo, hi = sorted((q1, q2))
    top = max(values)
    assert (
        histogram_quantile(lo, BOUNDS, counts, top)
        <= histogram_quantile(hi, BOUNDS, counts, top) + 1e-9
    )


def test_quantile_edges() -> None:
    assert math.isnan(histogram_quantile(0.5, BOUNDS, [0] * 12, 0))
    # all in the first bucket: linear from 0 to the observed max (below the bound)
    assert histogram_quantile(0.5, BOUNDS, [4] + [0] * 11, 1.0) == pytest.approx(0.5)
    # all in +Inf: interpolated up to the observed max
    assert histogram_quantile(1.0, BOUNDS, [0] * 11 + [3], 9000.0) == pytest.approx(9000.0)
    assert histogram_quantile(0.5, (10.0,), [1, 1], 30.0) == pytest.approx(10.0)


@given(st.integers(0, 10**12), st.integers(1, 10**10))
def test_rates(calls: int, rate_per_ms: int) -> None:
    assert per_second(calls, rate_per_ms) == pytest.approx(calls / (rate_per_ms / 1000))
    assert error_fraction(0, 0) is None
    assert error_fraction(calls, calls) == (1.0 if calls else None)


slot_lists = st.lists(
    st.builds(
        Slot,
        st.integers(-5, 60),
        st.integers(0, 50),
        st.integers(0, 5),
        st.integers(0, 10**9),
        st.lists(st.integers(0, 9), min_size=3, max_size=3).map(tuple),
    ),
    max_size=30,
)


@given(
    slot_lists,
    slot_lists,
    st.integers(1, 6),
    st.integers(1, 12),
    st.integers(1, 15),
)
def test_window_totals_equal_brute_force(
    a: list[Slot], b: list[Slot], s: int, r: int, points: int
) -> None:
    layouts: dict[tuple[float, ...], Sequence[Slot]] = {(1.0, 2.0): a, (5.0, 9.0): b}
    got = window_totals(layouts, s, r, points)
    for k in range(points):
        inside = {
            bounds: [sl for sl in slots if k * s < sl.slot <= k * s + r]
            for bounds, slots in layouts.items()
        }
        calls = sum(sl.calls for slots in inside.values() for sl in slots)
        errors = sum(sl.errors for slots in inside.values() for sl in slots)
        assert (got[k].calls, got[k].errors) == (calls, errors)
        for bounds, slots in inside.items():
            counts = [sum(sl.counts[i] for sl in slots) for i in range(3)]
            if bounds in got[k].layouts:
                layout_calls, layout_counts, top = got[k].layouts[bounds]
                assert layout_calls == sum(sl.calls for sl in slots)
                assert layout_counts == counts
                assert top == max(sl.max_ns for sl in slots)
            else:
                assert sum(sl.calls for sl in slots) == 0 and not any(counts)


def q(**kw: object) -> MetricsQuery:
    base = dict(
        services=("a",),
        span_kinds=("Server",),
        group_by_operation=False,
        end_ms=10 * 60_000,
        lookback_ms=2 * 60_000,
        step_ms=60_000,
        rate_per_ms=60_000,
    )
    base.update(kw)
    return MetricsQuery(**base)  # type: ignore[arg-type]


def test_metric_family_shape_and_points() -> None:
    # slot g = 60 s; base = start - ratePer = 7 min; point k covers slots (k, k + 1].
    series = {("a", "GET"): {BOUNDS: [Slot(1, 10, 2, 5_000_000, (0,) * 2 + (10,) + (0,) * 9)]}}
    fam = metric_family("calls", q(group_by_operation=True), series)
    assert fam["name"] == "service_operation_call_rate" and fam["type"] == "GAUGE"
    assert fam["help"] == "calls/sec, grouped by service & operation"
    [metric] = fam["metrics"]
    assert metric["labels"] == [
        {"name": "service_name", "value": "a"},
        {"name": "operation", "value": "GET"},
    ]
    values = [p["gaugeValue"]["doubleValue"] for p in metric["metricPoints"]]
    assert values == [10 / 60, 0.0, 0.0]
    assert [p["timestamp"] for p in metric["metricPoints"]] == [
        "1970-01-01T00:08:00Z",
        "1970-01-01T00:09:00Z",
        "1970-01-01T00:10:00Z",
    ]
    errors = metric_family("errors", q(), {("a", ""): series[("a", "GET")]})
    [metric] = errors["metrics"]
    assert [p["gaugeValue"]["doubleValue"] for p in metric["metricPoints"]] == [0.2]
    lat = metric_family("latencies", q(), {("a", ""): series[("a", "GET")]}, 0.95)
    assert lat["help"] == "0.95th quantile latency, grouped by service"
    [metric] = lat["metrics"]
    [point] = metric["metricPoints"]
    assert 4.0 <= point["gaugeValue"]["doubleValue"] <= 5.0  # bucket (4, 6] capped at 5 ms max


def test_metric_family_refuses_more_work_than_the_bound() -> None:
    series: dict[tuple[str, str], dict[tuple[float, ...], Sequence[Slot]]] = {
        ("a", str(i)): {BOUNDS: []} for i in range(200)
    }
    with pytest.raises(BadRequestError, match="exceeds"):
        metric_family("calls", q(lookback_ms=10_999 * 60_000, end_ms=11_000 * 60_000), series)


@given(
    st.dictionaries(
        st.sampled_from(
            ["service", "endTs", "lookback", "step", "ratePer", "spanKind", "groupByOperation"]
        ),
        st.text(max_size=30),
    )
)
def test_parse_metrics_query_refuses_with_a_reason_only(params: dict[str, str]) -> None:
    try:
        got = parse_metrics_query(MultiDict(params), now_ms=1_700_000_000_000)
    except BadRequestError as exc:
        assert str(exc)
        return
    assert got.points <= MAX_POINTS and got.step_ms >= 1 and got.rate_per_ms >= 1
    assert got.lookback_ms <= got.end_ms


def test_parse_metrics_query_defaults_and_repeats() -> None:
    got = parse_metrics_query(
        MultiDict([("service", "a"), ("service", "b"), ("spanKind", "client")]), now_ms=10**12
    )
    assert got.services == ("a", "b") and got.span_kinds == ("Client",)
    assert (got.lookback_ms, got.step_ms, got.rate_per_ms) == (3_600_000, 5_000, 600_000)
    assert got.end_ms == 10**12 and not got.group_by_operation
    assert parse_metrics_query(MultiDict(service="a"), now_ms=10**12).span_kinds == ("Server",)
    for bad in ({"service": "a", "step": "1", "lookback": "86400000"}, {}):
        with pytest.raises(BadRequestError):
            parse_metrics_query(MultiDict(bad), now_ms=10**12)

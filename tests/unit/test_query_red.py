import math

from query.red import (
    MAX_POINTS,
    MAX_STEP_SECONDS,
    choose_step,
    series_from_rows,
    summary_from_rows,
)

S = 1_000_000_000


def test_step_is_a_multiple_of_the_window() -> None:
    assert choose_step(0, 3600 * S) == 30
    assert choose_step(0, 60 * S) == 10
    assert choose_step(0, 86_400 * S) == 720
    assert choose_step(0, 3600 * S, requested=5) == 10
    assert choose_step(0, 3600 * S, requested=3600) == 3600


def test_series_rates_errors_and_layout_merge() -> None:
    rows = [
        (100, "", 30, 3, 5.0, 9.0, 12.0),
        (100, "", 10, 1, 50.0, 90.0, 99.0),  # same point, another bucket layout: fewer calls
        (110, "", 20, 0, 4.0, 8.0, float("nan")),
        (100, "GET /", 5, 5, 1.0, 2.0, 3.0),
    ]
    series = {s["operation"]: s["points"] for s in series_from_rows(rows, step=10)}
    first, second = series[""]
    assert first == {
        "ts": 100_000_000,
        "calls": 40,
        "errors": 4,
        "p50": 5.0,
        "p90": 9.0,
        "p99": 12.0,
        "rate": 4.0,
        "errorRatio": 0.1,
    }
    assert second["p99"] is None and second["errorRatio"] == 0.0
    assert series["GET /"][0]["errorRatio"] == 1.0


def test_summary_rate_over_range() -> None:
    rows = [("api", "GET /", 120, 6, 1.0, 2.0, 3.0), ("api", "POST /", 60, 0, 1.0, 2.0, 3.0)]
    out = summary_from_rows(rows, seconds=60)
    assert [o["operation"] for o in out] == ["GET /", "POST /"]
    assert math.isclose(out[0]["rate"], 2.0) and math.isclose(out[0]["errorRatio"], 0.05)


def test_step_bounds() -> None:
    year = 365 * 86_400 * S
    # Too fine for the range: raised until the range fits MAX_POINTS points.
    assert choose_step(0, 10 * year, requested=10) == 28_670
    assert (10 * year // S) // 28_670 <= MAX_POINTS
    # The whole DateTime64 range still gets a step that fits toIntervalSecond's UInt32.
    assert choose_step(0, 2**63 - 1) <= MAX_STEP_SECONDS < 2**32
    assert choose_step(0, 2**63 - 1, requested=MAX_STEP_SECONDS) == MAX_STEP_SECONDS
    assert MAX_STEP_SECONDS % 3600 == 0  # the largest step still reads the hourly rollup

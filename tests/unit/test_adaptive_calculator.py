"""Adaptive sampling arithmetic: convergence on synthetic load, and its invariants."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from query.adaptive_calculator import (
    AdaptiveKnobs,
    calculate,
    next_probability,
    weighted_rate,
)


def binomial(rng: random.Random, n: int, p: float) -> int:
    """Binomial(n, p) by its normal approximation (n is large here), never below 0."""
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return max(0, round(rng.gauss(mean, sd)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_two_operations_100x_apart_converge_to_the_target(seed: int) -> None:
    knobs = AdaptiveKnobs(
        target_per_second=1.0, delta_tolerance=0.1, interval_seconds=60, buckets=5
    )
    rates = {("", "shop", "GET /busy"): 1000.0, ("", "shop", "GET /rare"): 10.0}
    rng = random.Random(seed)
    probabilities: dict[tuple[str, str, str], float] = {}
    history: dict[tuple[str, str, str], list[tuple[float, float]]] = {k: [] for k in rates}
    sampled_rate: dict[tuple[str, str, str], list[float]] = {k: [] for k in rates}
    for _interval in range(60):
        for key, rate in rates.items():
            p = probabilities.get(key, knobs.initial_probability)
            count = binomial(rng, int(rate * knobs.interval_seconds), p)
            history[key].insert(0, (count, p))
            sampled_rate[key].append(count / knobs.interval_seconds)
        result = calculate(history, probabilities, knobs)
        probabilities = {k: c.probability for k, c in result.items()}
    for key, rate in rates.items():
        expected = probabilities[key] * rate
        assert abs(expected - 1.0) <= 0.2, (key, probabilities[key])
        observed = sum(sampled_rate[key][-10:]) / 10
        assert abs(observed - 1.0) <= 0.2, (key, observed)
    busy, rare = (probabilities[k] for k in rates)
    assert 50 <= rare / busy <= 200  # 100x apart in rate, ~100x apart in probability


def test_a_step_in_load_is_followed() -> None:
    knobs = AdaptiveKnobs(
        target_per_second=2.0, delta_tolerance=0.1, interval_seconds=10, buckets=3
    )
    key = ("t", "s", "op")
    p = 0.01
    history: list[tuple[float, float]] = []
    for rate in [200.0] * 20 + [2000.0] * 20:
        count = rate * knobs.interval_seconds * p  # expected value: no noise
        history.insert(0, (count, p))
        p = calculate({key: history}, {key: p}, knobs)[key].probability
    assert abs(p * 2000.0 - 2.0) <= 0.4


knob_values = st.builds(
    AdaptiveKnobs,
    target_per_second=st.floats(0.001, 1e4),
    delta_tolerance=st.floats(0, 0.99),
    initial_probability=st.just(0.001),
    min_probability=st.floats(1e-9, 0.001),
    max_probability=st.floats(0.001, 1.0),
    interval_seconds=st.floats(0.1, 3600),
    buckets=st.integers(1, 20),
)
probability = st.floats(0, 1) | st.just(float("nan")) | st.just(-1.0) | st.just(float("inf"))
counts = st.floats(0, 1e9) | st.just(float("nan")) | st.just(-5.0) | st.just(float("inf"))


@settings(max_examples=500, deadline=None)
@given(knob_values, probability, st.floats(0, 1e9) | st.just(float("nan")))
def test_next_probability_stays_in_bounds_and_moves_toward_the_target(
    knobs: AdaptiveKnobs, previous: float, rate: float
) -> None:
    new = next_probability(previous, rate, knobs)
    assert knobs.min_probability <= new <= knobs.max_probability
    if not (math.isfinite(previous) and previous > 0):
        previous = knobs.initial_probability
    clamp = min(knobs.max_probability, max(knobs.min_probability, previous))
    if math.isfinite(rate) and rate > knobs.target_per_second * (1 + knobs.delta_tolerance):
        assert new <= clamp + 1e-15
    if not math.isfinite(rate) or rate < knobs.target_per_second * (1 - knobs.delta_tolerance):
        assert new >= clamp - 1e-15
        assert new <= max(knobs.min_probability, previous * (1 + knobs.increase_cap)) * (1 + 1e-12)


@settings(max_examples=300, deadline=None)
@given(
    knob_values,
    st.lists(st.tuples(counts, probability), max_size=30),
    st.floats(1e-9, 1),
)
def test_weighted_rate_is_finite_and_never_negative(
    knobs: AdaptiveKnobs, history: list[tuple[float, float]], current: float
) -> None:
    rate = weighted_rate(history, current, knobs)
    assert math.isfinite(rate) and rate >= 0


def test_within_tolerance_nothing_changes_and_the_result_is_deterministic() -> None:
    knobs = AdaptiveKnobs(target_per_second=1, delta_tolerance=0.3, interval_seconds=1, buckets=1)
    assert next_probability(0.2, 1.25, knobs) == 0.2
    assert next_probability(0.2, 2.0, knobs) == 0.1
    assert next_probability(0.2, 0.1, knobs) == pytest.approx(0.3)  # capped at +50 %
    assert next_probability(0.2, 0.0, knobs) == pytest.approx(0.3)
    data = {("a", "b", "c"): [(5.0, 0.1), (7.0, 0.2)], ("a", "b", "d"): [(0.0, 0.5)]}
    assert calculate(data, {}, knobs) == calculate(dict(reversed(list(data.items()))), {}, knobs)


@pytest.mark.parametrize(
    "bad",
    [
        {"target_per_second": 0},
        {"target_per_second": float("nan")},
        {"delta_tolerance": 1.0},
        {"min_probability": 0},
        {"min_probability": 0.5, "max_probability": 0.4},
        {"initial_probability": 0.5, "max_probability": 0.4},
        {"interval_seconds": 0},
        {"buckets": 0},
        {"increase_cap": 0},
    ],
)
def test_knobs_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AdaptiveKnobs(**bad)  # type: ignore[arg-type]


def test_a_subnormal_stored_probability_keeps_the_rate_finite() -> None:
    """Found by hypothesis: 1 trace at probability 5e-324 rescaled to 1.0 overflowed to inf."""
    knobs = AdaptiveKnobs(buckets=1)
    rate = weighted_rate([(1.0, 5e-324)], 1.0, knobs)
    assert math.isfinite(rate) and rate == 2.0**56 / knobs.interval_seconds

"""Adaptive sampling, the arithmetic: next per-operation probabilities from observed throughput.

The goal, as in Jaeger's adaptive sampling: every (service, operation) that starts traces keeps
about ``target_per_second`` sampled traces per second, so a rare endpoint is sampled at a high
probability and a busy one at a low one, with no operator tuning. Each calculation interval:

1. the sampled traces/s of an operation is a weighted mean over the last ``buckets`` intervals
   (recent intervals weigh more: weight ``buckets - age``), each interval's count rescaled from
   the probability it was sampled at to the current one; this damps the noise of one interval
   without reacting a whole window late;
2. within ``delta_tolerance`` of the target (relative), the probability stays as it is, so
   samplers are not reconfigured for noise;
3. otherwise it is scaled by target / observed: sampled throughput is proportional to the
   probability for a steady load, so this lands on the target in one step. An increase is
   capped at ``increase_cap`` (+50 %) per interval, because a low observed rate is also what a
   burst's end or a deploy looks like, and overshooting a busy endpoint is costly; a decrease is
   applied at once;
4. an operation seen before with no sampled trace at all in the window grows by the cap (its
   true rate is unknown, only that the target is not reached);
5. the result is clamped to [min_probability, max_probability].

Pure and deterministic: the same inputs give the same outputs on every replica, which is what
lets every query replica compute the strategies from the shared state in ClickHouse with no
leader (query/adaptive_sampling.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

OperationKey = tuple[str, str, str]  # tenant, service, operation


@dataclass(frozen=True)
class AdaptiveKnobs:
    """Jaeger's adaptive-sampling options, with its defaults."""

    target_per_second: float = 1.0
    delta_tolerance: float = 0.3
    initial_probability: float = 0.001
    min_probability: float = 1e-5
    max_probability: float = 1.0
    lower_bound_per_second: float = 1.0 / 60
    interval_seconds: float = 60.0
    buckets: int = 10
    increase_cap: float = 0.5

    def __post_init__(self) -> None:
        problems = []
        if not (self.target_per_second > 0 and math.isfinite(self.target_per_second)):
            problems.append("target_per_second must be a positive number")
        if not 0 <= self.delta_tolerance < 1:
            problems.append("delta_tolerance must be in [0, 1)")
        if not 0 < self.min_probability <= self.max_probability <= 1:
            problems.append("need 0 < min_probability <= max_probability <= 1")
        if not self.min_probability <= self.initial_probability <= self.max_probability:
            problems.append("initial_probability must be within [min, max]")
        if not self.interval_seconds > 0:
            problems.append("interval_seconds must be positive")
        if self.buckets < 1:
            problems.append("buckets must be at least 1")
        if not self.increase_cap > 0:
            problems.append("increase_cap must be positive")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Calculation:
    probability: float
    sampled_per_second: float
    previous: float


# The smallest non-zero probability OTel consistent sampling can apply (threshold resolution
# 2^-56); rescaling by anything smaller says nothing about the load and can overflow.
FINEST_PROBABILITY = 2.0**-56


def weighted_rate(
    history_newest_first: Sequence[tuple[float, float]], current: float, knobs: AdaptiveKnobs
) -> float:
    """Sampled traces/s expected at probability ``current``, from up to ``buckets`` intervals.

    ``history``: (sampled traces counted, probability in force) per interval, newest first.
    Each interval's count is rescaled from the probability it was sampled at to ``current``
    (count / then x current), so intervals before a change still say something true about
    the load; newer intervals weigh more. Intervals before the operation's first appearance
    are not in ``history``, so a new operation is not diluted by zeros from before it existed.
    """
    window = list(history_newest_first)[: knobs.buckets]
    if not window:
        return 0.0
    total = weight_sum = 0.0
    for age, (count, then) in enumerate(window):
        weight = knobs.buckets - age
        weight_sum += weight
        if then > 0 and math.isfinite(then) and count > 0 and math.isfinite(count):
            # A stored probability below the finest one a 56-bit sampling threshold can express
            # (a subnormal, say) would make the rescaled count infinite.
            total += weight * count * (current / max(then, FINEST_PROBABILITY))
    return total / weight_sum / knobs.interval_seconds


def next_probability(previous: float, sampled_per_second: float, knobs: AdaptiveKnobs) -> float:
    """One step of the rule in the module docstring."""
    if not math.isfinite(previous) or previous <= 0:
        previous = knobs.initial_probability
    target = knobs.target_per_second
    if sampled_per_second <= 0 or not math.isfinite(sampled_per_second):
        new = previous * (1 + knobs.increase_cap)
    elif abs(sampled_per_second - target) <= knobs.delta_tolerance * target:
        new = previous
    else:
        new = previous * target / sampled_per_second
        new = min(new, previous * (1 + knobs.increase_cap))
    return min(knobs.max_probability, max(knobs.min_probability, new))


def calculate(
    throughput: Mapping[OperationKey, Sequence[tuple[float, float]]],
    previous: Mapping[OperationKey, float],
    knobs: AdaptiveKnobs,
) -> dict[OperationKey, Calculation]:
    """Next probabilities of every operation with throughput data.

    ``throughput``: per operation, (sampled traces, probability then) of the last intervals,
    newest first. ``previous``: the probabilities in force (missing: ``initial_probability``).
    """
    out: dict[OperationKey, Calculation] = {}
    for key in sorted(throughput):
        before = previous.get(key, knobs.initial_probability)
        rate = weighted_rate(throughput[key], before, knobs)
        out[key] = Calculation(next_probability(before, rate, knobs), rate, before)
    return out

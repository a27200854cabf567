"""Adaptive sampling, the adapter: RED throughput in ClickHouse -> probabilities -> strategies.

Every query replica runs :meth:`AdaptiveSampling.step` on a timer. A step works on the last
*complete* calculation interval, the one ending at ``E = floor((now - delay) / I) * I``; the
delay leaves time for the RED windows of that interval to reach ClickHouse. If the table
already has rows for ``E`` (another replica was first), the step only loads them. Otherwise it
reads, for the ``buckets`` intervals before ``E``, the spans per (tenant, service, operation)
from ``red_metrics`` (streams counts every span before tail sampling, i.e. every trace the SDKs
sampled) and the probabilities that were in force, runs the pure calculator
(query/adaptive_calculator.py) and inserts one row per operation into
``sampling_probabilities``. Same data in, same rows out: replicas that race insert identical
rows, which ReplacingMergeTree collapses, so there is no leader to elect.

What counts as an operation's sampled traces: its RED ``Calls`` of every span kind. Only the
operations where traces start are sampled by their own probability (children follow their
parent's decision), so the probabilities calculated for downstream operations are served but
never used by an SDK; they cost one row each per interval.

The strategies served for a service with rows: per-operation, default probability
``initial_probability``, lower bound ``lower_bound_per_second`` (Jaeger's adaptive answer). A
service the strategies file names is served from the file (query/sampling_service.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import defaultdict
from typing import Any

from core.settings import Settings
from query.adaptive_calculator import AdaptiveKnobs, OperationKey, calculate
from query.sampling_strategies import (
    PROBABILISTIC,
    OperationProbability,
    PerOperation,
    Strategy,
)

TABLE = "sampling_probabilities"
COLUMNS = [
    "IntervalEnd",
    "TenantId",
    "ServiceName",
    "SpanName",
    "Probability",
    "PreviousProbability",
    "SampledPerSecond",
    "TargetPerSecond",
]
log = logging.getLogger("query.sampling")

THROUGHPUT_SQL = """
SELECT TenantId, ServiceName, SpanName,
       intDiv(toUnixTimestamp(TimeUnix) - {start:Int64}, {interval:Int64}) AS bucket,
       sum(Calls) AS calls
FROM red_metrics
WHERE TimeUnix >= toDateTime64({start:Int64}, 9) AND TimeUnix < toDateTime64({end:Int64}, 9)
  AND NOT Overflow
GROUP BY TenantId, ServiceName, SpanName, bucket
"""
HISTORY_SQL = """
SELECT TenantId, ServiceName, SpanName, toUnixTimestamp(IntervalEnd) AS e, Probability
FROM sampling_probabilities FINAL
WHERE IntervalEnd >= toDateTime({start:Int64}) AND IntervalEnd <= toDateTime({end:Int64})
"""
LATEST_SQL = """
SELECT TenantId, ServiceName, SpanName, argMax(Probability, IntervalEnd)
FROM sampling_probabilities FINAL
WHERE IntervalEnd <= toDateTime({end:Int64})
GROUP BY TenantId, ServiceName, SpanName
"""
AT_SQL = """
SELECT TenantId, ServiceName, SpanName, Probability
FROM sampling_probabilities FINAL
WHERE IntervalEnd = toDateTime({end:Int64})
"""


def knobs_from(settings: Settings) -> AdaptiveKnobs:
    return AdaptiveKnobs(
        target_per_second=settings.sampling_target_samples_per_second,
        delta_tolerance=settings.sampling_delta_tolerance,
        initial_probability=settings.sampling_initial_probability,
        min_probability=settings.sampling_min_probability,
        max_probability=settings.sampling_max_probability,
        lower_bound_per_second=settings.sampling_lower_bound_traces_per_second,
        interval_seconds=settings.sampling_calculation_interval_seconds,
        buckets=settings.sampling_aggregation_buckets,
    )


def interval_end(now: float, knobs: AdaptiveKnobs, delay: float) -> int:
    step = int(knobs.interval_seconds)
    return math.floor((now - delay) / step) * step


class AdaptiveSampling:
    """The shared-state calculation and the overlay the sampling service consults."""

    def __init__(self, client: Any, knobs: AdaptiveKnobs, delay_seconds: float) -> None:
        if knobs.interval_seconds != int(knobs.interval_seconds):
            raise ValueError("the calculation interval must be whole seconds")
        self._client = client
        self.knobs = knobs
        self.delay = delay_seconds
        self._lock = threading.Lock()
        self._served: dict[tuple[str, str], Strategy] = {}
        self.last_end = 0
        self.calculations = 0
        self.errors = 0

    # --- the overlay (query.sampling_service.AdaptiveOverlay) ---
    def strategy(self, tenant: str, service: str, fallback: Strategy) -> Strategy | None:
        return self._served.get((tenant, service))

    async def run(self) -> None:
        """Step on a timer until cancelled; a failed step is logged, counted and retried."""
        pause = min(5.0, self.knobs.interval_seconds / 4)
        while True:
            try:
                await asyncio.to_thread(self.step)
            except Exception:
                self.errors += 1
                log.exception("adaptive sampling calculation failed; serving the last one")
            await asyncio.sleep(pause)

    # --- the calculation ---
    def step(self, now: float | None = None) -> bool:
        """Calculate (or load) the last complete interval; True if new strategies are served."""
        end = interval_end(time.time() if now is None else now, self.knobs, self.delay)
        if end <= self.last_end:
            return False
        with self._lock:
            rows = self._rows_at(end)
            if not rows:
                fresh = self._calculate(end)
                if fresh:
                    self._client.insert(TABLE, fresh, column_names=COLUMNS)
                    self.calculations += 1
                    rows = self._rows_at(end)  # what every replica serves: the stored rows
            self._serve(rows)
            self.last_end = end
            return True

    def _rows_at(self, end: int) -> list[tuple[str, str, str, float]]:
        result = self._client.query(AT_SQL, parameters={"end": end})
        return [(str(t), str(s), str(o), float(p)) for t, s, o, p in result.result_rows]

    def _calculate(self, end: int) -> list[list[Any]]:
        k = self.knobs
        interval = int(k.interval_seconds)
        start = end - k.buckets * interval
        params = {"start": start, "end": end, "interval": interval}
        counts: dict[OperationKey, dict[int, float]] = defaultdict(dict)
        for tenant, service, op, bucket, calls in self._client.query(
            THROUGHPUT_SQL, parameters=params
        ).result_rows:
            counts[(tenant, service, op)][int(bucket)] = float(calls)
        in_force: dict[OperationKey, dict[int, float]] = defaultdict(dict)
        for tenant, service, op, e, p in self._client.query(
            HISTORY_SQL, parameters={"start": start, "end": end}
        ).result_rows:
            in_force[(tenant, service, op)][int(e)] = float(p)
        if not counts and not in_force:
            return []
        previous = {
            (t, s, o): float(p)
            for t, s, o, p in self._client.query(LATEST_SQL, parameters={"end": end}).result_rows
        }
        # An operation calculated in the window but with no sampled trace since is still
        # followed (its probability grows) until it reaches the maximum.
        for key, probabilities in in_force.items():
            if key not in counts and probabilities[max(probabilities)] < k.max_probability:
                counts[key] = {}
        history: dict[OperationKey, list[tuple[float, float]]] = {}
        for key, by_bucket in counts.items():
            first = min(by_bucket, default=k.buckets - 1)
            series = []
            for b in range(k.buckets - 1, first - 1, -1):  # newest first, from first seen
                bucket_start = start + b * interval
                then = in_force[key].get(bucket_start)
                if then is None:
                    earlier = [e for e in in_force[key] if e <= bucket_start]
                    then = (
                        in_force[key][max(earlier)]
                        if earlier
                        else previous.get(key, k.initial_probability)
                    )
                series.append((by_bucket.get(b, 0.0), then))
            history[key] = series
        result = calculate(history, previous, k)
        return [
            [end, t, s, o, c.probability, c.previous, c.sampled_per_second, k.target_per_second]
            for (t, s, o), c in result.items()
        ]

    def _serve(self, rows: list[tuple[str, str, str, float]]) -> None:
        per_service: dict[tuple[str, str], list[OperationProbability]] = defaultdict(list)
        for tenant, service, op, p in sorted(rows):
            per_service[(tenant, service)].append(OperationProbability(op, float(p)))
        k = self.knobs
        self._served = {
            key: Strategy(
                PROBABILISTIC,
                k.initial_probability,
                PerOperation(k.initial_probability, k.lower_bound_per_second, 0.0, tuple(ops)),
            )
            for key, ops in per_service.items()
        }

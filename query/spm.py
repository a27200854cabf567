"""Service Performance Monitoring math on RED histograms (pure): rates, error ratios, quantiles.

Jaeger's metrics API (``/api/metrics/{latencies,calls,errors}``) is defined by what its
Prometheus reader asks Prometheus for, evaluated at ``endTs - lookback + k * step`` for every
k with the point not after ``endTs``:

- calls:     ``sum(rate(calls[ratePer]))``: calls per second over the ``ratePer`` window
  ending at the point;
- errors:    ``rate(error calls[ratePer]) / rate(calls[ratePer])``: the error *fraction* over
  the window (0 when there were calls but no errors, no point when there were no calls);
- latencies: ``histogram_quantile(q, sum(rate(bucket[ratePer])) by (le))``: the q-quantile of
  the bucket counts summed over the window, in milliseconds.

tracehouse holds the same information as RED rows: one histogram per (service, operation, kind,
status) and streams window. A row belongs to the window of the point t when its window *ended*
within (t - ratePer, t], i.e. only complete windows count and nothing after t leaks in. To keep
the ClickHouse result small, rows are pre-summed in SQL into slots of g = gcd(step, ratePer):
slot b = ceil((WindowEnd - base) / g) with base = first point - ratePer. Because step and
ratePer are multiples of g, the window of point k is exactly the slots (k*s, k*s + r] with
s = step/g and r = ratePer/g, so the pre-summing loses nothing.

Quantiles interpolate linearly inside the bucket that holds the rank (Prometheus'
histogram_quantile); the top of a bucket, and the +Inf bucket, are capped by the largest
duration observed in the window (as th_histogram_quantile_v1 does for the RED API), so an
estimate never exceeds a real duration.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple


class Slot(NamedTuple):
    """One pre-summed slot of one series and bucket layout (a row of spm_slots.sql)."""

    slot: int
    calls: int
    errors: int
    max_ns: int
    counts: tuple[int, ...]


@dataclass
class WindowTotals:
    """Sums over the window of one evaluation point."""

    calls: int = 0
    errors: int = 0
    max_ns: int = 0
    # bucket layout (bounds in ms) -> (calls of that layout, summed counts, max ns)
    layouts: dict[tuple[float, ...], tuple[int, list[int], int]] = field(default_factory=dict)


def histogram_quantile(
    q: float, bounds_ms: Sequence[float], counts: Sequence[int], max_ms: float
) -> float:
    """The q-quantile (0 < q <= 1) in ms of bucket counts (last count = +Inf); NaN if empty.

    ``counts[i]`` counts durations <= ``bounds_ms[i]`` (and above the previous bound). The rank
    q * total falls in the first bucket whose cumulative count reaches it; the result
    interpolates between that bucket's lower bound (0 for the first) and its upper bound, the
    upper bound (and +Inf) being capped at ``max_ms``.
    """
    total = sum(counts)
    if total <= 0:
        return math.nan
    rank = q * total
    below = 0
    for i, count in enumerate(counts):
        if below + count >= rank and count > 0:
            lower = 0.0 if i == 0 else float(bounds_ms[i - 1])
            upper = float(bounds_ms[i]) if i < len(bounds_ms) else float(max_ms)
            upper = min(upper, float(max_ms))
            width = max(0.0, upper - lower)
            return lower + width * (rank - below) / count
        below += count
    return float(max_ms)  # rounding: rank marginally above the total


def per_second(calls: int, rate_per_ms: int) -> float:
    """A count over a window of ``rate_per_ms`` as a per-second rate (Prometheus rate())."""
    return calls * 1000.0 / rate_per_ms


def error_fraction(errors: int, calls: int) -> float | None:
    """errors/calls over a window; None (no point) when the window had no calls."""
    return errors / calls if calls > 0 else None


def window_totals(
    layouts: dict[tuple[float, ...], Sequence[Slot]], s: int, r: int, points: int
) -> list[WindowTotals]:
    """Totals of every point k in [0, points): slots with index in (k*s, k*s + r].

    One pass per layout over its slots, sorted by index: a running sum enters the slots the
    window's end passes and drops those its start passes; a monotonic deque keeps the window
    maximum. O(points + slots) per layout, times the bucket count.
    """
    out = [WindowTotals() for _ in range(points)]
    for bounds, slots in layouts.items():
        ordered = sorted(slots, key=lambda sl: sl.slot)
        width = len(bounds) + 1
        calls = errors = 0
        counts = [0] * width
        maxes: deque[tuple[int, int]] = deque()  # (index, max_ns), max_ns decreasing
        head = tail = 0  # ordered[tail:head] is inside the window
        for k in range(points):
            lo, hi = k * s, k * s + r
            while head < len(ordered) and ordered[head].slot <= hi:
                slot = ordered[head]
                calls += slot.calls
                errors += slot.errors
                for i in range(min(width, len(slot.counts))):
                    counts[i] += slot.counts[i]
                while maxes and maxes[-1][1] <= slot.max_ns:
                    maxes.pop()
                maxes.append((slot.slot, slot.max_ns))
                head += 1
            while tail < head and ordered[tail].slot <= lo:
                slot = ordered[tail]
                calls -= slot.calls
                errors -= slot.errors
                for i in range(min(width, len(slot.counts))):
                    counts[i] -= slot.counts[i]
                tail += 1
            while maxes and maxes[0][0] <= lo:
                maxes.popleft()
            if calls <= 0 and not any(counts):
                continue
            top = maxes[0][1] if maxes else 0
            totals = out[k]
            totals.calls += calls
            totals.errors += errors
            totals.max_ns = max(totals.max_ns, top)
            totals.layouts[bounds] = (calls, list(counts), top)
    return out


def latency_ms(totals: WindowTotals, q: float) -> float | None:
    """The quantile from the layout with the most calls in the window (layouts never mix)."""
    if not totals.layouts:
        return None
    bounds, (_calls, counts, top) = max(totals.layouts.items(), key=lambda item: item[1][0])
    value = histogram_quantile(q, bounds, counts, top / 1e6)
    return None if math.isnan(value) else value

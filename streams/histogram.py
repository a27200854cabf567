"""Latency histograms with the spanmetrics default buckets, shared by RED and the service graph.

Both outputs use the same bounds so a dashboard can compare a service's own latency with the
latency its callers observe. Durations are nanoseconds in, bucket bounds are milliseconds out
(as in the Avro contracts): ``counts[i]`` counts durations <= ``bounds_ms[i]``, the last element
counts the rest (+Inf).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

DEFAULT_BOUNDS_MS: tuple[float, ...] = (
    2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000,
)  # fmt: skip


def bounds_ns(bounds_ms: tuple[float, ...]) -> list[int]:
    return [int(b * 1_000_000) for b in bounds_ms]


@dataclass
class Histogram:
    """calls/errors/sum/max plus bucket counts of one series."""

    bucket_count: int
    calls: int = 0
    errors: int = 0
    duration_sum_ns: int = 0
    duration_max_ns: int = 0
    buckets: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.buckets:
            self.buckets = [0] * (self.bucket_count + 1)

    def observe(self, duration_ns: int, error: bool, edges_ns: list[int]) -> None:
        if duration_ns < 0:
            duration_ns = 0
        self.calls += 1
        if error:
            self.errors += 1
        self.duration_sum_ns += duration_ns
        if duration_ns > self.duration_max_ns:
            self.duration_max_ns = duration_ns
        # bisect_left: a duration equal to a bound belongs to that bound's bucket (le semantics).
        self.buckets[bisect_left(edges_ns, duration_ns)] += 1

    def as_fields(self) -> dict[str, int | list[int]]:
        return {
            "calls": self.calls,
            "errors": self.errors,
            "duration_sum_ns": self.duration_sum_ns,
            "duration_max_ns": self.duration_max_ns,
            "bucket_counts": list(self.buckets),
        }

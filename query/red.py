"""RED series shaping (pure): SQL rows -> per-operation time series of rate, errors, latency.

Rows come grouped by bucket layout; when a window holds rows of two layouts (a bucket config
change mid-range) their calls and errors add up and the quantiles of the larger group win,
because quantiles of different layouts cannot be merged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

MIN_STEP_SECONDS = 10
TARGET_POINTS = 120
HOURLY = 3600
# Largest step a client may ask for: ten years, a multiple of the hour (so the hourly rollup
# serves it) that fits the UInt32 of toIntervalSecond with a wide margin. Larger is a 400.
MAX_STEP_SECONDS = 10 * 365 * 86_400
# Most points per series: a tiny step over a long range would make ClickHouse build (and the
# API serialise) millions of buckets, so such a step is raised until the range fits this many
# (Prometheus refuses range queries above 11,000 points for the same reason).
MAX_POINTS = 11_000


def _round_up(seconds: int, multiple: int = MIN_STEP_SECONDS) -> int:
    return -(-seconds // multiple) * multiple


def choose_step(start_ns: int, end_ns: int, requested: int | None = None) -> int:
    """The step (s) of a RED query: ~TARGET_POINTS points by default, never > MAX_POINTS.

    A requested step is honoured, except that it is at least the 10 s RED window and at
    least the step that keeps the range within MAX_POINTS points; the response reports the
    step actually used. Callers validate ``requested <= MAX_STEP_SECONDS`` (query.params).
    """
    span_s = max(1, (end_ns - start_ns) // 1_000_000_000)
    floor = max(MIN_STEP_SECONDS, _round_up(span_s, MAX_POINTS) // MAX_POINTS)
    floor = _round_up(floor)
    if requested:
        return min(max(floor, requested), MAX_STEP_SECONDS)
    raw = max(MIN_STEP_SECONDS, span_s // TARGET_POINTS)
    return min(max(floor, _round_up(raw)), MAX_STEP_SECONDS)


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def series_from_rows(rows: Iterable[Sequence[Any]], step: int) -> list[dict[str, Any]]:
    """Rows (bucket, op, calls, errors, p50, p90, p99) -> [{operation, points: [...]}]."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for bucket, op, calls, errors, p50, p90, p99 in rows:
        key = (op, int(bucket))
        point = merged.get(key)
        if point is None or calls > point["_calls_of_quantiles"]:
            quantiles = {
                "p50": _num(p50),
                "p90": _num(p90),
                "p99": _num(p99),
                "_calls_of_quantiles": int(calls),
            }
        else:
            quantiles = {}
        if point is None:
            point = merged[key] = {"ts": int(bucket) * 1_000_000, "calls": 0, "errors": 0}
        point["calls"] += int(calls)
        point["errors"] += int(errors)
        point.update(quantiles)
    series: dict[str, list[dict[str, Any]]] = {}
    for (op, _bucket), point in sorted(merged.items()):
        point.pop("_calls_of_quantiles", None)
        point["rate"] = point["calls"] / step
        point["errorRatio"] = point["errors"] / point["calls"] if point["calls"] else 0.0
        series.setdefault(op, []).append(point)
    return [{"operation": op, "points": pts} for op, pts in series.items()]


def summary_from_rows(rows: Iterable[Sequence[Any]], seconds: float) -> list[dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for service, op, calls, errors, p50, p90, p99 in rows:
        key = (service, op)
        item = out.get(key)
        if item is None:
            item = out[key] = {
                "service": service,
                "operation": op,
                "calls": 0,
                "errors": 0,
                "p50": _num(p50),
                "p90": _num(p90),
                "p99": _num(p99),
            }
        item["calls"] += int(calls)
        item["errors"] += int(errors)
    for item in out.values():
        item["rate"] = item["calls"] / max(seconds, 1e-9)
        item["errorRatio"] = item["errors"] / item["calls"] if item["calls"] else 0.0
    return sorted(out.values(), key=lambda i: (i["service"], -i["calls"]))

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


def choose_step(start_ns: int, end_ns: int, requested: int | None = None) -> int:
    """A step (s) giving ~TARGET_POINTS points, a multiple of the 10 s RED window."""
    if requested:
        return max(MIN_STEP_SECONDS, requested)
    span_s = max(1, (end_ns - start_ns) // 1_000_000_000)
    raw = max(MIN_STEP_SECONDS, span_s // TARGET_POINTS)
    return int(math.ceil(raw / MIN_STEP_SECONDS) * MIN_STEP_SECONDS)


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

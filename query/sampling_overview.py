"""The sampling overview the web UI shows: what SDKs get now, and how adaptive sampling moved.

``GET /api/sampling/strategies?service=&lookback=`` (query/sampling_overview_http.py) answers,
per service and operation, the strategy the SDK bindings serve at this moment (the very
``Strategy`` object ``/api/sampling`` turns into JSON, from query/sampling_service.py) next to
the adaptive probabilities stored in ``sampling_probabilities`` and the throughput the pipeline
observed (RED calls per calculation interval) over the lookback. This module is the pure part:
the parameters, and rows + strategies -> the JSON document. Nothing here re-derives a strategy;
the only thing read from a ``Strategy`` is which probability an SDK applies to an operation,
which is the api_v2 rule (a named operation's own, else the default probability, else the
probabilistic rate; none under a bare rate limit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from query.params import BadRequestError, check_name, parse_duration_ns
from query.sampling_strategies import PROBABILISTIC, Strategy

DEFAULT_LOOKBACK_SECONDS = 3600
# At most this many calculation intervals per operation (7 days of the default 60 s interval):
# bounds the response and the chart's points whatever interval is configured.
MAX_POINTS = 10_080
# Rows read per series kind (history, throughput); beyond it the answer says it was cut.
MAX_ROWS = 200_000
NS = 1_000_000_000

# service, operation, interval end (s), probability, previous, sampled/s, target/s
HistoryRow = tuple[str, str, int, float, float, float, float]
ThroughputRow = tuple[str, str, int, int]  # service, operation, interval end s, calls


@dataclass(frozen=True)
class OverviewQuery:
    service: str  # "" = every service
    lookback_seconds: int


def parse_overview_query(
    services: Sequence[str], lookbacks: Sequence[str], interval_seconds: int
) -> OverviewQuery:
    """``service`` (at most once, at most 1024 characters, empty = all) and ``lookback`` (a Go
    duration of whole seconds, at least one calculation interval, at most MAX_POINTS of them);
    BadRequestError naming the parameter otherwise."""
    if len(services) > 1:
        raise BadRequestError("parameter 'service' must be given at most once")
    if len(lookbacks) > 1:
        raise BadRequestError("parameter 'lookback' must be given at most once")
    service = check_name(services[0], "service") if services else ""
    lookback = DEFAULT_LOOKBACK_SECONDS
    if lookbacks and lookbacks[0] != "":
        ns = parse_duration_ns(lookbacks[0], "lookback")
        if ns % NS:
            raise BadRequestError("parameter 'lookback' must be whole seconds")
        lookback = ns // NS
    longest = MAX_POINTS * interval_seconds
    if not interval_seconds <= lookback <= longest:
        raise BadRequestError(
            f"parameter 'lookback' must be between {interval_seconds}s (one calculation"
            f" interval) and {longest}s ({MAX_POINTS} intervals), got {lookback}s"
        )
    return OverviewQuery(service, lookback)


def applied_probability(strategy: Strategy, operation: str) -> float | None:
    """The probability an SDK applies to ``operation`` under ``strategy`` (api_v2 semantics);
    None when only a rate limit applies."""
    per_op = strategy.per_operation
    if per_op is not None:
        for o in per_op.operations:
            if o.operation == operation:
                return o.probability
        return per_op.default_probability
    return strategy.param if strategy.kind == PROBABILISTIC else None


def service_names(
    named: Iterable[str], history: Iterable[HistoryRow], throughput: Iterable[ThroughputRow]
) -> list[str]:
    """Every service worth a row: named in the strategies file, or with data in the lookback."""
    return sorted({*named, *(r[0] for r in history), *(r[0] for r in throughput)})


def build_overview(
    *,
    start: int,
    end: int,
    interval_seconds: int,
    adaptive: bool,
    default: Strategy,
    resolved: Mapping[str, tuple[Strategy, str]],
    history: Sequence[HistoryRow],
    throughput: Sequence[ThroughputRow],
    truncated: bool,
) -> dict[str, Any]:
    """The ``data`` of the answer; ``resolved`` is service -> (strategy served, its source)."""
    hist: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for svc, op, t, p, prev, rate, target in history:
        hist[svc, op].append(
            {
                "time": t,
                "probability": p,
                "previousProbability": prev,
                "sampledPerSecond": rate,
                "targetPerSecond": target,
            }
        )
    seen: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for svc, op, t, calls in throughput:
        seen[svc, op].append({"time": t, "spansPerSecond": calls / interval_seconds})
    ops_of: dict[str, set[str]] = defaultdict(set)
    for svc, op in (*hist, *seen):
        ops_of[svc].add(op)
    services = []
    for name in sorted(resolved):
        strategy, source = resolved[name]
        ops = set(ops_of.get(name, ()))
        if strategy.per_operation is not None:
            ops |= strategy.per_operation.names()
        services.append(
            {
                "service": name,
                "source": source,
                "strategy": strategy.to_json(),
                "operations": [
                    {
                        "operation": op,
                        "probability": applied_probability(strategy, op),
                        "history": sorted(hist.get((name, op), []), key=lambda p: p["time"]),
                        "throughput": sorted(seen.get((name, op), []), key=lambda p: p["time"]),
                    }
                    for op in sorted(ops)
                ],
            }
        )
    return {
        "start": start,
        "end": end,
        "intervalSeconds": interval_seconds,
        "adaptive": adaptive,
        "default": default.to_json(),
        "services": services,
        "truncated": truncated,
    }

"""How many spans one received span stands for, when the SDK sampled before sending it.

A span kept by a head sampler at probability p stands for 1/p spans (its *adjusted count*).
RED counts and service-graph edges are weighted by it, so call rates stay right when SDKs
sample at 1 %. Where p comes from, first match wins:

1. the W3C ``tracestate`` entry ``ot=th:T`` of OpenTelemetry consistent probability sampling:
   p = (2^56 - T) / 2^56. It travels with the context, so every span of the trace carries it;
2. the tags Jaeger SDKs put on a trace's root span, ``sampler.type`` = ``probabilistic`` or
   ``lowerbound`` and ``sampler.param`` = p. Only the root carries them, so only roots are
   weighted this way (children of such traces count 1: see docs in streams/README.md).
   A ``lowerbound`` trace was kept by the rate limiter, not by p; it is still weighted 1/p,
   which over-counts by at most the lower bound's traces/s per SDK instance;
3. otherwise 1 (unsampled, rate-limited or unknown: the span is all we know of).

A malformed threshold or parameter, or p outside (0, 1], falls through to the next source and
in the end to 1: a span is never dropped or inflated beyond ``MAX_ADJUSTED_COUNT`` for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from core.consistent_sampling import MAX_THRESHOLD, parse_ot
from streams.span_views import SpanView, text_attributes

# 1/p above this (p < 1e-9) is treated as this: one span never outweighs a billion.
MAX_ADJUSTED_COUNT = 1e9
SAMPLER_TYPE = "sampler.type"
SAMPLER_PARAM = "sampler.param"
_WEIGHTED_TYPES = ("probabilistic", "lowerbound")


@lru_cache(maxsize=4096)
def from_threshold(trace_state: str) -> float | None:
    """1/p of an ``ot=th`` threshold, or None when there is none or it is malformed."""
    if "ot=" not in trace_state:
        return None
    th = parse_ot(trace_state).get("th")
    if th is None or not 1 <= len(th) <= 14:
        return None
    try:
        threshold = int(th.ljust(14, "0"), 16)
    except ValueError:
        return None
    kept = MAX_THRESHOLD - threshold
    if kept <= 0:
        return None
    return min(MAX_ADJUSTED_COUNT, MAX_THRESHOLD / kept)


def from_jaeger_tags(pairs: Iterable[tuple[str, Any]]) -> float | None:
    """1/p from ``sampler.type`` / ``sampler.param`` (values as str, float or int)."""
    kind: Any = None
    param: Any = None
    for key, value in pairs:
        if key == SAMPLER_TYPE:
            kind = value
        elif key == SAMPLER_PARAM:
            param = value
    if kind not in _WEIGHTED_TYPES or param is None or isinstance(param, bool):
        return None
    try:
        p = float(param)
    except (TypeError, ValueError):
        return None
    if not 0 < p <= 1:  # also rejects NaN
        return None
    return min(MAX_ADJUSTED_COUNT, 1 / p)


def _otlp_pairs(span: Any) -> Iterable[tuple[str, Any]]:
    for kv in span.attributes:
        if kv.key in (SAMPLER_TYPE, SAMPLER_PARAM):
            v = kv.value
            which = v.WhichOneof("value")
            yield kv.key, getattr(v, which) if which else None


def adjusted_count(view: SpanView) -> float:
    """The view's adjusted count, kept in the view: RED and the service graph both ask, and a
    root's answer means scanning its attributes for the Jaeger tags (7 % of the per-message
    path under tail sampling, ``bench/streams.py``, before it was kept). The common case (no
    threshold, not a root) is two comparisons, and the parse of a threshold is cached per
    distinct tracestate (a fleet sends few distinct ones)."""
    known = view.adjusted
    if known:
        return known
    trace_state = view.trace_state
    weight = from_threshold(trace_state) if trace_state else None
    if weight is None and not view.parent_span_id:
        attrs = text_attributes(view)
        if attrs is not None:
            if attrs:
                weight = from_jaeger_tags(attrs.items())
        elif view.span is not None and len(view.span.attributes):
            weight = from_jaeger_tags(_otlp_pairs(view.span))
    view.adjusted = 1.0 if weight is None else weight
    return view.adjusted

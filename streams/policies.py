"""Tail-sampling policies with the semantics of the OTel Collector's tail_sampling processor.

Each policy looks at a whole buffered trace (its span records) and returns a :class:`Decision`;
:func:`final_decision` combines the policies' answers the way the Collector does: any ``DROPPED``
drops, any ``INVERT_NOT_SAMPLED`` drops, otherwise any ``SAMPLED``/``INVERT_SAMPLED`` keeps.
Policies that need time (rate limits) take ``now`` as an argument, so they stay pure and testable.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.span_views import attributes_of
from streams.trace_hash import in_sample

STATUS_CODES = {"UNSET": 0, "OK": 1, "ERROR": 2}


class Decision(enum.Enum):
    NOT_SAMPLED = 0
    SAMPLED = 1
    INVERT_SAMPLED = 2
    INVERT_NOT_SAMPLED = 3
    DROPPED = 4

    @property
    def keeps(self) -> bool:
        return self in (Decision.SAMPLED, Decision.INVERT_SAMPLED)


@dataclass
class TraceView:
    """What policies see of one trace: its id and span records (see span_records)."""

    trace_id: bytes
    spans: Sequence[dict[str, Any]]


class Policy(Protocol):
    name: str

    def evaluate(self, trace: TraceView, now: float) -> Decision: ...


def _attr(span: dict[str, Any], key: str) -> str | None:
    value = attributes_of(span).get(key)
    if value is None:
        value = span["resource_attributes"].get(key)
    return value


def _inverted(matched: bool, invert: bool) -> Decision:
    if not invert:
        return Decision.SAMPLED if matched else Decision.NOT_SAMPLED
    return Decision.INVERT_NOT_SAMPLED if matched else Decision.INVERT_SAMPLED


@dataclass
class AlwaysSample:
    name: str

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        return Decision.SAMPLED


@dataclass
class Latency:
    """Whole-trace duration (earliest start to latest end) within [threshold, upper]."""

    name: str
    threshold_ms: float
    upper_threshold_ms: float = 0

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        start = min(s["start_time_unix_nano"] for s in trace.spans)
        end = max(s["end_time_unix_nano"] for s in trace.spans)
        ms = (end - start) / 1e6
        ok = ms >= self.threshold_ms
        if self.upper_threshold_ms:
            ok = ok and ms <= self.upper_threshold_ms
        return Decision.SAMPLED if ok else Decision.NOT_SAMPLED


@dataclass
class StatusCode:
    name: str
    status_codes: frozenset[int]

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        codes = self.status_codes
        hit = any(s["status_code"] in codes for s in trace.spans)
        return Decision.SAMPLED if hit else Decision.NOT_SAMPLED


@dataclass
class Probabilistic:
    name: str
    sampling_percentage: float
    hash_salt: str = ""

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        hit = in_sample(trace.trace_id, self.sampling_percentage, self.hash_salt)
        return Decision.SAMPLED if hit else Decision.NOT_SAMPLED


@dataclass
class StringAttribute:
    name: str
    key: str
    values: tuple[str, ...]
    enabled_regex_matching: bool = False
    invert_match: bool = False
    _patterns: list[re.Pattern[str]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.enabled_regex_matching:
            self._patterns = [re.compile(v) for v in self.values]
        self._set = frozenset(self.values)

    def _matches(self, value: str) -> bool:
        if self.enabled_regex_matching:
            return any(p.search(value) for p in self._patterns)
        return value in self._set

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        matched = False
        for s in trace.spans:
            v = _attr(s, self.key)
            if v is not None and self._matches(v):
                matched = True
                break
        return _inverted(matched, self.invert_match)


@dataclass
class NumericAttribute:
    name: str
    key: str
    min_value: float | None = None
    max_value: float | None = None
    invert_match: bool = False

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        matched = False
        for s in trace.spans:
            raw = _attr(s, self.key)
            if raw is None:
                continue
            try:
                v = float(raw)
            except ValueError:
                continue
            if (self.min_value is None or v >= self.min_value) and (
                self.max_value is None or v <= self.max_value
            ):
                matched = True
                break
        return _inverted(matched, self.invert_match)


@dataclass
class BooleanAttribute:
    name: str
    key: str
    value: bool
    invert_match: bool = False

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        want = "true" if self.value else "false"
        matched = any(_attr(s, self.key) == want for s in trace.spans)
        return _inverted(matched, self.invert_match)


@dataclass
class SpanCount:
    name: str
    min_spans: int
    max_spans: int = 0
    invert_match: bool = False

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        n = len(trace.spans)
        matched = n >= self.min_spans and (self.max_spans == 0 or n <= self.max_spans)
        return _inverted(matched, self.invert_match)


@dataclass
class TraceState:
    name: str
    key: str
    values: tuple[str, ...]

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        wanted = {f"{self.key}={v}" for v in self.values}
        for s in trace.spans:
            ts = s["trace_state"]
            if ts and any(m.strip() in wanted for m in ts.split(",")):
                return Decision.SAMPLED
        return Decision.NOT_SAMPLED


@dataclass
class _SecondBudget:
    """Spans admitted in the current wall-clock second."""

    limit: float
    second: int = -1
    used: int = 0

    def admit(self, spans: int, now: float) -> bool:
        sec = int(now)
        if sec != self.second:
            self.second, self.used = sec, 0
        if self.used + spans > self.limit:
            return False
        self.used += spans
        return True


@dataclass
class RateLimiting:
    name: str
    spans_per_second: int

    def __post_init__(self) -> None:
        self._budget = _SecondBudget(self.spans_per_second)

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        ok = self._budget.admit(len(trace.spans), now)
        return Decision.SAMPLED if ok else Decision.NOT_SAMPLED


def _all_keep(policies: list[Policy], trace: TraceView, now: float) -> bool:
    """True when every sub-policy keeps the trace; stops at the first that does not."""
    return all(p.evaluate(trace, now).keeps for p in policies)


@dataclass
class And:
    name: str
    sub_policies: list[Policy]

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        if _all_keep(self.sub_policies, trace, now):
            return Decision.SAMPLED
        return Decision.NOT_SAMPLED


@dataclass
class Drop:
    """Drops the trace (overriding every other policy) when all sub-policies match."""

    name: str
    sub_policies: list[Policy]

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        if _all_keep(self.sub_policies, trace, now):
            return Decision.DROPPED
        return Decision.NOT_SAMPLED


@dataclass
class Composite:
    """Sub-policies in order, each with a share of a total spans/s budget.

    The first sub-policy that keeps the trace and still has budget in this second samples it;
    a sub-policy without a ``rate_allocation`` entry may use the whole budget.
    """

    name: str
    max_total_spans_per_second: int
    sub_policies: list[Policy]
    rate_allocation: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        total = self.max_total_spans_per_second
        self._total = _SecondBudget(total)
        self._budgets = {
            p.name: _SecondBudget(total * self.rate_allocation.get(p.name, 100.0) / 100)
            for p in self.sub_policies
        }

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        n = len(trace.spans)
        for p in self.sub_policies:
            if not p.evaluate(trace, now).keeps:
                continue
            budget = self._budgets[p.name]
            # Check both budgets before spending either.
            if _fits(budget, n, now) and _fits(self._total, n, now):
                budget.admit(n, now)
                self._total.admit(n, now)
                return Decision.SAMPLED
        return Decision.NOT_SAMPLED


def _fits(budget: _SecondBudget, spans: int, now: float) -> bool:
    used = budget.used if int(now) == budget.second else 0
    return used + spans <= budget.limit


def final_decision(decisions: Sequence[Decision]) -> Decision:
    """Combine top-level policy decisions (Collector semantics)."""
    if Decision.DROPPED in decisions or Decision.INVERT_NOT_SAMPLED in decisions:
        return Decision.NOT_SAMPLED
    if any(d.keeps for d in decisions):
        return Decision.SAMPLED
    return Decision.NOT_SAMPLED


def evaluate_all(policies: Sequence[Policy], trace: TraceView, now: float) -> tuple[bool, str]:
    """(keep?, the reason): the first keeping policy's name, or why the trace was dropped."""
    decisions = [p.evaluate(trace, now) for p in policies]
    final = final_decision(decisions)
    if final is Decision.SAMPLED:
        first = next(p.name for p, d in zip(policies, decisions, strict=True) if d.keeps)
        return True, first
    for p, d in zip(policies, decisions, strict=True):
        if d in (Decision.DROPPED, Decision.INVERT_NOT_SAMPLED):
            return False, p.name
    return False, "no_policy_matched"

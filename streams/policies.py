"""Tail-sampling policies with the semantics of the OTel Collector's tail_sampling processor.

Each policy looks at a whole buffered trace (its span records) and returns a :class:`Decision`;
:func:`evaluate_all` combines the top-level policies' decisions with the Collector's rule
(``makeDecision`` in processor/tailsamplingprocessor/processor.go), so a policy set brought over
from a Collector keeps and drops the same traces. The rule, identical in streams/README.md:

1. any ``DROPPED`` (a ``drop`` policy matched) drops the trace; policies after it are not evaluated;
2. otherwise any ``INVERT_NOT_SAMPLED`` (an ``invert_match`` policy matched) drops it;
3. otherwise any ``SAMPLED`` keeps it;
4. otherwise any ``INVERT_SAMPLED`` keeps it, but only if no policy said ``NOT_SAMPLED``;
5. otherwise it is dropped.

``ERROR`` (the policy raised) is ignored, as if that policy were absent. The reason label is the
first policy (in evaluation order) behind the winning rule: 1 the drop policy, 2 the first
inverted match, 3 the first sampling policy, 4 the first inverted keep or, when a
``NOT_SAMPLED`` vetoed it, the first ``NOT_SAMPLED`` policy; 5 ``no_policy_matched``.

``and`` and ``drop`` match when none of their sub-policies says ``NOT_SAMPLED`` or
``INVERT_NOT_SAMPLED`` (stopping at the first that does); a sub-policy error makes the whole
policy ``ERROR``. Policies that need time (rate limits) take ``now`` as an argument, so they
stay pure and testable.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from streams.span_views import SpanView, attributes_of
from streams.trace_hash import in_sample

STATUS_CODES = {"UNSET": 0, "OK": 1, "ERROR": 2}
NO_POLICY_MATCHED = "no_policy_matched"

log = logging.getLogger(__name__)


class Decision(enum.Enum):
    """One policy's answer; the names are the Collector's (sampling.Decision)."""

    NOT_SAMPLED = 0
    SAMPLED = 1
    INVERT_SAMPLED = 2
    INVERT_NOT_SAMPLED = 3
    DROPPED = 4
    ERROR = 5

    @property
    def keeps(self) -> bool:
        return self in (Decision.SAMPLED, Decision.INVERT_SAMPLED)


@dataclass
class TraceView:
    """What policies see of one trace: its id and span views (see streams.span_views)."""

    trace_id: bytes
    spans: Sequence[SpanView]


class Policy(Protocol):
    name: str

    def evaluate(self, trace: TraceView, now: float) -> Decision: ...


def _attr(span: SpanView, key: str) -> str | None:
    value = attributes_of(span).get(key)
    if value is None:
        value = span.resource_attributes.get(key)
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
        start = min(s.start_time_unix_nano for s in trace.spans)
        end = max(s.end_time_unix_nano for s in trace.spans)
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
        hit = any(s.status_code in codes for s in trace.spans)
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
            ts = s.trace_state
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


def _all_match(policies: list[Policy], trace: TraceView, now: float) -> Decision | None:
    """None when no sub-policy rejects the trace (the Collector's and/drop test), else why not.

    Like the Collector, only ``NOT_SAMPLED``/``INVERT_NOT_SAMPLED`` reject (so an inverted keep
    or a nested drop match counts as a match), evaluation stops at the first rejection, and a
    sub-policy error makes the whole combination an error.
    """
    for p in policies:
        d = p.evaluate(trace, now)
        if d is Decision.NOT_SAMPLED or d is Decision.INVERT_NOT_SAMPLED:
            return Decision.NOT_SAMPLED
        if d is Decision.ERROR:
            return d
    return None


@dataclass
class And:
    name: str
    sub_policies: list[Policy]

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        rejected = _all_match(self.sub_policies, trace, now)
        return Decision.SAMPLED if rejected is None else rejected


@dataclass
class Drop:
    """Drops the trace (overriding every other policy) when all sub-policies match."""

    name: str
    sub_policies: list[Policy]

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        rejected = _all_match(self.sub_policies, trace, now)
        return Decision.DROPPED if rejected is None else rejected


@dataclass
class Composite:
    """Sub-policies in order, each with a share of a total spans/s budget.

    As in the Collector, the first sub-policy that keeps the trace (``SAMPLED`` or
    ``INVERT_SAMPLED``) decides alone: ``SAMPLED`` if its share and the total budget still hold
    the trace's spans this second, else ``NOT_SAMPLED`` — later sub-policies are not asked, so a
    class over its budget cannot eat another class's share. A ``rate_allocation`` percent of 0
    means an equal share (total / number of sub-policies), as in the Collector; a sub-policy
    with no ``rate_allocation`` entry may use the whole budget (the Collector gives it none;
    see docs/design-departures.md).
    """

    name: str
    max_total_spans_per_second: int
    sub_policies: list[Policy]
    rate_allocation: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        total = self.max_total_spans_per_second
        equal = 100.0 / max(1, len(self.sub_policies))
        self._total = _SecondBudget(total)
        self._budgets = {
            p.name: _SecondBudget(total * (self.rate_allocation.get(p.name, 100.0) or equal) / 100)
            for p in self.sub_policies
        }

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        n = len(trace.spans)
        for p in self.sub_policies:
            d = p.evaluate(trace, now)
            if d is Decision.ERROR:
                return d
            if not d.keeps:
                continue
            budget = self._budgets[p.name]
            # Check both budgets before spending either.
            if _fits(budget, n, now) and _fits(self._total, n, now):
                budget.admit(n, now)
                self._total.admit(n, now)
                return Decision.SAMPLED
            return Decision.NOT_SAMPLED
        return Decision.NOT_SAMPLED


def _fits(budget: _SecondBudget, spans: int, now: float) -> bool:
    used = budget.used if int(now) == budget.second else 0
    return used + spans <= budget.limit


def combine(decisions: Iterable[tuple[str, Decision]]) -> tuple[bool, str]:
    """(keep?, reason) from (policy name, decision) pairs in evaluation order.

    The Collector's rule, stated in the module docstring. Consumption stops at the first
    ``DROPPED``, so when ``decisions`` is lazy the remaining policies are never evaluated (they
    would not change the outcome, and a rate limit must not spend budget on a dropped trace).
    """
    sampled = invert_sampled = not_sampled = invert_not_sampled = None
    for name, d in decisions:
        if d is _SAMPLED:
            if sampled is None:
                sampled = name
        elif d is _NOT_SAMPLED:
            if not_sampled is None:
                not_sampled = name
        elif d is _DROPPED:
            return False, name
        elif d is _INVERT_NOT_SAMPLED:
            if invert_not_sampled is None:
                invert_not_sampled = name
        elif d is _INVERT_SAMPLED and invert_sampled is None:
            invert_sampled = name
        # ERROR: ignored, as if the policy were absent.
    if invert_not_sampled is not None:
        return False, invert_not_sampled
    if sampled is not None:
        return True, sampled
    if invert_sampled is not None:
        if not_sampled is None:
            return True, invert_sampled
        return False, not_sampled
    return False, NO_POLICY_MATCHED


_SAMPLED, _NOT_SAMPLED, _DROPPED = Decision.SAMPLED, Decision.NOT_SAMPLED, Decision.DROPPED
_INVERT_SAMPLED, _INVERT_NOT_SAMPLED = Decision.INVERT_SAMPLED, Decision.INVERT_NOT_SAMPLED


def final_decision(decisions: Sequence[Decision]) -> Decision:
    """The combined decision alone (``SAMPLED`` or ``NOT_SAMPLED``), for callers without names."""
    keep, _ = combine((str(i), d) for i, d in enumerate(decisions))
    return Decision.SAMPLED if keep else Decision.NOT_SAMPLED


_warned: set[str] = set()


def _evaluated(
    policies: Sequence[Policy], trace: TraceView, now: float, failed: list[str] | None = None
) -> Iterator[tuple[str, Decision]]:
    """Each policy's decision, lazily; a policy that raises counts as ``ERROR``.

    The Collector ignores a failing policy instead of failing the trace, so one bad policy (or
    one odd trace) cannot stop the worker; the first failure per policy is logged with its
    traceback, later ones at debug level to keep a persistent fault from flooding the log.
    """
    for p in policies:
        try:
            d = p.evaluate(trace, now)
        except Exception:
            if p.name in _warned:
                log.debug("sampling policy %r failed; ignored", p.name, exc_info=True)
            else:
                _warned.add(p.name)
                log.warning("sampling policy %r failed; ignored", p.name, exc_info=True)
            d = Decision.ERROR
            if failed is not None:
                failed.append(p.name)
        yield p.name, d


def evaluate_all(
    policies: Sequence[Policy], trace: TraceView, now: float, failed: list[str] | None = None
) -> tuple[bool, str]:
    """(keep?, reason): the policies' decisions combined by the Collector's rule (see above).

    The names of policies that raised are appended to ``failed``, so the caller can count them
    (the Collector counts evaluation errors too; a log line alone goes unnoticed)."""
    return combine(_evaluated(policies, trace, now, failed))


def keeps_every_trace(policies: Sequence[Policy]) -> bool:
    """Whether these policies keep every trace (keep-all, the default): the worker then
    renders each span's text as it reads it, since all of it leaves; otherwise it leaves the
    text in the span's bytes until a trace is kept (``streams.otlp_scan``, lazy views)."""
    return bool(policies) and all(isinstance(p, AlwaysSample) for p in policies)

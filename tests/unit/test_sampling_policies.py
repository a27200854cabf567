"""Every tail-sampling policy and their combinations, on hand-built traces."""

from __future__ import annotations

from typing import Any

import pytest

from streams import policies as p
from streams.policies import Decision, TraceView
from streams.span_views import SpanView
from streams.trace_hash import in_sample, trace_id_hash
from tests.span_view_factory import span_view

S, N, IS, INS, D = (
    Decision.SAMPLED,
    Decision.NOT_SAMPLED,
    Decision.INVERT_SAMPLED,
    Decision.INVERT_NOT_SAMPLED,
    Decision.DROPPED,
)


def span(**kw: Any) -> SpanView:
    return span_view(**kw)


def trace(*spans: SpanView, tid: bytes = b"\x01" * 16) -> TraceView:
    return TraceView(tid, list(spans) or [span()])


def test_always_sample() -> None:
    assert p.AlwaysSample("a").evaluate(trace(), 0) is S


@pytest.mark.parametrize(
    ("start", "end", "lo", "hi", "want"),
    [
        (0, 500, 500, 0, S),
        (0, 499, 500, 0, N),
        (0, 700, 500, 600, N),
        (0, 550, 500, 600, S),
    ],
)
def test_latency_uses_whole_trace_span(
    start: int, end: int, lo: float, hi: float, want: Decision
) -> None:
    # Two spans: the trace lasts from the earliest start to the latest end.
    t = trace(
        span(start_time_unix_nano=start * 1_000_000, end_time_unix_nano=(start + 1) * 1_000_000),
        span(start_time_unix_nano=10 * 1_000_000, end_time_unix_nano=end * 1_000_000),
    )
    assert p.Latency("l", lo, hi).evaluate(t, 0) is want


def test_status_code() -> None:
    pol = p.StatusCode("e", frozenset({2}))
    assert pol.evaluate(trace(span(), span(status_code=2)), 0) is S
    assert pol.evaluate(trace(span(status_code=1)), 0) is N


def test_probabilistic_matches_shared_hash_and_rate() -> None:
    pol = p.Probabilistic("p", 30, "salt")
    ids = [i.to_bytes(16, "big") for i in range(4000)]
    kept = [t for t in ids if pol.evaluate(trace(tid=t), 0) is S]
    assert kept == [t for t in ids if in_sample(t, 30, "salt")]
    assert 0.26 < len(kept) / len(ids) < 0.34
    assert p.Probabilistic("p", 0).evaluate(trace(), 0) is N
    assert p.Probabilistic("p", 100).evaluate(trace(), 0) is S


def test_trace_hash_is_stable_and_salted() -> None:
    t = bytes(range(16))
    assert trace_id_hash(t) == trace_id_hash(t)
    assert trace_id_hash(t, "a") != trace_id_hash(t, "b")
    assert 0 <= trace_id_hash(t) < 2**64


def test_string_attribute_exact_regex_resource_and_invert() -> None:
    t = trace(span(attributes={"http.route": "/api/v1/users"}))
    assert p.StringAttribute("s", "http.route", ("/api/v1/users",)).evaluate(t, 0) is S
    assert p.StringAttribute("s", "http.route", ("/api",)).evaluate(t, 0) is N
    assert p.StringAttribute("s", "http.route", (r"^/api/v\d",), True).evaluate(t, 0) is S
    res = trace(span(resource_attributes={"deployment.environment": "prod"}))
    assert p.StringAttribute("s", "deployment.environment", ("prod",)).evaluate(res, 0) is S
    inv = p.StringAttribute("s", "http.route", ("/api/v1/users",), invert_match=True)
    assert inv.evaluate(t, 0) is INS
    assert inv.evaluate(trace(), 0) is IS


def test_numeric_attribute() -> None:
    t = trace(span(attributes={"http.status_code": "503"}))
    assert p.NumericAttribute("n", "http.status_code", 500, 599).evaluate(t, 0) is S
    assert p.NumericAttribute("n", "http.status_code", 200, 299).evaluate(t, 0) is N
    assert p.NumericAttribute("n", "http.status_code", min_value=500).evaluate(t, 0) is S
    assert p.NumericAttribute("n", "missing", 0, 1).evaluate(t, 0) is N
    junk = trace(span(attributes={"x": "abc"}))
    assert p.NumericAttribute("n", "x", 0, 1).evaluate(junk, 0) is N
    assert p.NumericAttribute("n", "http.status_code", 500, 599, True).evaluate(t, 0) is INS


def test_boolean_attribute() -> None:
    t = trace(span(attributes={"debug": "true"}))
    assert p.BooleanAttribute("b", "debug", True).evaluate(t, 0) is S
    assert p.BooleanAttribute("b", "debug", False).evaluate(t, 0) is N
    assert p.BooleanAttribute("b", "debug", True, invert_match=True).evaluate(t, 0) is INS


def test_span_count() -> None:
    three = trace(span(), span(), span())
    assert p.SpanCount("c", 3).evaluate(three, 0) is S
    assert p.SpanCount("c", 4).evaluate(three, 0) is N
    assert p.SpanCount("c", 1, 2).evaluate(three, 0) is N
    assert p.SpanCount("c", 4, invert_match=True).evaluate(three, 0) is IS


def test_trace_state() -> None:
    t = trace(span(trace_state="rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"))
    assert p.TraceState("t", "congo", ("t61rcWkgMzE",)).evaluate(t, 0) is S
    assert p.TraceState("t", "congo", ("other",)).evaluate(t, 0) is N
    assert p.TraceState("t", "rojo", ("00f067aa0ba902b7",)).evaluate(t, 0) is S


def test_rate_limiting_per_second() -> None:
    pol = p.RateLimiting("r", 5)
    three = trace(span(), span(), span())
    assert pol.evaluate(three, 10.1) is S
    assert pol.evaluate(three, 10.5) is N  # 3 + 3 > 5 in the same second
    assert pol.evaluate(trace(span(), span()), 10.9) is S
    assert pol.evaluate(three, 11.0) is S  # a new second


class _Fixed:
    """A policy that always answers ``decision``."""

    def __init__(self, name: str, decision: Decision) -> None:
        self.name, self.decision = name, decision

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        return self.decision


class _Raises:
    """A policy whose evaluation fails."""

    def __init__(self, name: str) -> None:
        self.name = name

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("subs", "want_and", "want_drop"),
    [
        ([S, S], S, D),
        ([S, N], N, N),
        ([S, INS], N, N),  # an inverted match rejects
        ([IS, S], S, D),  # an inverted keep counts as a match
        ([D, S], S, D),  # a nested drop match counts as a match (Collector)
        ([N, Decision.ERROR], N, N),  # stops at the first rejection
        ([S, Decision.ERROR], Decision.ERROR, Decision.ERROR),  # a sub-policy error is an error
    ],
)
def test_and_and_drop_combine_sub_decisions_like_the_collector(
    subs: list[Decision], want_and: Decision, want_drop: Decision
) -> None:
    pols: list[p.Policy] = [_Fixed(f"s{i}", d) for i, d in enumerate(subs)]
    assert p.And("a", pols).evaluate(trace(), 0) is want_and
    assert p.Drop("d", pols).evaluate(trace(), 0) is want_drop


def test_and_policy() -> None:
    err = p.StatusCode("e", frozenset({2}))
    slow = p.Latency("l", 100)
    both = p.And("a", [err, slow])
    slow_err = trace(span(status_code=2, end_time_unix_nano=200_000_000))
    assert both.evaluate(slow_err, 0) is S
    assert both.evaluate(trace(span(status_code=2)), 0) is N
    inv = p.StringAttribute("s", "k", ("v",), invert_match=True)
    assert p.And("a", [err, inv]).evaluate(trace(span(status_code=2)), 0) is S


def test_drop_overrides_everything() -> None:
    health = p.StringAttribute("h", "http.route", ("/health",))
    drop = p.Drop("d", [health])
    t = trace(span(attributes={"http.route": "/health"}))
    assert drop.evaluate(t, 0) is D
    assert drop.evaluate(trace(), 0) is N
    keep, reason = p.evaluate_all([p.AlwaysSample("all"), drop], t, 0)
    assert (keep, reason) == (False, "d")
    assert p.evaluate_all([p.AlwaysSample("all"), drop], trace(), 0) == (True, "all")


def test_composite_budgets_in_order() -> None:
    err = p.StatusCode("errors", frozenset({2}))
    everything = p.AlwaysSample("rest")
    comp = p.Composite("c", 10, [err, everything], {"errors": 50, "rest": 50})
    two_err = trace(span(status_code=2), span(status_code=2))
    two_ok = trace(span(), span())
    assert comp.evaluate(two_err, 1.0) is S  # errors: 2/5
    assert comp.evaluate(two_err, 1.1) is S  # errors: 4/5
    # errors budget exhausted (6 > 5). As in the Collector, the first keeping sub-policy
    # decides alone: no fall-through to "rest", whose budget stays for other traces.
    assert comp.evaluate(two_err, 1.2) is N
    assert comp.evaluate(two_ok, 1.3) is S  # rest: 2/5
    assert comp.evaluate(two_ok, 1.4) is S  # rest: 4/5
    assert comp.evaluate(two_ok, 1.5) is N  # rest exhausted
    assert comp.evaluate(two_err, 2.0) is S  # next second


def test_composite_zero_percent_is_an_equal_share() -> None:
    comp = p.Composite("c", 4, [p.AlwaysSample("a"), p.AlwaysSample("b")], {"a": 0, "b": 50})
    two = trace(span(), span())
    assert comp.evaluate(two, 0.0) is S  # a: 2 of 4 / 2 sub-policies
    assert comp.evaluate(two, 0.1) is N


def test_composite_sub_policy_error_is_an_error() -> None:
    comp = p.Composite("c", 10, [_Raises("boom")])
    with pytest.raises(RuntimeError):
        comp.evaluate(trace(), 0.0)
    failing = p.Composite("c", 10, [_Fixed("e", Decision.ERROR)])
    assert failing.evaluate(trace(), 0) is Decision.ERROR


def test_composite_total_cap() -> None:
    comp = p.Composite("c", 3, [p.AlwaysSample("a"), p.AlwaysSample("b")])
    two = trace(span(), span())
    assert comp.evaluate(two, 0.0) is S
    assert comp.evaluate(two, 0.5) is N  # 4 > total 3, even though "b" alone would allow it


def test_evaluate_all_reasons() -> None:
    pols: list[p.Policy] = [p.StatusCode("errors", frozenset({2})), p.Latency("slow", 100)]
    assert p.evaluate_all(pols, trace(span(status_code=2)), 0) == (True, "errors")
    assert p.evaluate_all(pols, trace(), 0) == (False, "no_policy_matched")


def test_unsalted_probabilistic_agrees_with_ingest_head_sampling() -> None:
    import random

    from core.consistent_sampling import keep_span, ratio_threshold

    rng = random.Random(9)
    for pct in (1.0, 10.0, 25.0, 50.0, 90.0):
        threshold = ratio_threshold(pct / 100)
        ids = [rng.randbytes(16) for _ in range(2000)]
        tail = [in_sample(t, pct) for t in ids]
        head = [keep_span(t, "", threshold)[0] for t in ids]
        assert tail == head
        assert abs(sum(tail) / len(ids) - pct / 100) < 0.04

"""The rule that combines top-level policy decisions, one row per behaviour.

The rule is the OTel Collector's (tailsamplingprocessor ``makeDecision``), stated in
streams/policies.py's docstring and streams/README.md. Each row lists the decisions of policies
named p0, p1, ... in evaluation order, and the expected (keep?, reason label). ``RAISE`` is a
policy whose evaluation raises, which the combination must treat like an ``ERROR`` decision.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streams import policies as p
from streams.policies import NO_POLICY_MATCHED, Decision, TraceView

S, N, IS, INS, D, E = (
    Decision.SAMPLED,
    Decision.NOT_SAMPLED,
    Decision.INVERT_SAMPLED,
    Decision.INVERT_NOT_SAMPLED,
    Decision.DROPPED,
    Decision.ERROR,
)
RAISE = "raise"
Row = tuple[str, list["Decision | str"], tuple[bool, str]]

ROWS: list[Row] = [
    ("no policies drops", [], (False, NO_POLICY_MATCHED)),
    ("sampled keeps", [S], (True, "p0")),
    ("not sampled drops", [N], (False, NO_POLICY_MATCHED)),
    ("all not sampled drops", [N, N, N], (False, NO_POLICY_MATCHED)),
    ("sampled wins over not sampled", [N, S], (True, "p1")),
    ("first sampled policy is the reason", [N, S, S], (True, "p1")),
    ("inverted sampled alone keeps", [IS], (True, "p0")),
    ("inverted sampled with another sampled keeps", [IS, S], (True, "p1")),
    ("inverted sampled with another not sampled drops", [IS, N], (False, "p1")),
    ("not sampled before inverted sampled also drops", [N, IS], (False, "p0")),
    ("sampled rescues inverted sampled vetoed by not sampled", [IS, N, S], (True, "p2")),
    ("inverted not sampled drops", [INS], (False, "p0")),
    ("inverted not sampled wins over sampled", [S, INS], (False, "p1")),
    ("inverted not sampled wins over inverted sampled", [IS, INS], (False, "p1")),
    ("first inverted not sampled is the reason", [INS, S, INS], (False, "p0")),
    ("drop policy wins over sampled", [S, D], (False, "p1")),
    ("drop policy wins over inverted sampled", [IS, D], (False, "p1")),
    ("drop policy wins over inverted not sampled", [INS, D], (False, "p1")),
    ("evaluation stops at the first drop", [D, D], (False, "p0")),
    ("error is ignored", [E], (False, NO_POLICY_MATCHED)),
    ("error is ignored next to sampled", [E, S], (True, "p1")),
    ("error does not veto inverted sampled", [E, IS], (True, "p1")),
    ("error does not veto sampled like inverted not sampled", [S, E], (True, "p0")),
    ("raising policy counts as an error", [RAISE, S], (True, "p1")),
    ("raising policy alone drops", [RAISE], (False, NO_POLICY_MATCHED)),
]


class _Fixed:
    """A policy that always answers the same decision (or raises), recording its calls."""

    def __init__(self, name: str, answer: Decision | str) -> None:
        self.name, self.answer, self.calls = name, answer, 0

    def evaluate(self, trace: TraceView, now: float) -> Decision:
        self.calls += 1
        if self.answer == RAISE:
            raise RuntimeError("policy bug")
        assert isinstance(self.answer, Decision)
        return self.answer


def _policies(answers: list[Decision | str]) -> list[_Fixed]:
    return [_Fixed(f"p{i}", a) for i, a in enumerate(answers)]


TRACE = TraceView(b"\x01" * 16, [])


@pytest.mark.parametrize(("answers", "want"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_combination_rule(answers: list[Decision | str], want: tuple[bool, str]) -> None:
    pols = _policies(answers)
    assert p.evaluate_all(pols, TRACE, 0.0) == want
    # final_decision (no names) agrees, with errors given as the ERROR decision.
    decisions = [E if a == RAISE else a for a in answers]
    assert all(isinstance(d, Decision) for d in decisions)
    combined = p.final_decision([d for d in decisions if isinstance(d, Decision)])
    assert combined is (S if want[0] else N)


def test_policies_after_a_drop_are_not_evaluated() -> None:
    """Like the Collector: a dropped trace must not spend a later rate limit's budget."""
    pols = _policies([S, D, S])
    assert p.evaluate_all(pols, TRACE, 0.0) == (False, "p1")
    assert [x.calls for x in pols] == [1, 1, 0]


def test_every_decision_is_covered() -> None:
    """A new Decision member must get a row of its own (and a place in the rule)."""
    covered = {a for _, answers, _ in ROWS for a in answers if isinstance(a, Decision)}
    assert covered == set(Decision)


def _rule_text(text: str) -> str:
    """The numbered rule through the reason labels, markup and line breaks normalised."""
    flat = " ".join(text.replace("``", "`").split())
    start = flat.index("1. any `DROPPED`")
    return flat[start : flat.index("`no_policy_matched`.", start)]


def test_readme_states_the_same_rule_as_the_code() -> None:
    readme = Path(__file__).resolve().parents[2] / "streams" / "README.md"
    assert p.__doc__ is not None
    assert _rule_text(readme.read_text()) == _rule_text(p.__doc__)

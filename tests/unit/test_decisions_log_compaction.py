"""Why the streams decisions log is ``cleanup.policy=delete`` and never compacted.

Compaction keeps only the latest record per key. The worker keys every state record by its
raw partition (streams/app.py ``deliver``) and each record is a *delta*: the decisions of one
tick, span keys appended to earlier ones. Folding a compacted log (one record per key) must
give the same state as folding the whole log for compaction to be safe; these properties show
it does not, for any log of two or more ticks with distinct traces. If the record layout ever
becomes "latest per key is the whole truth" (e.g. one record per trace id), this test fails
and compaction can be reconsidered (core/topic_overrides.py refuses it until then).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.partition_processor import RestoredState
from streams.state_log import apply_state, encode_state

PARTITION_KEY = b"0"  # what deliver() keys a state record of raw partition 0 by


def _fold(records: list[tuple[bytes, bytes]]) -> dict[str, tuple[bool, int]]:
    state = RestoredState()
    latest: dict[str, tuple[bool, int]] = {}
    for _key, value in records:
        apply_state(state, latest, value)
    return latest


def _compact(records: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    last = {key: i for i, (key, _) in enumerate(records)}
    return [r for i, r in enumerate(records) if last[r[0]] == i]


_trace = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)


@given(st.lists(st.lists(_trace, min_size=1, max_size=3, unique=True), min_size=2, max_size=6))
def test_compacting_the_decisions_log_would_lose_decisions(ticks: list[list[str]]) -> None:
    records = []
    for offset, traces in enumerate(ticks, start=1):
        decisions = [(t, True, offset) for t in traces]
        records.append((PARTITION_KEY, encode_state(decisions, offset)))
    full, compacted = _fold(records), _fold(_compact(records))
    assert set(compacted) == set(ticks[-1])  # only the last tick's decisions survive
    lost = set(full) - set(compacted)
    assert lost == {t for tick in ticks[:-1] for t in tick} - set(ticks[-1])

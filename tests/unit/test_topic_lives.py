"""The decision behind the sink's rejoin (sinks/topic_lives.py): which topics began a new life
between two looks at their ids, for any sequence of looks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sinks.topic_lives import new_lives

TOPICS = st.sampled_from(["spans.sampled", "metrics.red", "graph.edges", "pipeline.accounting"])
# Ids as a broker gives them, plus None for "the broker says it does not exist"; a tiny
# alphabet makes equal ids in two looks as likely as different ones.
IDS = st.one_of(st.none(), st.sampled_from(["AaI7a", "AaI7b", "Zz0"]))
LOOK = st.dictionaries(TOPICS, IDS, max_size=4)


@given(LOOK, LOOK)
def test_a_new_life_is_a_known_topic_that_exists_now_under_another_id(
    previous: dict[str, str | None], current: dict[str, str | None]
) -> None:
    expected = [
        t
        for t in current
        if t in previous and current[t] is not None and current[t] != previous[t]
    ]
    assert new_lives(previous, current) == expected


@given(LOOK)
def test_first_sight_and_an_unchanged_look_are_no_new_life(look: dict[str, str | None]) -> None:
    assert new_lives({}, look) == []
    assert new_lives(look, look) == []


@given(st.lists(LOOK, min_size=1, max_size=12))
def test_over_a_sequence_of_looks_each_return_and_each_new_id_is_reported_once(
    looks: list[dict[str, str | None]],
) -> None:
    """What the watch does: remember each topic's last known id, report on each look. A topic
    is reported exactly when its id moved to a new value or it came back from missing; a
    topic that disappears and never returns is never reported."""
    known: dict[str, str | None] = {}
    for look in looks:
        reported = new_lives(known, look)
        for topic, topic_id in look.items():
            moved = topic in known and topic_id is not None and known[topic] != topic_id
            assert (topic in reported) == moved
        assert set(reported) <= set(look)
        assert len(reported) == len(set(reported))
        known.update(look)

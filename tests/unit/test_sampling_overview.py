"""The sampling overview's parameters and document (query/sampling_overview.py).

Every input path of the parameters is attacked with hypothesis (empty, huge, malformed,
duplicated values): an answer is either a valid OverviewQuery within the bounds or a
BadRequestError naming the parameter, never another exception. The documents built from
arbitrary rows validate against the published schema (query/openapi.yaml).
"""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from query.params import BadRequestError
from query.sampling_overview import (
    DEFAULT_LOOKBACK_SECONDS,
    MAX_POINTS,
    applied_probability,
    build_overview,
    parse_overview_query,
    service_names,
)
from query.sampling_strategies import (
    PROBABILISTIC,
    RATE_LIMITING,
    OperationProbability,
    PerOperation,
    Strategy,
)
from tests.openapi_contract import component_schema

INTERVAL = 60


def test_defaults_and_accepted_values() -> None:
    assert parse_overview_query([], [], INTERVAL).lookback_seconds == DEFAULT_LOOKBACK_SECONDS
    assert parse_overview_query([""], [""], INTERVAL).service == ""
    q = parse_overview_query(["frontend"], ["1h30m"], INTERVAL)
    assert (q.service, q.lookback_seconds) == ("frontend", 5400)
    assert parse_overview_query([], ["1m"], INTERVAL).lookback_seconds == 60
    assert parse_overview_query([], ["168h"], INTERVAL).lookback_seconds == MAX_POINTS * 60


@pytest.mark.parametrize(
    ("services", "lookbacks", "needle"),
    [
        (["a", "b"], [], "'service' must be given at most once"),
        ([], ["1h", "2h"], "'lookback' must be given at most once"),
        (["x" * 1025], [], "'service' is longer than 1024"),
        ([], ["59s"], "between 60s"),
        ([], ["0"], "between 60s"),
        ([], ["169h"], "and 604800s"),
        ([], ["1.5s"], "whole seconds"),
        ([], ["1500ms"], "whole seconds"),
        ([], ["-1h"], "invalid duration"),
        ([], ["1d"], "invalid duration"),
        ([], ["h"], "invalid duration"),
        ([], ["9" * 65 + "s"], "longer than 64"),
        ([], ["9999999999h"], "out of range"),
    ],
)
def test_rejections_name_the_parameter(
    services: list[str], lookbacks: list[str], needle: str
) -> None:
    with pytest.raises(BadRequestError, match=needle):
        parse_overview_query(services, lookbacks, INTERVAL)


@settings(deadline=None)  # content, not timing: a busy CI machine is slow
@given(
    services=st.lists(st.text(max_size=1100), max_size=3),
    lookbacks=st.lists(
        st.one_of(
            st.text(max_size=80),
            st.from_regex(r"[0-9]{1,12}(\.[0-9]{1,10})?(ns|us|µs|ms|s|m|h)", fullmatch=True),
        ),
        max_size=3,
    ),
    interval=st.integers(1, 86_400),
)
def test_any_parameters_parse_or_are_a_bad_request(
    services: list[str], lookbacks: list[str], interval: int
) -> None:
    try:
        q = parse_overview_query(services, lookbacks, interval)
    except BadRequestError as exc:
        assert "'service'" in str(exc) or "'lookback'" in str(exc)
        return
    assert len(services) <= 1 and len(lookbacks) <= 1
    assert q.service == (services[0] if services else "") and len(q.service) <= 1024
    assert interval <= q.lookback_seconds <= MAX_POINTS * interval


def test_applied_probability_follows_api_v2() -> None:
    per_op = Strategy(
        PROBABILISTIC, 0.5, PerOperation(0.25, 1.0, 0.0, (OperationProbability("GET /a", 0.1),))
    )
    assert applied_probability(per_op, "GET /a") == 0.1
    assert applied_probability(per_op, "GET /other") == 0.25
    assert applied_probability(Strategy(PROBABILISTIC, 0.3), "op") == 0.3
    assert applied_probability(Strategy(RATE_LIMITING, 5), "op") is None
    limited_with_ops = Strategy(RATE_LIMITING, 5, PerOperation(0.2))
    assert applied_probability(limited_with_ops, "op") == 0.2


names = st.text(min_size=1, max_size=20)
probabilities = st.floats(0, 1)
rates = st.floats(0, 1e6)


@settings(deadline=None)  # content, not timing: a busy CI machine is slow
@given(
    history=st.lists(
        st.tuples(names, names, st.integers(0, 2**32), probabilities, probabilities, rates, rates),
        max_size=30,
    ),
    throughput=st.lists(st.tuples(names, names, st.integers(0, 2**32), st.integers(0, 2**40))),
    named=st.lists(names, max_size=5),
    interval=st.integers(1, 3600),
)
def test_any_rows_build_a_document_of_the_published_schema(
    history: list[tuple[str, str, int, float, float, float, float]],
    throughput: list[tuple[str, str, int, int]],
    named: list[str],
    interval: int,
) -> None:
    fixed = Strategy(
        PROBABILISTIC, 0.5, PerOperation(0.5, 0.1, 0.0, (OperationProbability("only-here", 0.2),))
    )
    listed = service_names(named, history, throughput)
    resolved = {
        n: (fixed, "file") if n in named else (Strategy(RATE_LIMITING, 3), "default")
        for n in listed
    }
    doc = build_overview(
        start=0,
        end=10,
        interval_seconds=interval,
        adaptive=True,
        default=Strategy(PROBABILISTIC, 0.001),
        resolved=resolved,
        history=history,
        throughput=throughput,
        truncated=False,
    )
    jsonschema.validate(
        doc, component_schema("SamplingOverview"), cls=jsonschema.Draft202012Validator
    )
    assert [s["service"] for s in doc["services"]] == sorted(set(listed))
    points = sum(len(o["history"]) for s in doc["services"] for o in s["operations"])
    assert points == len(history)  # every row is placed, under its own service and operation
    seen = sum(len(o["throughput"]) for s in doc["services"] for o in s["operations"])
    assert seen == len(throughput)
    for s in doc["services"]:
        ops = [o["operation"] for o in s["operations"]]
        assert ops == sorted(set(ops))
        if s["service"] in named:
            assert "only-here" in ops  # operations the strategy names are listed without data
        for o in s["operations"]:
            times = [p["time"] for p in o["history"]]
            assert times == sorted(times)

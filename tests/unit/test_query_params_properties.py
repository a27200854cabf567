"""Property-based tests of the query parameter parsers (hypothesis).

Whatever a client sends, a parser either returns a value within its documented bound or raises
BadRequestError (the API's 400); any other exception would be a 500. Valid values round-trip.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from query.params import (
    MAX_DURATION_NS,
    MAX_LIMIT,
    MAX_TAGS,
    MAX_TIME_MS,
    MAX_TIME_NS,
    MAX_TIME_US,
    BadRequestError,
    format_duration_ns,
    parse_dependencies_range,
    parse_duration_ns,
    parse_int,
    parse_tags,
    parse_trace_query,
    parse_us_range,
)
from query.red import MAX_POINTS, MAX_STEP_SECONDS, MIN_STEP_SECONDS, choose_step

NOW = 1_700_000_000_000_000_000
INT64 = 2**63
# Integers around every limit: the bound itself, one past it, int64/uint64 edges, and huge.
EDGES = [
    0,
    1,
    -1,
    MAX_TIME_US,
    MAX_TIME_US + 1,
    MAX_TIME_MS,
    MAX_TIME_MS + 1,
    MAX_TIME_NS,
    INT64,
    2**64,
    2**64 - 1,
    2**32,
    2**40,
    10**400,
]
edge_ints = st.sampled_from(EDGES) | st.integers() | st.integers(-(2**70), 2**70)
# Text that looks like numbers/durations as well as arbitrary text.
number_text = (
    edge_ints.map(str)
    | st.builds(
        lambda n, u: f"{n}{u}",
        edge_ints,
        st.sampled_from(["ns", "us", "ms", "s", "m", "h", "µs", "d", ""]),
    )
    | st.text(max_size=80)
    | st.text(alphabet="0123456789.-+_e hmsunµ ", max_size=100)
)


def outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """The result, or None for the documented 400; anything else propagates and fails."""
    try:
        return fn(*args, **kwargs)
    except BadRequestError:
        return None


@given(number_text)
@example("9" * 400 + "ms")
@example("9" * 400)
def test_durations_are_bounded_or_400(text: str) -> None:
    ns = outcome(parse_duration_ns, text, "minDuration")
    assert ns is None or 0 <= ns <= MAX_DURATION_NS


@given(st.integers(0, MAX_DURATION_NS))
def test_durations_round_trip(ns: int) -> None:
    assert parse_duration_ns(format_duration_ns(ns)) == ns
    assert parse_duration_ns(f"{ns}ns") == ns


@given(st.integers(0, MAX_DURATION_NS // 10**9), st.integers(0, 999_999_999))
def test_fractional_seconds_round_trip(seconds: int, frac_ns: int) -> None:
    text = f"{seconds}.{frac_ns:09d}s"
    expected = seconds * 10**9 + frac_ns
    assert outcome(parse_duration_ns, text) == (expected if expected <= MAX_DURATION_NS else None)


@given(number_text, st.sampled_from([(0, MAX_TIME_US), (0, MAX_TIME_MS), (0, 2**63 - 1)]))
def test_integers_are_bounded_or_400(text: str, bounds: tuple[int, int]) -> None:
    value = outcome(parse_int, text, "start", *bounds)
    assert value is None or bounds[0] <= value <= bounds[1]


@given(edge_ints)
def test_integers_round_trip_inside_bounds(n: int) -> None:
    value = outcome(parse_int, str(n), "end", 0, MAX_TIME_US)
    assert value == (n if 0 <= n <= MAX_TIME_US else None)


trace_params = st.fixed_dictionaries(
    {"service": st.text(min_size=1, max_size=20)},
    optional={
        "start": number_text,
        "end": number_text,
        "lookback": number_text,
        "limit": number_text,
        "minDuration": number_text,
        "maxDuration": number_text,
        "operation": st.text(max_size=20),
    },
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_docs = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
tags_text = json_docs.map(json.dumps) | st.text(max_size=60)


@settings(max_examples=300)
@given(trace_params, st.lists(tags_text, max_size=3), st.lists(st.text(max_size=30), max_size=3))
def test_trace_queries_are_bounded_or_400(
    params: dict[str, str], tags: list[str], pairs: list[str]
) -> None:
    q = outcome(parse_trace_query, params, tags, pairs, now_ns=NOW)
    if q is None:
        return
    assert 0 <= q.start_ns <= q.end_ns <= MAX_TIME_NS
    assert 1 <= q.limit <= MAX_LIMIT and len(q.tags) <= MAX_TAGS
    for d in (q.min_duration_ns, q.max_duration_ns):
        assert d is None or 0 <= d <= MAX_DURATION_NS


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=10),
        st.text(max_size=10) | st.integers() | st.booleans(),
        max_size=MAX_TAGS,
    )
)
def test_tags_round_trip(doc: dict[str, Any]) -> None:
    expected = {
        k: ("true" if v is True else "false" if v is False else str(v)) for k, v in doc.items()
    }
    assert parse_tags([json.dumps(doc)], []) == expected


@given(st.fixed_dictionaries({}, optional={"start": number_text, "end": number_text}))
def test_red_ranges_are_bounded_or_400(params: dict[str, str]) -> None:
    r = outcome(parse_us_range, params, now_ns=NOW)
    assert r is None or 0 <= r[0] < r[1] <= MAX_TIME_NS


@given(st.fixed_dictionaries({}, optional={"endTs": number_text, "lookback": number_text}))
def test_dependency_ranges_are_bounded_or_400(params: dict[str, str]) -> None:
    r = outcome(parse_dependencies_range, params, now_ns=NOW)
    assert r is None or 0 <= r[0] <= r[1] <= MAX_TIME_NS


@given(
    st.integers(0, MAX_TIME_NS),
    st.integers(0, MAX_TIME_NS),
    st.none() | st.integers(0, MAX_STEP_SECONDS),
)
def test_steps_fit_uint32_and_the_point_limit(a: int, b: int, requested: int | None) -> None:
    start, end = min(a, b), max(a, b)
    step = choose_step(start, end, requested)
    assert MIN_STEP_SECONDS <= step <= MAX_STEP_SECONDS < 2**32
    assert (end - start) // 10**9 // step <= MAX_POINTS
    if (
        requested
        and requested % MIN_STEP_SECONDS == 0
        and (end - start) // 10**9 <= requested * MAX_POINTS
    ):
        assert step == requested  # a whole number of RED windows is honoured unless too fine


# -- trace ids, flags, and the search SQL built from any accepted query -----------------------


@given(st.lists(st.text(max_size=40), max_size=6))
@example(["0" * 32, "1", "abc,DEF", ""])
@example(["g" * 16])
@example([",".join(f"{i:x}" for i in range(1, 1600))])
def test_trace_ids_are_32_hex_digits_or_a_400(values: list[str]) -> None:
    from query.params import MAX_TRACE_IDS, parse_trace_ids

    try:
        ids = parse_trace_ids(values)
    except BadRequestError as exc:
        assert "trace" in str(exc) or "traceID" in str(exc)
        return
    assert len(ids) == len(set(ids)) <= MAX_TRACE_IDS
    for trace_id in ids:
        assert len(trace_id) == 32 and set(trace_id) <= set("0123456789abcdef")


@given(st.text(max_size=10))
def test_flags_read_like_go(raw: str) -> None:
    from query.params import optional_bool, pretty_print

    go_true = {"1", "t", "T", "TRUE", "true", "True"}
    go_false = {"0", "f", "F", "FALSE", "false", "False", ""}
    try:
        assert optional_bool({"raw": raw}, "raw") == (raw in go_true)
        assert raw in go_true | go_false
    except BadRequestError:
        assert raw not in go_true | go_false
    assert pretty_print({"prettyPrint": raw}) == (raw not in ("", "false"))


# Tag text that cannot occur in SQL ("zq..."), so finding it in the statement means a value
# was inlined; plus the keys the SQL treats specially, with values that match and that do not.
MARKED = st.text(alphabet="xyz'{}", max_size=6).map(lambda t: "zq" + t)
SPECIAL_KEYS = st.sampled_from(
    ["error", "span.kind", "otel.status_code", "event", "service.name", "otel.scope.name"]
)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["operation", "minDuration", "maxDuration", "limit"]),
        st.sampled_from(["1ms", "2s", "x';DROP", "5", "{filters}", "all"]),
    ),
    st.dictionaries(
        st.one_of(MARKED, SPECIAL_KEYS),
        st.one_of(MARKED, st.sampled_from(["true", "server", "ERROR", "OK", ""])),
        max_size=5,
    ),
)
def test_search_sql_is_one_statement_whatever_the_filters(
    params: dict[str, str], tags: dict[str, str]
) -> None:
    """Every combination yields one SELECT whose text holds no client value (issue 14: two
    filters used to put conditions above SELECT)."""
    from query.search_sql import search_query

    try:
        q = parse_trace_query(
            {"service": "zqservice", **params}, [json.dumps(tags)], [], now_ns=NOW
        )
    except BadRequestError:
        return
    item_index = bool(len(tags) % 2)  # both forms of the attribute tests
    text, values = search_query("zqtenant", q, item_index=item_index)
    assert text.startswith("SELECT ") and ";" not in text
    # One scan, or (with tags) one per way the first tag can match, pooled by one outer query.
    scans = text.count("FROM otel_traces")
    assert (scans == 1) == (not q.tags)
    assert text.count("SELECT") == (1 if scans == 1 else scans + 1)
    assert text.count("WHERE") == scans
    # Each scan, and the outer query that merges them, groups, ranks and cuts at the limit.
    ranked = 1 if scans == 1 else scans + 1
    assert text.count("GROUP BY") == text.count("ORDER BY") == text.count("LIMIT") == ranked
    assert text.rindex("WHERE") < text.rindex("GROUP BY") < text.rindex("ORDER BY")
    assert text.rindex("ORDER BY") < text.rindex("LIMIT")
    assert text.endswith("LIMIT {limit:UInt32}")
    assert ("Items" in text) == (item_index and bool(q.tags))
    assert "zq" not in text and "DROP" not in text  # values travel as parameters
    assert values["tenant"] == "zqtenant" and values["limit"] == q.limit
    placeholders = set(re.findall(r"\{(\w+):", text))
    assert placeholders <= set(values)  # every placeholder has its value

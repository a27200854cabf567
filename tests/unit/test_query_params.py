import json

import pytest

from query.params import (
    MAX_NAME_LENGTH,
    MAX_TAGS,
    MAX_TAGS_JSON_LENGTH,
    BadRequestError,
    parse_dependencies_range,
    parse_duration_ns,
    parse_span_kind,
    parse_tags,
    parse_trace_query,
    parse_us_range,
)
from query.search_sql import search_query


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1s", 10**9),
        ("250ms", 250 * 10**6),
        ("1.5s", 1_500_000_000),
        ("10us", 10_000),
        ("1h30m", 5400 * 10**9),
        ("7ns", 7),
        (".5ms", 500_000),
    ],
)
def test_go_durations(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "5", "ms", "1x", "1s2", "-1s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(BadRequestError):
        parse_duration_ns(text)


def test_tags_from_json_and_pairs() -> None:
    tags = parse_tags(['{"http.status_code": 500, "error": true}'], ["db.system:postgresql"])
    assert tags == {"http.status_code": "500", "error": "true", "db.system": "postgresql"}
    with pytest.raises(BadRequestError):
        parse_tags(["[1]"], [])
    with pytest.raises(BadRequestError):
        parse_tags(["{bad"], [])
    with pytest.raises(BadRequestError):
        parse_tags([], ["novalue"])


def test_trace_query_defaults_and_window() -> None:
    now = 1_700_000_000_000_000_000
    q = parse_trace_query({"service": "api", "lookback": "2h"}, [], [], now_ns=now)
    assert q.end_ns == now and q.start_ns == now - 7200 * 10**9 and q.limit == 20
    q = parse_trace_query(
        {
            "service": "api",
            "start": "1000",
            "end": "5000",
            "limit": "5000",
            "operation": "all",
            "minDuration": "1ms",
        },
        [],
        [],
        now_ns=now,
    )
    assert (q.start_ns, q.end_ns, q.limit, q.operation) == (1_000_000, 5_000_000, 1500, "")
    assert q.min_duration_ns == 1_000_000
    for bad in (
        {},
        {"service": "a", "limit": "x"},
        {"service": "a", "start": "9", "end": "1"},
        {"service": "a", "minDuration": "2s", "maxDuration": "1s"},
    ):
        with pytest.raises(BadRequestError):
            parse_trace_query(bad, [], [], now_ns=now)


def test_search_filters_are_parameterised() -> None:
    q = parse_trace_query(
        {"service": "api", "operation": "GET /", "maxDuration": "1s"},
        ['{"error": "true", "k\'; DROP": "v"}'],
        [],
        now_ns=10**18,
    )
    text, params = search_query("t", q)
    assert "DROP" not in text  # keys and values travel as parameters, never inlined
    assert params["operation"] == "GET /" and params["max_ns"] == 10**9
    assert "StatusCode = 'Error'" in text and "SpanAttributes[{tk1:String}]" in text
    # One scan per way the first tag ("error": span, resource, event attribute, status) can
    # match, each also holding the second tag's whole condition.
    assert text.index("SELECT") == 0 and text.count("WHERE") == 4
    assert text.count("SpanAttributes[{tk1:String}]") == 4
    assert "Items" not in text  # no item index asked for
    indexed, params = search_query("t", q, item_index=True)
    assert params["tkv0"] == "error=true" and params["tkv1"] == "k'; DROP=v"
    assert "has(SpanAttributeItems, {tkv1:String})" in indexed and "DROP" not in indexed


# -- bounds (regressions of the "400 digits / int64 wrap" issue) --------------------------------

NOW = 1_700_000_000_000_000_000
MAX_NS = 2**63 - 1


def bad(
    params: dict[str, str], tags: list[str] | None = None, pairs: list[str] | None = None
) -> str:
    with pytest.raises(BadRequestError) as err:
        parse_trace_query(params, tags or [], pairs or [], now_ns=NOW)
    return str(err.value)


def test_huge_durations_are_a_400_naming_the_parameter() -> None:
    assert "'minDuration'" in bad({"service": "a", "minDuration": "9" * 400 + "ms"})
    assert "'minDuration'" in bad({"service": "a", "minDuration": "9" * 400})
    assert "'maxDuration'" in bad({"service": "a", "maxDuration": "1" + "0" * 30 + "h"})
    assert "'lookback'" in bad({"service": "a", "lookback": "9" * 25 + "h"})
    msg = bad({"service": "a", "minDuration": "9" * 400 + "ms"})
    assert "9" * 100 not in msg  # the value is not echoed back whole


def test_duration_limit_is_int64_nanoseconds() -> None:
    assert parse_duration_ns(f"{MAX_NS}ns") == MAX_NS
    assert parse_duration_ns("2562047h47m16.854775807s") == MAX_NS
    with pytest.raises(BadRequestError, match="out of range"):
        parse_duration_ns(f"{MAX_NS + 1}ns")
    with pytest.raises(BadRequestError, match="out of range"):
        parse_duration_ns("2562048h")


def test_durations_are_exact_and_ascii() -> None:
    assert parse_duration_ns("2.000000001s") == 2_000_000_001  # float would round this
    assert parse_duration_ns("1.9999999999ns") == 1  # Go truncates below 1 ns
    assert parse_duration_ns("0") == 0 and parse_duration_ns("1µs") == parse_duration_ns("1us")
    for text in ("\u0661s", "1_000ms", "1e3ms", "+1s", "1 s", "inf s", "nan"):
        with pytest.raises(BadRequestError):
            parse_duration_ns(text)


@pytest.mark.parametrize("name", ["start", "end"])
def test_times_beyond_datetime64_are_a_400(name: str) -> None:
    max_us = MAX_NS // 1000  # the last µs whose ns value still fits DateTime64(9)
    q = parse_trace_query({"service": "a", "start": "0", "end": str(max_us)}, [], [], now_ns=NOW)
    assert (q.start_ns, q.end_ns) == (0, max_us * 1000) and q.end_ns <= MAX_NS
    for value in (str(max_us + 1), str(2**63), str(2**64 + 5), "9" * 400, "-1", "1.5", "1_0"):
        msg = bad({"service": "a", name: value})
        assert f"'{name}'" in msg, (value, msg)


def test_end_at_the_limit_and_huge_lookback_clamp_to_the_epoch() -> None:
    q = parse_trace_query(
        {"service": "a", "end": str(MAX_NS // 1000), "lookback": "2562047h"}, [], [], now_ns=NOW
    )
    assert q.end_ns == MAX_NS // 1000 * 1000 and q.start_ns >= 0
    q = parse_trace_query({"service": "a", "end": "5", "lookback": "1h"}, [], [], now_ns=NOW)
    assert (q.start_ns, q.end_ns) == (0, 5000)


def test_limit_bounds() -> None:
    def limit(v: str) -> int:
        return parse_trace_query({"service": "a", "limit": v}, [], [], now_ns=NOW).limit

    assert limit("0") == 20 and limit("1") == 1 and limit(str(2**63 - 1)) == 1500
    for v in ("-1", str(2**63), "9" * 400, "1e3", "ten"):
        assert "'limit'" in bad({"service": "a", "limit": v})


def test_names_are_bounded() -> None:
    assert "'service'" in bad({"service": "s" * (MAX_NAME_LENGTH + 1)})
    assert "'operation'" in bad({"service": "a", "operation": "o" * (MAX_NAME_LENGTH + 1)})


def test_tags_malformed_deep_or_huge_are_a_400() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for raw in (
        "{bad",
        "[1]",
        "null",
        '{"k": {"nested": 1}}',
        '{"k": [1]}',
        '{"k": null}',
        '{"": "v"}',
        deep,
        '{"a": ' * 3000 + "1" + "}" * 3000,
        '{"k": "' + "v" * MAX_TAGS_JSON_LENGTH + '"}',
        json.dumps({f"k{i}": "v" for i in range(MAX_TAGS + 1)}),
    ):
        assert "'tags'" in bad({"service": "a"}, tags=[raw]) or "tags" in bad(
            {"service": "a"}, tags=[raw]
        )
    assert "'tag'" in bad({"service": "a"}, pairs=["k:" + "v" * (MAX_NAME_LENGTH + 1)])
    assert "tags" in bad({"service": "a"}, pairs=[f"k{i}:v" for i in range(MAX_TAGS + 1)])


def test_span_kind_is_one_of_jaegers() -> None:
    assert parse_span_kind({"spanKind": "SERVER"}) == "Server"
    assert parse_span_kind({}) == ""
    with pytest.raises(BadRequestError, match="'spanKind'"):
        parse_span_kind({"spanKind": "server'--"})


def test_red_and_dependency_ranges() -> None:
    max_us = MAX_NS // 1000
    assert parse_us_range({"start": "0", "end": str(max_us)}) == (0, max_us * 1000)
    assert parse_us_range({}, now_ns=NOW) == (NOW - 3600 * 10**9, NOW)
    for params in ({"end": str(max_us + 1)}, {"start": str(2**64)}, {"start": "5", "end": "5"}):
        with pytest.raises(BadRequestError, match=r"'start'|'end'"):
            parse_us_range(params, now_ns=NOW)
    max_ms = MAX_NS // 10**6
    assert parse_dependencies_range({"endTs": str(max_ms), "lookback": str(max_ms)}) == (
        0,
        max_ms * 10**6,
    )
    assert parse_dependencies_range({"endTs": "2000", "lookback": "1000"}) == (10**9, 2 * 10**9)
    for params, name in (
        ({"endTs": str(max_ms + 1)}, "endTs"),
        ({"endTs": "9" * 400}, "endTs"),
        ({"lookback": str(2**63)}, "lookback"),
        ({"lookback": "-5"}, "lookback"),
    ):
        with pytest.raises(BadRequestError, match=f"'{name}'"):
            parse_dependencies_range(params, now_ns=NOW)

import pytest

from query.params import BadRequestError, parse_duration_ns, parse_tags, parse_trace_query
from query.store import search_filters


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
    text, params = search_filters(q)
    assert "DROP" not in text  # keys and values travel as parameters, never inlined
    assert params["operation"] == "GET /" and params["max_ns"] == 10**9
    assert "StatusCode = 'Error'" in text and "SpanAttributes[{tk1:String}]" in text

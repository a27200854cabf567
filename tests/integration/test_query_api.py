"""The Jaeger-compatible API against real ClickHouse data written by the sink's own code."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def window(records: list[dict[str, Any]]) -> str:
    start = min(r["start_time_unix_nano"] for r in records) // 1000 - 1
    end = max(r["end_time_unix_nano"] for r in records) // 1000 + 1
    return f"start={start}&end={end}"


def test_services_and_operations(query_api: tuple[str, list]) -> None:
    base, records = query_api
    status, body = get(f"{base}/api/services")
    assert status == 200 and set(body) == {"data", "total", "limit", "offset", "errors"}
    assert body["data"] == sorted({r["service_name"] for r in records})
    assert body["total"] == len(body["data"])
    frontend = [r for r in records if r["service_name"] == "frontend"]
    status, body = get(f"{base}/api/services/frontend/operations")
    assert status == 200 and body["data"] == sorted({r["name"] for r in frontend})
    status, body = get(f"{base}/api/operations?service=frontend&spanKind=server")
    kinds = {2: "server", 3: "client"}
    expected = sorted({r["name"] for r in frontend if kinds[r["kind"]] == "server"})
    assert status == 200 and sorted(o["name"] for o in body["data"]) == expected
    assert {o["spanKind"] for o in body["data"]} == {"server"}
    status, body = get(f"{base}/api/operations")
    assert status == 400 and body["errors"][0]["code"] == 400


def test_trace_by_id_returns_every_span(query_api: tuple[str, list]) -> None:
    base, records = query_api
    trace_id = records[0]["trace_id"]
    expected = [r for r in records if r["trace_id"] == trace_id]
    status, body = get(f"{base}/api/traces/{trace_id}")
    assert status == 200 and body["errors"] is None
    [trace] = body["data"]
    assert trace["traceID"] == trace_id
    assert sorted(s["spanID"] for s in trace["spans"]) == sorted(r["span_id"] for r in expected)
    services = {p["serviceName"] for p in trace["processes"].values()}
    assert services == {r["service_name"] for r in expected}
    by_id = {s["spanID"]: s for s in trace["spans"]}
    for r in expected:
        span = by_id[r["span_id"]]
        assert span["startTime"] == r["start_time_unix_nano"] // 1000
        assert span["duration"] == (r["end_time_unix_nano"] - r["start_time_unix_nano"]) // 1000
        parents = [ref["spanID"] for ref in span["references"] if ref["refType"] == "CHILD_OF"]
        assert parents == ([r["parent_span_id"]] if r["parent_span_id"] else [])
    status, body = get(f"{base}/api/traces/{'f' * 32}")
    assert status == 404 and body["errors"] == [{"code": 404, "msg": "trace not found"}]
    status, body = get(f"{base}/api/traces/not-hex")
    assert status == 400


def test_search_returns_newest_matching_traces(query_api: tuple[str, list]) -> None:
    base, records = query_api
    status, body = get(f"{base}/api/traces?service=frontend&limit=5&{window(records)}")
    assert status == 200
    traces = body["data"]
    assert len(traces) == 5
    # Expected: the 5 traces whose latest frontend span is newest.
    last_seen: dict[str, int] = {}
    for r in records:
        if r["service_name"] == "frontend":
            last_seen[r["trace_id"]] = max(
                last_seen.get(r["trace_id"], 0), r["start_time_unix_nano"]
            )
    newest = sorted(last_seen, key=lambda t: last_seen[t], reverse=True)[:5]
    assert [t["traceID"] for t in traces] == newest
    for t in traces:  # whole traces, not only the matching spans
        assert len(t["spans"]) == sum(1 for r in records if r["trace_id"] == t["traceID"])


def test_search_filters(query_api: tuple[str, list]) -> None:
    base, records = query_api
    w = window(records)
    failing = next(r["service_name"] for r in records if r["status_code"] == 2)
    errors = {
        r["trace_id"] for r in records if r["service_name"] == failing and r["status_code"] == 2
    }
    status, body = get(
        f"{base}/api/traces?service={failing}&limit=100&tags=%7B%22error%22%3A%22true%22%7D&{w}"
    )
    assert status == 200 and {t["traceID"] for t in body["data"]} == errors and errors
    slow = {
        r["trace_id"]
        for r in records
        if r["service_name"] == "frontend"
        and r["end_time_unix_nano"] - r["start_time_unix_nano"] >= 30_000_000
    }
    assert slow and len(slow) < len({r["trace_id"] for r in records})
    status, body = get(f"{base}/api/traces?service=frontend&limit=100&minDuration=30ms&{w}")
    assert {t["traceID"] for t in body["data"]} == slow
    user = next(r["attributes"]["user.id"] for r in records if r["service_name"] == "frontend")
    with_user = {
        r["trace_id"]
        for r in records
        if r["service_name"] == "frontend" and r["attributes"]["user.id"] == user
    }
    status, body = get(f"{base}/api/traces?service=frontend&limit=100&tag=user.id:{user}&{w}")
    assert {t["traceID"] for t in body["data"]} == with_user and with_user
    status, body = get(f"{base}/api/traces?service=frontend&minDuration=abc&{w}")
    assert status == 400 and "invalid duration" in body["errors"][0]["msg"]


def test_dependencies(query_api: tuple[str, list]) -> None:
    base, records = query_api
    by_span = {(r["trace_id"], r["span_id"]): r for r in records}
    expected: dict[tuple[str, str], int] = {}
    for r in records:
        parent = by_span.get((r["trace_id"], r["parent_span_id"]))
        if parent and parent["service_name"] != r["service_name"]:
            key = (parent["service_name"], r["service_name"])
            expected[key] = expected.get(key, 0) + 1
    end_ms = max(r["end_time_unix_nano"] for r in records) // 1_000_000 + 60_000
    status, body = get(f"{base}/api/dependencies?endTs={end_ms}&lookback=3600000")
    assert status == 200
    got = {(d["parent"], d["child"]): d["callCount"] for d in body["data"]}
    assert got == expected and expected


# -- parameter bounds against the real service (each of these used to be a 500 or to wrap) ---

MAX_US = (2**63 - 1) // 1000  # the last µs whose ns value fits DateTime64(9)
MAX_MS = (2**63 - 1) // 1_000_000
ENVELOPE = {"data", "total", "limit", "offset", "errors"}


def get_raw(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


def assert_400(url: str, parameter: str) -> None:
    """A Jaeger error envelope, status 400, whose message names the parameter."""
    status, ctype, raw = get_raw(url)
    assert status == 400 and ctype.startswith("application/json"), (url, status, raw[:200])
    body = json.loads(raw)
    assert set(body) == ENVELOPE and body["data"] is None and body["total"] == 0
    [error] = body["errors"]
    assert error["code"] == 400 and parameter in error["msg"], (url, error)
    assert len(error["msg"]) < 400  # the offending value is not echoed back whole


def test_out_of_range_parameters_are_400_naming_them(query_api: tuple[str, list]) -> None:
    base, records = query_api
    w = window(records)
    digits = "9" * 400
    traces = f"{base}/api/traces?service=frontend"
    assert_400(f"{traces}&minDuration={digits}ms&{w}", "minDuration")
    assert_400(f"{traces}&minDuration={digits}&{w}", "minDuration")
    assert_400(f"{traces}&maxDuration={2**63}ns&{w}", "maxDuration")
    assert_400(f"{traces}&lookback={digits}h", "lookback")
    assert_400(f"{traces}&end={2**63}", "end")
    assert_400(f"{traces}&end={MAX_US + 1}", "end")
    assert_400(f"{traces}&start={2**64}&end={MAX_US}", "start")
    assert_400(f"{traces}&start=-1", "start")
    assert_400(f"{traces}&limit={digits}", "limit")
    assert_400(f"{traces}&limit={2**63}", "limit")
    assert_400(f"{base}/api/red?service=frontend&step={2**40}", "step")
    assert_400(f"{base}/api/red?service=frontend&step={digits}", "step")
    assert_400(f"{base}/api/red?service=frontend&end={2**63}", "end")
    assert_400(f"{base}/api/red/summary?start={digits}", "start")
    assert_400(f"{base}/api/dependencies?endTs={2**63}", "endTs")
    assert_400(f"{base}/api/dependencies?endTs={MAX_MS + 1}", "endTs")
    assert_400(f"{base}/api/dependencies?lookback={digits}", "lookback")
    assert_400(f"{base}/api/operations?service=frontend&spanKind=nope", "spanKind")
    assert_400(f"{base}/api/traces/{'a' * 40}", "trace id")


def test_malformed_deep_or_huge_tags_are_400(query_api: tuple[str, list]) -> None:
    base, records = query_api
    traces = f"{base}/api/traces?service=frontend&{window(records)}"
    # Brackets unencoded: 1,500 levels fit aiohttp's request line and exceed json's recursion.
    assert_400(f"{traces}&tags={'[' * 1500}{']' * 1500}", "tags")
    assert_400(f"{traces}&tags=%7Bbad", "tags")
    assert_400(f"{traces}&tags=%7B%22k%22%3A%7B%22a%22%3A1%7D%7D", "tags")  # {"k":{"a":1}}
    assert_400(f"{traces}&tags=%7B%22k%22%3A%22{'v' * 5000}%22%7D", "tags")
    many = ",".join(f"%22k{i}%22%3A%22v%22" for i in range(40))
    assert_400(f"{traces}&tags=%7B{many}%7D", "tags")


def test_values_at_the_limits_are_served(query_api: tuple[str, list]) -> None:
    """The largest accepted values reach ClickHouse as valid Int64/UInt32 parameters."""
    base, _records = query_api
    status, body = get(f"{base}/api/traces?service=frontend&start=0&end={MAX_US}&limit=5")
    assert status == 200 and len(body["data"]) == 5
    status, body = get(
        f"{base}/api/traces?service=frontend&end={MAX_US}&lookback=2562047h&limit=1"
        f"&minDuration={2**63 - 1}ns"
    )
    assert status == 200 and body["data"] == []
    status, body = get(f"{base}/api/red?service=frontend&start=0&end={MAX_US}&step=10")
    assert status == 200 and body["data"]["step"] >= 10  # raised to fit the point limit
    assert (MAX_US // 1_000_000) // body["data"]["step"] <= 11_000
    status, body = get(f"{base}/api/red?service=frontend&step=315360000")
    assert status == 200 and body["data"]["step"] == 315_360_000
    status, body = get(f"{base}/api/red/summary?start=0&end={MAX_US}")
    assert status == 200 and body["errors"] is None
    status, body = get(f"{base}/api/dependencies?endTs={MAX_MS}&lookback={MAX_MS}")
    assert status == 200 and body["data"]


def test_long_requests_the_api_accepts_reach_it(query_api: tuple[str, list]) -> None:
    """Request lines up to 1 MiB are read, as Jaeger's Go server reads them: a multi-id lookup
    of all 1,500 ids the API allows and a tags JSON at its length limit get the API's answer,
    where aiohttp's default refused every line over 8,190 bytes with a text/plain 400."""
    base, records = query_api
    ids = sorted({r["trace_id"] for r in records})
    absent = [f"{n:032x}" for n in range(1, 1501 - len(ids))]
    url = f"{base}/api/traces?" + "&".join(f"traceID={t}" for t in ids + absent)
    assert len(url) > 60_000
    status, body = get(url)
    assert status == 200 and {t["traceID"] for t in body["data"]} == set(ids)

    tags = json.dumps({"note": "%" * 4000})  # each '%' travels as '%25'
    quoted = urllib.parse.quote(tags)
    assert len(quoted) > 12_000
    status, body = get(f"{base}/api/traces?service=frontend&{window(records)}&tags={quoted}")
    assert status == 200 and body["data"] == []


def test_a_request_line_over_1_mib_is_refused_and_the_server_goes_on(
    query_api: tuple[str, list],
) -> None:
    base, _records = query_api
    status, _ctype, _raw = get_raw(f"{base}/api/services?pad={'x' * (1 << 20)}")
    assert status == 400
    status, body = get(f"{base}/api/services")
    assert status == 200 and body["data"]


def test_header_limits_serve_a_long_referer_and_bound_the_rest(
    query_api: tuple[str, list],
) -> None:
    """A browser sends its page URL as Referer: a long search page still gets answers. One
    header over 64 KiB, or more than 64 headers, is refused before any handler runs."""
    base, _records = query_api

    def status_with(headers: dict[str, str]) -> int:
        request = urllib.request.Request(f"{base}/api/services", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return err.code

    assert status_with({"Referer": f"{base}/search?tags={'x' * 20_000}"}) == 200
    assert status_with({"Referer": "x" * (65 << 10)}) == 400
    assert status_with({f"X-Pad-{i}": "1" for i in range(70)}) == 400
    assert status_with({}) == 200

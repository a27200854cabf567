"""/api/traces search == a plain Python reference, for random filter combinations.

Random spans (typed attributes, events, kinds, statuses, durations spread over two hours) are
stored once for the module; hypothesis then draws any combination of service, operation, tags
(as the ``tags`` JSON object with typed values and as repeated ``tag=k:v``), min/max duration
(Go duration strings in several spellings), limit, and a start/end or lookback window. The
trace ids the API returns, in order, must equal the reference's.

The reference is written from Jaeger's definition of a search, not from the SQL: a trace
matches if one of its spans of the service lies in the window and satisfies every filter; a
tag matches if the span shows that tag (attribute, process tag, log field, or a tag derived
from kind/status/scope) with that text; traces rank by their newest matching span (ties by
trace id, descending) and the first ``limit`` are returned.
"""

from __future__ import annotations

import json
import random
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from deploy.local.stack import LocalStack
from tests.integration.query_stack import QueryStack, query_stack

SERVICES = ("frontend", "cart", "payments", "search")
OPS = ("GET /", "AddItem", "Charge", "SELECT", "publish")
KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
HOUR_NS = 3_600_000_000_000
T0 = 1_764_000_000_000_000_000  # the window's start; spans lie in [T0, T0 + 2h]
DURATIONS_NS = (1_000, 250_000, 1_000_000, 1_500_000, 7_000_000, 30_000_000, 1_000_000_000)


def make_rows(seed: int = 7, traces: int = 70) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    rows = []
    for t in range(traces):
        # Some 64-bit trace ids (high half zero), as Zipkin/B3 clients send them.
        trace_id = f"{t + 1:016x}".rjust(32, "0") if t % 5 == 0 else f"{rnd.getrandbits(128):032x}"
        # A coarse grid of start times: traces tie on their newest span, so the order of
        # equal ranks (and where a limit cuts them) is part of what is compared.
        base = T0 + rnd.randrange(90) * 80_000_000_000
        for _ in range(rnd.randint(1, 6)):
            start = base + rnd.choice((0, 1_000_000, 2_000_000, 100_000_000_000))
            attrs: dict[str, Any] = {}
            if rnd.random() < 0.6:
                attrs["http.status_code"] = rnd.choice((200, 404, 500))
            if rnd.random() < 0.4:
                attrs["retry"] = rnd.choice((True, False))
            if rnd.random() < 0.4:
                attrs["ratio"] = rnd.choice((0.5, 3.0, 2.25, 1e20))
            if rnd.random() < 0.5:
                attrs["user"] = rnd.choice(("alice", "bob", "42", ""))
            if rnd.random() < 0.2:
                # Two pairs whose 'key=value' items are the same text (the item indexes see
                # 'a=b=c' for both), and a value longer than any index token seen in tests.
                attrs.update(rnd.choice(({"a=b": "c"}, {"a": "b=c"}, {"note": "ü" * 300})))
            events = []
            if rnd.random() < 0.3:
                events.append(
                    {
                        "time_unix_nano": start + 10,
                        "name": rnd.choice(("retry", "exception")),
                        "attributes": {"attempt": rnd.randint(1, 3)},
                    }
                )
            status = rnd.choice((0, 0, 1, 2))
            rows.append(
                {
                    "trace_id": trace_id,
                    "span_id": f"{rnd.getrandbits(63) + 1:016x}",
                    "parent_span_id": "",
                    "name": rnd.choice(OPS),
                    "kind": rnd.choice((0, 1, 2, 3, 4, 5)),
                    "service_name": rnd.choice(SERVICES),
                    "resource_attributes": {"host.name": rnd.choice(("h1", "h2"))},
                    "scope_name": rnd.choice(("", "lib")),
                    "start_time_unix_nano": start,
                    "end_time_unix_nano": start + rnd.choice(DURATIONS_NS),
                    "status_code": status,
                    "status_message": "boom" if status == 2 and rnd.random() < 0.5 else "",
                    "attributes": attrs,
                    "events": events,
                }
            )
    return rows


def text(value: Any) -> str:
    """How storage writes an attribute value (the search compares this text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def shown_tags(row: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (key, text) the Jaeger view of the span shows: its tags, process tags, logs."""
    tags = {(k, text(v)) for k, v in row["attributes"].items()}
    tags |= {(k, text(v)) for k, v in row["resource_attributes"].items()}
    for ev in row["events"]:
        tags.add(("event", ev["name"]))
        tags |= {(k, text(v)) for k, v in ev["attributes"].items()}
    if row["kind"] in KINDS:
        tags.add(("span.kind", KINDS[row["kind"]]))
    if row["status_code"] == 2:
        tags |= {("error", "true"), ("otel.status_code", "ERROR")}
    if row["status_code"] == 1:
        tags.add(("otel.status_code", "OK"))
    if row["status_message"]:
        tags.add(("otel.status_description", row["status_message"]))
    if row["scope_name"]:
        tags.add(("otel.scope.name", row["scope_name"]))
    return tags


def reference(rows: list[dict[str, Any]], f: dict[str, Any]) -> list[str]:
    last: dict[str, int] = {}
    for r in rows:
        duration = r["end_time_unix_nano"] - r["start_time_unix_nano"]
        if (
            r["service_name"] == f["service"]
            and f["start_ns"] <= r["start_time_unix_nano"] <= f["end_ns"]
            and (not f["operation"] or r["name"] == f["operation"])
            and (f["min_ns"] is None or duration >= f["min_ns"])
            and (f["max_ns"] is None or duration <= f["max_ns"])
            and all(tag in shown_tags(r) for tag in f["tags"].items())
        ):
            last[r["trace_id"]] = max(last.get(r["trace_id"], 0), r["start_time_unix_nano"])
    ranked = sorted(last, key=lambda t: (last[t], t), reverse=True)
    return ranked[: f["limit"]]


def go_duration(ns: int, style: int) -> str:
    """One duration in one of several Go spellings (all exact)."""
    if style == 0 or ns % 1000:
        return f"{ns}ns"
    if style == 1:
        return f"{ns // 1000}us"
    if style == 2:
        return f"{ns // 1_000_000}.{ns % 1_000_000:06d}ms"
    return f"{ns // 10**9}.{ns % 10**9:09d}s"


def jaeger_id(trace_id: str) -> str:
    return trace_id[16:] if trace_id.startswith("0" * 16) else trace_id


ROWS = make_rows()


@pytest.fixture(scope="module")
def stack(services: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryStack]:
    with query_stack(services, Path(tmp_path_factory.mktemp("search")), ROWS) as s:
        yield s


def pool() -> list[tuple[str, Any]]:
    """(key, typed value) pairs present in the data, plus a few that match nothing."""
    pairs: set[tuple[str, Any]] = set()
    for r in ROWS:
        pairs |= {(k, v) for k, v in r["attributes"].items()}
        for e in r["events"]:
            pairs |= {("event", e["name"]), *((k, v) for k, v in e["attributes"].items())}
        pairs |= {(k, v) for k, v in r["resource_attributes"].items()}
    pairs |= {("span.kind", k) for k in KINDS.values()} | {("error", "true")}
    pairs |= {("otel.status_code", "OK"), ("otel.status_description", "boom")}
    pairs |= {("otel.scope.name", "lib"), ("user", "nobody"), ("missing.key", "")}
    pairs |= {("service.name", "frontend")}  # the process's name, not one of its tags
    return sorted(pairs, key=repr)


# Pairs where a sloppy match goes wrong: an empty value (a missing key reads as "" from a
# ClickHouse map), a number given as JSON int for a string attribute "42", a whole double,
# a key that only the process has, the derived error tag.
TRICKY: list[tuple[str, Any]] = [
    ("missing.key", ""),
    ("user", ""),
    ("user", 42),
    ("ratio", 3.0),
    ("host.name", "h2"),
    ("service.name", "frontend"),
    ("error", True),
]


@st.composite
def filters(draw: st.DrawFn) -> dict[str, Any]:
    f: dict[str, Any] = {"service": draw(st.sampled_from(SERVICES))}
    # Each filter is often absent, so that combinations still find traces to compare.
    f["operation"] = draw(st.sampled_from(("", "", "", *OPS)))
    durations = st.one_of(
        st.none(),
        st.none(),
        st.sampled_from(DURATIONS_NS).flatmap(lambda d: st.sampled_from((d - 1, d, d + 1))),
    )
    f["min_ns"], f["max_ns"] = draw(durations), draw(durations)
    if f["min_ns"] is not None and f["max_ns"] is not None and f["min_ns"] > f["max_ns"]:
        f["min_ns"], f["max_ns"] = f["max_ns"], f["min_ns"]
    pairs = st.one_of(st.sampled_from(TRICKY), st.sampled_from(pool()))
    chosen = draw(
        st.lists(pairs, max_size=draw(st.sampled_from((0, 1, 1, 2, 3))), unique_by=lambda kv: kv[0])
    )
    as_json = draw(st.lists(st.booleans(), min_size=len(chosen), max_size=len(chosen)))
    f["json_tags"] = {k: v for (k, v), j in zip(chosen, as_json, strict=True) if j}
    f["pair_tags"] = {k: text(v) for (k, v), j in zip(chosen, as_json, strict=True) if not j}
    f["tags"] = {k: text(v) for k, v in chosen}
    f["limit"] = draw(st.one_of(st.none(), st.integers(1, 40)))
    edges = st.integers(T0 - HOUR_NS // 2, T0 + 2 * HOUR_NS + HOUR_NS // 2)
    a, b = sorted((draw(edges), draw(edges)))
    if draw(st.booleans()):  # the whole data set, so filters other than time decide
        a, b = T0 - 1, T0 + 3 * HOUR_NS
    f["window"] = draw(st.sampled_from(("start_end", "lookback")))
    f["start_us"], f["end_us"] = a // 1000, b // 1000
    f["style"] = draw(st.integers(0, 3))
    return f


def url(f: dict[str, Any]) -> str:
    q: list[tuple[str, str]] = [("service", f["service"])]
    if f["operation"]:
        q.append(("operation", f["operation"]))
    if f["min_ns"] is not None:
        q.append(("minDuration", go_duration(f["min_ns"], f["style"])))
    if f["max_ns"] is not None:
        q.append(("maxDuration", go_duration(f["max_ns"], 3 - f["style"])))
    if f["json_tags"]:
        q.append(("tags", json.dumps(f["json_tags"])))
    q += [("tag", f"{k}:{v}") for k, v in f["pair_tags"].items()]
    if f["limit"] is not None:
        q.append(("limit", str(f["limit"])))
    q.append(("end", str(f["end_us"])))
    if f["window"] == "start_end":
        q.append(("start", str(f["start_us"])))
    else:
        q.append(("lookback", go_duration((f["end_us"] - f["start_us"]) * 1000, f["style"])))
    return "/api/traces?" + urllib.parse.urlencode(q)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(f=filters())
def test_search_equals_the_reference(stack: QueryStack, f: dict[str, Any]) -> None:
    status, body = stack.get_json(url(f))
    assert status == 200, (url(f), body)
    expected = reference(
        ROWS,
        {
            **f,
            "start_ns": f["start_us"] * 1000,
            "end_ns": f["end_us"] * 1000,
            "limit": f["limit"] or 20,
        },
    )
    event(f"traces found: {min(len(expected), 3)}{'+' if len(expected) > 3 else ''}")
    assert [t["traceID"] for t in body["data"]] == [jaeger_id(t) for t in expected], url(f)


def test_every_filter_at_once_is_not_an_error(stack: QueryStack) -> None:
    """The issue's case: two or more filters used to put SQL above SELECT (a 500)."""
    r = next(r for r in ROWS if r["attributes"].get("http.status_code") and r["events"])
    duration = r["end_time_unix_nano"] - r["start_time_unix_nano"]
    f = {
        "service": r["service_name"],
        "operation": r["name"],
        "min_ns": duration,
        "max_ns": duration,
        "json_tags": {"http.status_code": r["attributes"]["http.status_code"]},
        "pair_tags": {"event": r["events"][0]["name"]},
        "limit": 5,
        "window": "start_end",
        "start_us": T0 // 1000 - 1,
        "end_us": (T0 + 3 * HOUR_NS) // 1000,
        "style": 2,
    }
    f["tags"] = {**{k: text(v) for k, v in f["json_tags"].items()}, **f["pair_tags"]}
    status, body = stack.get_json(url(f))
    assert status == 200
    ids = [t["traceID"] for t in body["data"]]
    assert jaeger_id(r["trace_id"]) in ids
    assert ids == [
        jaeger_id(t)
        for t in reference(ROWS, {**f, "start_ns": T0 - 1000, "end_ns": T0 + 3 * HOUR_NS})
    ]

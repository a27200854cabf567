"""Query-time adjusters (query/adjusters.py): examples from Jaeger's reasoning, then properties."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from query.adjusters import (
    SpanNode,
    adjust,
    correct_clock_skew,
    dedupe_span_ids,
    format_delta,
    host_key,
    sort_tags_and_logs,
)

NO_LIMIT = 2**62


def node(span_id: str, parent: str = "", host: str = "a", start: int = 0, dur: int = 100,
         kind: str = "") -> SpanNode:  # fmt: skip
    return SpanNode(span_id, parent, kind, host, start, dur)


def test_child_on_another_host_is_centred_in_its_parent() -> None:
    parent = node("01", start=1000, dur=100)
    child = node("02", "01", host="b", start=900, dur=20)  # 100 ns "before" its parent
    grandchild = node("03", "02", host="b", start=905, dur=5)  # same host: same clock
    correct_clock_skew([parent, child, grandchild], NO_LIMIT)
    # latency (100 - 20) / 2 = 40: the child starts 40 ns into the parent.
    assert child.shift_ns == 1040 - 900
    assert grandchild.shift_ns == child.shift_ns  # moved with its host's clock
    assert parent.shift_ns == 0 and parent.warnings == []
    assert child.warnings == ["This span's timestamps were adjusted by 140ns"]


def test_child_that_fits_or_shares_the_host_is_left_alone() -> None:
    parent = node("01", start=1000, dur=100)
    inside = node("02", "01", host="b", start=1010, dur=20)
    same_host_outside = node("03", "01", host="a", start=500, dur=20)
    correct_clock_skew([parent, inside, same_host_outside], NO_LIMIT)
    assert inside.shift_ns == 0 and same_host_outside.shift_ns == 0
    assert not inside.changed and not same_host_outside.changed


def test_longer_child_is_only_moved_to_start_with_its_parent() -> None:
    parent = node("01", start=1000, dur=100)
    async_child = node("02", "01", host="b", start=950, dur=500)
    late_child = node("03", "01", host="b", start=1050, dur=500)
    correct_clock_skew([parent, async_child, late_child], NO_LIMIT)
    assert async_child.shift_ns == 50 and late_child.shift_ns == 0


def test_unknown_hosts_are_always_compared_and_large_shifts_refused() -> None:
    parent = node("01", host="", start=10**12, dur=100)
    child = node("02", "01", host="", start=0, dur=10)
    correct_clock_skew([parent, child], max_delta_ns=1_000_000)
    assert child.shift_ns == 0
    assert child.warnings == [
        "max clock skew adjustment delta of 1ms exceeded; not applying calculated delta of "
        f"{format_delta(10**12 + 45)}"
    ]


def test_missing_parent_cycles_and_duplicates_warn_instead_of_crashing() -> None:
    orphan = node("01", "ff")
    a, b = node("0a", "0b"), node("0b", "0a")
    dup1, dup2 = node("05"), node("05")
    selfish = node("06", "06")
    correct_clock_skew([orphan, a, b, dup1, dup2, selfish], NO_LIMIT)
    assert orphan.warnings == [
        "parent span ID=ff is not in the trace; skipping clock skew adjustment"
    ]
    assert "parent cycle" in a.warnings[0] and "parent cycle" in b.warnings[0]
    assert dup2.warnings == ["duplicate span IDs; skipping clock skew adjustment"]
    assert "not in the trace" in selfish.warnings[0]


def test_zipkin_shared_span_gets_a_fresh_id_below_the_client() -> None:
    root = node("0000000000000001", kind="server")
    client = node("00000000000000aa", "0000000000000001", kind="client")
    server = node("00000000000000aa", "0000000000000001", host="b", kind="server")
    below = node("00000000000000bb", "00000000000000aa", host="b", kind="client")
    spans = [root, client, server, below]
    dedupe_span_ids(spans)
    assert server.span_id == "0000000000000002"  # the first id not used in the trace
    assert server.parent_id == "00000000000000aa" and server.relinked
    assert below.parent_id == "0000000000000002"  # the server side's child follows it
    assert client.span_id == "00000000000000aa" and not client.relinked
    assert "shared with a client span" in server.warnings[0]
    assert len({s.span_id for s in spans}) == 4


def test_duplicates_without_a_client_are_kept() -> None:
    a, b = node("01", kind="server"), node("01", kind="server")
    dedupe_span_ids([a, b])
    assert a.span_id == b.span_id == "01" and not a.changed


def test_host_key_prefers_id_then_ip_then_name() -> None:
    assert host_key({"host.name": "n", "host.ip": "1.2.3.4", "host.id": "i"}) == "i"
    assert host_key({"host.name": "n", "host.ip": "1.2.3.4"}) == "1.2.3.4"
    assert host_key({"host.name": "n", "host.ip": '["10.0.0.1","10.0.0.2"]'}) == "10.0.0.1"
    assert host_key({"host.name": "n", "host.ip": "[]"}) == "n"
    assert host_key({"service.name": "s"}) == ""


def test_format_delta_reads_like_go() -> None:
    assert format_delta(0) == "0s"
    assert format_delta(90) == "90ns"
    assert format_delta(-1500) == "-1.5µs"
    assert format_delta(2_000_000) == "2ms"
    assert format_delta(90 * 10**9) == "1m30s"
    assert format_delta(3_723_500_000_000) == "1h2m3.5s"


def test_sort_tags_and_logs() -> None:
    span: dict[str, Any] = {
        "tags": [{"key": "b"}, {"key": "a"}, {"key": "b", "n": 2}],
        "logs": [{"timestamp": 5}, {"timestamp": 1}],
    }
    assert sort_tags_and_logs(span) == ["logs were not in time order; sorted by timestamp"]
    assert span["tags"] == [{"key": "a"}, {"key": "b"}, {"key": "b", "n": 2}]  # stable
    assert [log["timestamp"] for log in span["logs"]] == [1, 5]
    assert sort_tags_and_logs(span) == []  # already sorted: nothing to say


# -- properties -----------------------------------------------------------------------------


@st.composite
def trees(draw: st.DrawFn) -> list[SpanNode]:
    """Random traces: a forest over a few hosts, random times, some missing parents."""
    n = draw(st.integers(1, 25))
    spans = []
    for i in range(n):
        parent = ""
        if i and draw(st.integers(0, 9)):
            parent = f"{draw(st.integers(0, i - 1)):016x}"
        elif i and draw(st.booleans()):
            parent = "ffffffffffffffff"  # not in the trace
        spans.append(
            SpanNode(
                span_id=f"{i:016x}",
                parent_id=parent,
                kind=draw(st.sampled_from(("server", "client", ""))),
                host=draw(st.sampled_from(("a", "b", "c", ""))),
                start_ns=draw(st.integers(0, 10**6)),
                duration_ns=draw(st.integers(0, 10**5)),
            )
        )
    return spans


@settings(max_examples=300)
@given(trees())
def test_cross_host_children_end_up_inside_their_parents(spans: list[SpanNode]) -> None:
    correct_clock_skew(spans, NO_LIMIT)
    by_id = {s.span_id: s for s in spans}
    for s in spans:
        parent = by_id.get(s.parent_id)
        if parent is None:
            assert s.shift_ns == 0  # roots (and orphans) keep their time
            continue
        start, p_start = s.start_ns + s.shift_ns, parent.start_ns + parent.shift_ns
        if s.host != parent.host or not s.host:
            if s.duration_ns <= parent.duration_ns:
                assert p_start <= start
                assert start + s.duration_ns <= p_start + parent.duration_ns
            else:
                assert start >= p_start or s.shift_ns == 0
        else:
            assert s.shift_ns == parent.shift_ns  # one host, one clock
        assert s.changed == (s.shift_ns != 0 or bool(s.warnings))


@settings(max_examples=200)
@given(trees())
def test_adjusting_adjusted_times_changes_nothing(spans: list[SpanNode]) -> None:
    correct_clock_skew(spans, NO_LIMIT)
    again = [
        SpanNode(s.span_id, s.parent_id, s.kind, s.host, s.start_ns + s.shift_ns, s.duration_ns)
        for s in spans
    ]
    correct_clock_skew(again, NO_LIMIT)
    assert all(s.shift_ns == 0 for s in again)


@settings(max_examples=200)
@given(trees(), st.integers(0, 10**5))
def test_no_shift_beyond_the_limit(spans: list[SpanNode], limit: int) -> None:
    correct_clock_skew(spans, limit)
    assert all(abs(s.shift_ns) <= limit for s in spans)


@st.composite
def zipkin_traces(draw: st.DrawFn) -> list[SpanNode]:
    """Traces where some client/server pairs share one span id (Zipkin B3 shared spans)."""
    spans = [SpanNode("0000000000000001", "", "server", "a", 0, 100)]
    for i in range(draw(st.integers(0, 10))):
        parent = draw(st.sampled_from([s.span_id for s in spans]))
        span_id = f"{draw(st.integers(2, 40)):016x}"
        spans.append(SpanNode(span_id, parent, "client", "a", 0, 10))
        if draw(st.booleans()):
            spans.append(SpanNode(span_id, parent, "server", "b", 0, 5))
            if draw(st.booleans()):
                spans.append(SpanNode(f"{100 + i:016x}", span_id, "internal", "b", 0, 1))
    return spans


@settings(max_examples=300)
@given(zipkin_traces())
def test_dedupe_leaves_every_server_span_unique(spans: list[SpanNode]) -> None:
    before = [(s.span_id, s.parent_id, s.kind) for s in spans]
    ids_before = {s.span_id for s in spans}
    adjust(spans, NO_LIMIT)
    for (old_id, _old_parent, kind), s in zip(before, spans, strict=True):
        shared = sum(1 for i, _p, k in before if i == old_id and k == "client") > 0
        if kind == "server" and shared:
            assert s.span_id not in ids_before and s.parent_id == old_id
    servers = [s.span_id for s in spans if s.kind == "server"]
    assert len(servers) == len(set(servers))
    assert all(len(s.span_id) == 16 for s in spans)


# -- the rendered answer: whatever the rows, valid Jaeger JSON, ids unique after adjusting ------


@st.composite
def span_rows(draw: st.DrawFn) -> list[list[Any]]:
    """Rows of one trace as ClickHouse returns them: shared ids, orphans, zero links, hosts."""
    from tests.unit.test_jaeger_model import ROW

    n = draw(st.integers(1, 12))
    rows = []
    for _ in range(n):
        row = list(ROW)
        row[0] = draw(st.sampled_from(["0" * 16 + "ab" * 8, "cd" * 16]))
        row[1] = f"{draw(st.integers(1, 6)):016x}"  # duplicates happen
        row[2] = draw(st.sampled_from(["", "0" * 16, f"{draw(st.integers(1, 9)):016x}"]))
        row[4] = draw(st.sampled_from(["Server", "Client", "Internal", "Unspecified"]))
        row[6] = {"service.name": "s", "host.name": draw(st.sampled_from(["a", "b", ""]))}
        values = st.sampled_from(["1", "x", "2.5", "true", str(2**60)])
        row[9] = draw(st.dictionaries(st.sampled_from(["k", "n", "f"]), values))
        row[10] = draw(st.integers(0, 10**12))
        row[11] = draw(st.integers(0, 10**9))
        times = draw(st.lists(st.integers(0, 10**12), max_size=3))
        row[14], row[15], row[16] = times, ["e"] * len(times), [{}] * len(times)
        links = draw(st.lists(st.sampled_from(["0" * 32, "ef" * 16, ""]), max_size=2))
        row[17], row[18] = links, ["1" * 16] * len(links)
        rows.append(row)
    return sorted(rows, key=lambda r: (r[10], r[1]))


@functools.cache
def trace_validator() -> Any:
    import jsonschema

    from tests.openapi_contract import component_schema

    return jsonschema.Draft202012Validator(component_schema("Trace"))


@settings(max_examples=80, deadline=None)
@given(span_rows(), st.booleans())
def test_rendered_traces_follow_the_contract(rows: list[list[Any]], adjusted: bool) -> None:
    from query.jaeger_model import traces_json

    traces = traces_json(rows, adjusted=adjusted)
    for trace in traces:
        trace_validator().validate(trace)
        spans = trace["spans"]
        assert len(spans) == sum(1 for r in rows if r[0].endswith(trace["traceID"]))
        if adjusted:
            for s in spans:
                assert [t["key"] for t in s["tags"]] == sorted(t["key"] for t in s["tags"])
                times = [log["timestamp"] for log in s["logs"]]
                assert times == sorted(times) or s["warnings"]
            kind = {s["spanID"]: {t["value"] for t in s["tags"] if t["key"] == "span.kind"}
                    for s in spans}  # fmt: skip
            servers = {i for s in spans if "server" in kind[i := s["spanID"]]}
            clients = {i for s in spans if "client" in kind[i := s["spanID"]]}
            assert not servers & clients  # no server span still shares a client's id

"""api_v3 answers pass through the v1 adjusters (query/adjusters.py), in OTLP JSON form."""

from __future__ import annotations

from typing import Any

from query.otlp_json_out import EVENTS_SORTED_WARNING, WARNINGS_ATTRIBUTE, traces_data

TRACE = "ab" * 16


def _row(span: str, parent: str, kind: str, host: str, start: int, dur: int) -> list[Any]:
    """A v3_trace_spans.sql row of one span (column order of query/otlp_json_out.py)."""
    res = {"host.name": host} if host else {}
    return [
        TRACE, span, parent, "", "op", kind, "svc-" + host, res, "", "", {}, start, dur, "Unset",
        "", [], [], [], [], [], [], [],
    ]  # fmt: skip


def _spans(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def _warnings(span: dict[str, Any]) -> list[str]:
    return [
        v["stringValue"]
        for a in span.get("attributes", [])
        if a["key"] == WARNINGS_ATTRIBUTE
        for v in a["value"]["arrayValue"]["values"]
    ]


def test_child_on_another_host_is_moved_into_its_parent_with_a_warning() -> None:
    # The server child was recorded 1 s before its client parent by a skewed clock.
    rows = [
        _row("00000000000000a1", "", "Client", "h1", 10_000_000_000, 100_000_000),
        _row("00000000000000b2", "00000000000000a1", "Server", "h2", 9_000_000_000, 50_000_000),
    ]
    client, server = _spans(traces_data(rows))
    # Centred: 25 ms of latency each way, so the child starts 25 ms after the parent.
    assert server["startTimeUnixNano"] == str(10_025_000_000)
    assert server["endTimeUnixNano"] == str(10_075_000_000)
    assert _warnings(server) == ["This span's timestamps were adjusted by 1.025s"]
    assert _warnings(client) == []
    raw = _spans(traces_data(rows, adjusted=False))[1]
    assert raw["startTimeUnixNano"] == str(9_000_000_000) and _warnings(raw) == []


def test_zipkin_shared_span_id_gets_a_fresh_id_below_the_client_side() -> None:
    shared = "00000000000000c3"
    rows = [
        _row(shared, "", "Client", "h1", 1_000, 10_000),
        _row(shared, shared, "Server", "h1", 2_000, 5_000),
    ]
    client, server = _spans(traces_data(rows))
    assert client["spanId"] == shared and "parentSpanId" not in client
    assert server["spanId"] == "0000000000000001" and server["parentSpanId"] == shared
    assert _warnings(server) == [
        f"span ID {shared} is shared with a client span (Zipkin); shown as 0000000000000001"
    ]


def test_missing_parent_and_unsorted_events_are_reported_on_the_span() -> None:
    row = _row("00000000000000d4", "00000000000000ff", "Server", "h1", 5_000, 1_000)
    row[15], row[16], row[17] = [7_000, 6_000], ["late", "early"], [{}, {}]
    [span] = _spans(traces_data([row]))
    assert [e["name"] for e in span["events"]] == ["early", "late"]
    assert _warnings(span) == [
        EVENTS_SORTED_WARNING,
        "parent span ID=00000000000000ff is not in the trace; skipping clock skew adjustment",
    ]
    [raw] = _spans(traces_data([row], adjusted=False))
    assert [e["name"] for e in raw["events"]] == ["late", "early"] and _warnings(raw) == []


def test_cut_warning_leads_the_first_spans_adjuster_warnings() -> None:
    row = _row("00000000000000e5", "00000000000000ff", "Server", "h1", 5_000, 1_000)
    [span] = _spans(traces_data([row], stored={TRACE: 3}))
    assert _warnings(span) == [
        "trace has 3 spans; showing the first 1 by start time",
        "parent span ID=00000000000000ff is not in the trace; skipping clock skew adjustment",
    ]

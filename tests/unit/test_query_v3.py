"""api_v3 pieces that need no server: parameters, the search SQL, OTLP JSON, descriptors."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import example, given
from hypothesis import strategies as st

from query import api_v3_proto
from query.grpc_query import chunk_resource_spans, traces_messages
from query.otlp_json_out import WARNINGS_ATTRIBUTE, TracesDataBuilder, traces_data
from query.params import MAX_TIME_NS, BadRequestError
from query.v3_params import (
    V3Query,
    format_rfc3339_ns,
    parse_find_query,
    parse_get_trace,
    parse_rfc3339_ns,
    parse_trace_id,
)
from query.v3_search import trace_ids_query
from tests.jaeger_idl import idl_files, otlp_ids_to_base64, parse
from tests.jaeger_idl import pool as idl_pool


@given(st.integers(0, MAX_TIME_NS))
def test_rfc3339_round_trip(ns: int) -> None:
    text = format_rfc3339_ns(ns)
    assert parse_rfc3339_ns(text, "t") == ns
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(\d{3}|\d{6}|\d{9}))?Z", text)


def test_rfc3339_offsets_and_limits() -> None:
    assert parse_rfc3339_ns("1970-01-01T01:00:00+01:00", "t") == 0
    assert (
        parse_rfc3339_ns("2026-01-02T03:04:05.5Z", "t")
        == int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()) * 10**9 + 500_000_000
    )
    for bad in (
        "",
        "yesterday",
        "1969-12-31T23:59:59Z",
        "2262-04-11T23:47:16.854775808Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:60Z",
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00+25:00",
        "2026-01-01T00:00:00.1234567890Z",
        "\uff19\uff19\uff19\uff19-01-01T00:00:00Z",  # fullwidth digits
        "2" * 100,
    ):
        with pytest.raises(BadRequestError):
            parse_rfc3339_ns(bad, "t")


@given(st.binary(min_size=8, max_size=8) | st.binary(min_size=16, max_size=16))
def test_trace_id_spellings(raw: bytes) -> None:
    want = raw.hex().rjust(32, "0")
    assert parse_trace_id(raw.hex()) == want
    assert parse_trace_id(raw.hex().upper()) == want
    # base64 is tried only when the text is not hex (Jaeger's order), e.g. "AAAAAAAAAAA" is hex.
    for text in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ):
        if not re.fullmatch("[0-9a-fA-F]{1,32}", text):
            assert parse_trace_id(text) == want


@given(st.text(max_size=40))
def test_trace_id_never_crashes(text: str) -> None:
    try:
        got = parse_trace_id(text)
    except BadRequestError:
        return
    assert re.fullmatch("[0-9a-f]{32}", got)


PARAM_NAMES = [
    "query.serviceName",
    "query.service_name",
    "query.operationName",
    "query.attributes",
    "query.startTimeMin",
    "query.startTimeMax",
    "query.start_time_min",
    "query.durationMin",
    "query.duration_max",
    "query.searchDepth",
    "query.num_traces",
    "query.rawTraces",
    "query.filter",
]


@given(
    st.dictionaries(
        st.sampled_from(PARAM_NAMES),
        st.one_of(
            st.text(max_size=50),
            st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "1s", "5", "true"]),
        ),
    )
)
def test_find_query_refuses_with_a_reason_or_is_bounded(params: dict[str, str]) -> None:
    try:
        q = parse_find_query(params)
    except BadRequestError as exc:
        assert str(exc)
        return
    assert q.start_min_ns < q.start_max_ns
    assert 1 <= q.search_depth <= 1500


def test_find_query_camel_case_wins_and_defaults() -> None:
    q = parse_find_query(
        {
            "query.serviceName": "new",
            "query.service_name": "old",
            "query.start_time_min": "2026-01-01T00:00:00Z",
            "query.startTimeMax": "2026-01-02T00:00:00Z",
            "query.durationMin": "1.5s",
            "query.attributes": '{"http.method": "GET"}',
        }
    )
    assert q.service == "new" and q.duration_min_ns == 1_500_000_000
    assert q.search_depth == 100 and q.attributes == {"http.method": "GET"}
    with pytest.raises(BadRequestError, match="not supported"):
        parse_find_query({"query.filter": "{}"})
    p = parse_get_trace("AbC", {"raw_traces": "1"})
    assert p.trace_id == "abc".rjust(32, "0") and p.raw_traces


@given(
    st.builds(
        V3Query,
        start_min_ns=st.integers(0, 10**18),
        start_max_ns=st.integers(10**18 + 1, MAX_TIME_NS),
        service=st.text(max_size=5),
        operation=st.text(max_size=5),
        attributes=st.dictionaries(
            st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=4
        ),
        duration_min_ns=st.none() | st.integers(0, 10**12),
        duration_max_ns=st.none() | st.integers(0, 10**12),
        search_depth=st.integers(1, 1500),
    )
)
# Found by the property: a tag derived from a column (error, span.kind, otel.status_code)
# bound its key although no SQL read it.
@example(V3Query(0, 10**18 + 1, "", "", {"error": "", "span.kind": "x", "a": "b"}, None, None, 1))
def test_search_sql_binds_every_value(q: V3Query) -> None:
    """Every placeholder has a parameter and every value is bound, never pasted into SQL."""
    query = trace_ids_query(q, "tenant")
    placeholders = set(re.findall(r"\{(\w+):\w+\}", query.text))
    assert placeholders == set(query.params)
    assert (
        query.text.count("{")
        == query.text.count("}")
        == len(re.findall(r"\{\w+:\w+\}", query.text))
    )
    conditions = query.text.count("\n  AND ") + 1
    assert conditions == 3 + bool(q.service) + bool(q.operation) + (
        q.duration_min_ns is not None
    ) + (q.duration_max_ns is not None) + len(q.attributes)


ROW_TEXT = st.text(max_size=8)
HEX16 = st.binary(min_size=8, max_size=8).map(bytes.hex)
HEX32 = st.binary(min_size=16, max_size=16).map(bytes.hex)


def _row(trace: str, span: str, **kw: Any) -> list[Any]:
    row = [
        trace, span, "", "", "op", "Server", "svc", {}, "", "", {}, 1_000, 500, "Unset", "",
        [], [], [], [], [], [], [],
    ]  # fmt: skip
    names = ["parent", "state", "name", "kind", "service", "res", "scope", "version", "attrs"]
    for name, value in kw.items():
        row[2 + names.index(name)] = value
    return row


rows_strategy = st.lists(
    st.tuples(
        HEX32,
        HEX16,
        st.one_of(st.just(""), HEX16),
        ROW_TEXT,
        st.sampled_from(["Unspecified", "Internal", "Server", "Client", "Producer", "7", "x"]),
        st.sampled_from(["svc-a", "svc-b", ""]),
        st.dictionaries(ROW_TEXT, ROW_TEXT, max_size=2),
        st.dictionaries(ROW_TEXT, ROW_TEXT, max_size=2),
        st.integers(0, MAX_TIME_NS // 2),
        st.integers(0, MAX_TIME_NS // 2),
        st.sampled_from(["Unset", "Ok", "Error"]),
    ),
    max_size=8,
)


@given(rows_strategy)
def test_otlp_json_parses_into_the_otlp_messages(rows: list[Any]) -> None:
    table = []
    rows = list({(r[0], r[1]): r for r in rows}.values())  # (trace, span) ids are unique
    for trace, span, parent, name, kind, service, res, attrs, start, dur, status in rows:
        r = _row(trace, span, parent=parent, name=name, kind=kind, service=service, res=res)
        r[10], r[11], r[12], r[13] = attrs, start, dur, status
        r[15], r[16], r[17] = [start], ["ev"], [{"k": "v"}]
        r[18], r[19], r[20], r[21] = [trace], [span], ["s=1"], [{}]
        table.append(r)
    table.sort(key=lambda r: r[0])
    doc = traces_data(table)
    # The streamed text (what HTTP sends) is the same document, whatever the chunk size.
    for per_chunk in (1, 3, 1000):
        builder = TracesDataBuilder({r[0]: 5 for r in table[:2]})  # some traces "cut"
        for r in table:
            builder.add(r)
        streamed = json.loads("".join(builder.json_chunks(spans_per_chunk=per_chunk)))
        again = TracesDataBuilder({r[0]: 5 for r in table[:2]})
        for r in table:
            again.add(r)
        assert streamed == {"resourceSpans": again.resource_spans()}
    message = parse(otlp_ids_to_base64(doc), "opentelemetry.proto.trace.v1.TracesData")
    spans = [s for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == len(table)
    by_id = {(s.trace_id.hex(), s.span_id.hex()): s for s in spans}
    kinds = {"Unspecified": 0, "Internal": 1, "Server": 2, "Client": 3, "Producer": 4, "7": 7}
    for r in table:
        s = by_id[(r[0], r[1])]
        assert s.kind == kinds.get(r[5], 0)
        assert s.start_time_unix_nano == r[11] and s.end_time_unix_nano == r[11] + r[12]
        assert s.status.code == {"Unset": 0, "Ok": 1, "Error": 2}[r[13]]
        assert s.parent_span_id.hex() == r[2]
    # The gRPC binding sends the same spans, at most SPANS_PER_MESSAGE per message.
    grpc_spans = [
        s
        for m in traces_messages(doc["resourceSpans"])
        for rs in m.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    assert len(grpc_spans) == len(table)


def test_truncated_trace_carries_jaegers_warning_attribute() -> None:
    rows = [_row("a" * 32, f"{i:016x}") for i in range(3)]
    doc = traces_data(rows, stored={"a" * 32: 10})
    first = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    [warning] = [a for a in first["attributes"] if a["key"] == WARNINGS_ATTRIBUTE]
    assert warning["value"]["arrayValue"]["values"] == [
        {"stringValue": "trace has 10 spans; showing the first 3 by start time"}
    ]
    assert "attributes" not in traces_data(rows)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]


@given(st.lists(st.integers(0, 2500), max_size=6), st.integers(1, 1000))
def test_chunks_keep_every_span_and_respect_the_limit(sizes: list[int], limit: int) -> None:
    doc = [
        {"resource": {"n": i}, "scopeSpans": [{"scope": {}, "spans": list(range(n))}]}
        for i, n in enumerate(sizes)
    ]
    chunks = list(chunk_resource_spans(doc, limit))
    flat = [
        (rs["resource"]["n"], s)
        for c in chunks
        for rs in c
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]
    assert flat == [(i, s) for i, n in enumerate(sizes) for s in range(n)]
    assert all(
        sum(len(ss["spans"]) for rs in c for ss in rs["scopeSpans"]) <= limit for c in chunks
    )


def _shape(pool: Any, package: str, names: list[str]) -> dict[str, Any]:
    """Every message's fields as (name, number, type, repeated, message type, JSON name)."""
    out: dict[str, Any] = {}

    def walk(desc: Any) -> None:
        out[desc.full_name] = sorted(
            (
                f.name,
                f.number,
                f.type,
                f.is_repeated,
                f.message_type.full_name if f.message_type else "",
                f.json_name,
            )
            for f in desc.fields
        )
        for nested in desc.nested_types:
            walk(nested)

    for name in names:
        walk(pool.FindMessageTypeByName(f"{package}.{name}"))
    return out


def test_runtime_descriptors_equal_the_published_idl() -> None:
    [idl_file] = [f for f in idl_files() if f.package == "jaeger.api_v3"]
    names = [m.name for m in idl_file.message_type]
    assert sorted(names) == sorted(api_v3_proto.MESSAGES)
    assert _shape(api_v3_proto.POOL, "jaeger.api_v3", names) == _shape(
        idl_pool(), "jaeger.api_v3", names
    )
    ours = api_v3_proto.POOL.FindServiceByName(api_v3_proto.SERVICE)
    theirs = idl_pool().FindServiceByName(api_v3_proto.SERVICE)

    def methods(service: Any) -> list[Any]:
        return sorted(
            (m.name, m.input_type.full_name, m.output_type.full_name, m.server_streaming)
            for m in service.methods
        )

    assert methods(ours) == methods(theirs)


def test_post_body_and_grpc_requests_share_the_parser() -> None:
    from query.v3_from_proto import query_from_proto

    msg = json_format.Parse(
        json.dumps(
            {
                "query": {
                    "service_name": "a",
                    "startTimeMin": "2026-01-01T00:00:00Z",
                    "startTimeMax": "2026-01-01T00:00:01.5Z",
                    "durationMax": "0.25s",
                    "searchDepth": -3,
                }
            }
        ),
        api_v3_proto.FindTracesRequest(),
    )
    q = query_from_proto(msg.query)
    assert q.service == "a" and q.duration_max_ns == 250_000_000 and q.search_depth == 100
    assert q.start_max_ns - q.start_min_ns == 1_500_000_000
    with pytest.raises(BadRequestError):
        query_from_proto(api_v3_proto.FindTracesRequest().query)
    with_filter = api_v3_proto.v3("TraceQueryParameters").FromString(
        msg.query.SerializeToString() + bytes([0x52, 0x00])
    )
    with pytest.raises(BadRequestError, match="not supported"):
        query_from_proto(with_filter)

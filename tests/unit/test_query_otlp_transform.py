"""OTLP/JSON uploads -> span rows (query/otlp_transform.py)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st

from query.jaeger_model import traces_json
from query.otlp_transform import TransformError, rows_from_otlp
from tracehouse.span_specs import traces_from_rows


def otlp_json(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """protobuf's own JSON mapping of the OTLP message, ids turned to hex as OTLP/JSON says."""
    doc = json_format.MessageToDict(traces_from_rows(rows))

    def hexify(obj: Any) -> None:
        if isinstance(obj, dict):
            for key in ("traceId", "spanId", "parentSpanId"):
                if key in obj:
                    obj[key] = base64.b64decode(obj[key]).hex()
            for v in obj.values():
                hexify(v)
        elif isinstance(obj, list):
            for v in obj:
                hexify(v)

    hexify(doc)
    return doc


ROW = {
    "trace_id": "00000000000000000000000000000abc",
    "span_id": "00000000000000aa",
    "name": "GET /",
    "kind": 2,
    "service_name": "web",
    "resource_attributes": {"host.name": "h1"},
    "start_time_unix_nano": 1_700_000_000_000_001_000,
    "end_time_unix_nano": 1_700_000_000_002_001_000,
    "status_code": 2,
    "status_message": "boom",
    "attributes": {"n": 7, "big": 2**60, "ok": True, "r": 0.25, "s": "x"},
    "events": [{"time_unix_nano": 1_700_000_000_000_002_000, "name": "retry", "attributes": {}}],
    "links": [{"trace_id": "1" * 32, "span_id": "2" * 16}],
}


def test_protobuf_json_of_a_span_becomes_jaeger_json() -> None:
    child = {
        **ROW,
        **{"span_id": "00000000000000bb", "parent_span_id": "00000000000000aa", "kind": 3},
        **{"status_code": 0, "status_message": "", "events": [], "links": []},
    }
    [trace] = traces_json(rows_from_otlp(otlp_json([ROW, child]), 100), adjusted=False)
    assert trace["traceID"] == "0000000000000abc"
    root = next(s for s in trace["spans"] if s["spanID"] == "00000000000000aa")
    tags = {t["key"]: (t["type"], t["value"]) for t in root["tags"]}
    assert tags["n"] == ("int64", 7)
    assert tags["big"] == ("int64", str(2**60))  # beyond JavaScript's safe integers
    assert tags["ok"] == ("bool", True) and tags["r"] == ("float64", 0.25)
    assert tags["s"] == ("string", "x") and tags["span.kind"] == ("string", "server")
    assert tags["error"] == ("bool", True)
    assert root["startTime"] == 1_700_000_000_000_001 and root["duration"] == 2000
    assert root["logs"][0]["fields"][0] == {"key": "event", "type": "string", "value": "retry"}
    assert root["references"] == [{"refType": "FOLLOWS_FROM", "traceID": "1" * 32,
                                   "spanID": "2" * 16}]  # fmt: skip
    [proc] = trace["processes"].values()
    assert proc == {"serviceName": "web", "tags": [{"key": "host.name", "type": "string",
                                                     "value": "h1"}]}  # fmt: skip


def test_numbers_as_json_numbers_and_enum_numbers_are_accepted() -> None:
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "a" * 32, "spanId": "b" * 16, "kind": 3, "startTimeUnixNano": 5,
        "endTimeUnixNano": "9", "status": {"code": 2},
        "attributes": [{"key": "l", "value": {"arrayValue": {"values": [{"intValue": 1}]}}},
                       {"key": "m", "value": {"kvlistValue": {"values": [
                           {"key": "k", "value": {"doubleValue": 1.5}}]}}}],
    }]}]}]}  # fmt: skip
    [row] = rows_from_otlp(doc, 10)
    assert row[4] == "Client" and row[10] == 5 and row[11] == 4 and row[12] == "Error"
    assert row[9] == {"l": "[1]", "m": '{"k":1.5}'}


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ([], "body"),
        ({"resourceSpans": {}}, "resourceSpans"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "b" * 16}]}]}]}, "traceId"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "b" * 16}]}]}]},
         "traceId"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "a" * 32, "spanId": "b" * 16, "kind": 9}]}]}]}, "kind"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "a" * 32, "spanId": "b" * 16, "startTimeUnixNano": "-1"}]}]}]},
         "startTimeUnixNano"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "a" * 32, "spanId": "b" * 16, "startTimeUnixNano": str(2**63)}]}]}]},
         "startTimeUnixNano"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "a" * 32, "spanId": "b" * 16,
            "attributes": [{"key": "k", "value": {"intValue": str(2**63)}}]}]}]}]}, "intValue"),
    ],
)  # fmt: skip
def test_malformed_uploads_name_the_field(doc: Any, where: str) -> None:
    with pytest.raises(TransformError) as err:
        rows_from_otlp(doc, 10)
    assert where in str(err.value)


def test_deep_values_and_too_many_spans_are_refused() -> None:
    value: dict[str, Any] = {"intValue": 1}
    for _ in range(200):
        value = {"arrayValue": {"values": [value]}}
    span = {"traceId": "a" * 32, "spanId": "b" * 16, "attributes": [{"key": "d", "value": value}]}
    with pytest.raises(TransformError, match="nested"):
        rows_from_otlp({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}, 10)
    many = [{"traceId": "a" * 32, "spanId": f"{i + 1:016x}"} for i in range(11)]
    with pytest.raises(TransformError, match="more than 10 spans"):
        rows_from_otlp({"resourceSpans": [{"scopeSpans": [{"spans": many}]}]}, 10)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=3),
    max_leaves=20,
)  # fmt: skip
KEYS = ["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "attributes", "key",
        "value", "intValue", "kind", "events", "links", "status", "code", "arrayValue",
        "values", "startTimeUnixNano"]  # fmt: skip


@st.composite
def otlp_like(draw: st.DrawFn) -> Any:
    """JSON shaped roughly like OTLP (its field names), with anything in the values."""
    base = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "a" * 32, "spanId": "b" * 16}]}]}]}  # fmt: skip
    node: Any = base
    path = draw(st.lists(st.sampled_from(KEYS), max_size=4))
    for key in path:
        if isinstance(node, list) and node:
            node = node[0]
        if isinstance(node, dict):
            node[key] = draw(json_values)
            node = node[key]
    return base


@given(otlp_like())
def test_any_json_is_rows_or_a_transform_error(doc: Any) -> None:
    try:
        rows = rows_from_otlp(doc, 50)
    except TransformError:
        return
    traces_json(rows, adjusted=True)  # and whatever passed renders

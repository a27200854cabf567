"""Jaeger v1 API fidelity on the real stack: compare, ids, tag types, adjusters, envelopes,
prettyPrint/raw, transform and archive; every answer checked against query/openapi.yaml."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from google.protobuf import json_format

from deploy.local.stack import LocalStack
from tests import openapi_contract
from tests.integration.query_stack import QueryStack, query_stack
from tracehouse.span_specs import traces_from_rows

# An hour ago, on a whole second: the catalogue endpoints look back 7 days from now.
T0 = (time.time_ns() // 10**9 - 3600) * 10**9
SKEWED = "0af7651916cd43dd8448eb211c80319c"  # 128-bit id
ZIPKIN = "00000000000000000000000000000b3b"  # 64-bit id (high half zero)
ARCHIVED = "a" * 32
MISSING = "f" * 32


def span(trace: str, span_id: str, service: str, start_ms: float, dur_ms: float,
         **extra: Any) -> dict[str, Any]:  # fmt: skip
    row = {
        "trace_id": trace,
        "span_id": span_id,
        "parent_span_id": "",
        "name": f"{service} op",
        "kind": 2,
        "service_name": service,
        "start_time_unix_nano": T0 + int(start_ms * 1e6),
        "end_time_unix_nano": T0 + int((start_ms + dur_ms) * 1e6),
        "status_code": 0,
        "attributes": {},
    }
    return row | extra


ROWS = [
    # A frontend call into cart on another host whose clock runs 50 ms behind.
    span(SKEWED, "0000000000000001", "frontend", 0, 100,
         resource_attributes={"host.name": "web-1"},
         attributes={"http.status_code": 200, "cache.hit": True, "ratio": 0.25,
                     "user": "alice", "big": 2**60, "neg": -3}),
    span(SKEWED, "0000000000000002", "frontend", 10, 80, parent_span_id="0000000000000001",
         kind=3, resource_attributes={"host.name": "web-1"}),
    span(SKEWED, "0000000000000003", "cart", -40, 20, parent_span_id="0000000000000002",
         resource_attributes={"host.name": "cart-7"},
         events=[{"time_unix_nano": T0 - 35_000_000, "name": "db", "attributes": {"n": 1}}]),
    span(SKEWED, "0000000000000004", "cart", -38, 5, parent_span_id="0000000000000003",
         kind=1, resource_attributes={"host.name": "cart-7"}),
    # Zipkin B3: the client and the server side share span id ...0c.
    span(ZIPKIN, "000000000000000a", "gateway", 0, 50, resource_attributes={"host.name": "g"}),
    span(ZIPKIN, "000000000000000c", "gateway", 5, 40, parent_span_id="000000000000000a",
         kind=3, resource_attributes={"host.name": "g"}),
    span(ZIPKIN, "000000000000000c", "auth", 6, 38, parent_span_id="000000000000000a",
         resource_attributes={"host.name": "g"}, attributes={"zipkin.shared": True}),
    span(ZIPKIN, "000000000000000d", "auth", 7, 30, parent_span_id="000000000000000c",
         kind=3, resource_attributes={"host.name": "g"}),
    span(ARCHIVED, "0000000000000001", "billing", 0, 10, status_code=2, status_message="x"),
    span(ARCHIVED, "0000000000000002", "billing", 1, 5, parent_span_id="0000000000000001"),
]  # fmt: skip


@pytest.fixture(scope="module")
def stack(services: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryStack]:
    with query_stack(services, Path(tmp_path_factory.mktemp("v1")), ROWS) as s:
        yield s


def call(stack: QueryStack, path: str, body: bytes | None = None) -> tuple[int, Any]:
    """One request; its answer must match the contract (status, content type, schema)."""
    method = "GET" if body is None else "POST"
    status, ctype, raw = stack.get(path) if body is None else stack.post(path, body)
    return status, openapi_contract.check(method, path, status, ctype, raw)


def window() -> str:
    return f"start={(T0 - 10**9) // 1000}&end={(T0 + 10**9) // 1000}"


def trace_of(body: dict[str, Any]) -> dict[str, Any]:
    [trace] = body["data"]
    return trace


def spans_by_id(trace: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for s in trace["spans"]:
        out.setdefault(s["spanID"], []).append(s)
    return out


def test_compare_fetches_traces_by_id_without_a_service(stack: QueryStack) -> None:
    status, body = call(stack, f"/api/traces?traceID={SKEWED}&traceID={ZIPKIN[16:]}")
    assert status == 200 and body["errors"] is None
    assert [t["traceID"] for t in body["data"]] == [SKEWED, ZIPKIN[16:]]
    # Other parameters are ignored when ids are given, as in Jaeger.
    status, body = call(
        stack, f"/api/traces?traceID={ZIPKIN}&traceID={MISSING}&service=nope&limit=1"
    )
    assert status == 200 and [t["traceID"] for t in body["data"]] == [ZIPKIN[16:]]
    assert body["errors"] == [{"code": 404, "msg": "trace not found", "traceID": MISSING}]
    status, body = call(stack, "/api/traces?traceID=xyz")
    assert status == 400 and "trace id" in body["errors"][0]["msg"]


def test_64_bit_trace_ids_are_16_hex_digits(stack: QueryStack) -> None:
    for path_id in (ZIPKIN[16:], ZIPKIN, "b3b"):
        status, body = call(stack, f"/api/traces/{path_id}")
        assert status == 200
        trace = trace_of(body)
        assert trace["traceID"] == ZIPKIN[16:]
        assert {s["traceID"] for s in trace["spans"]} == {ZIPKIN[16:]}
        assert {r["traceID"] for s in trace["spans"] for r in s["references"]} == {ZIPKIN[16:]}
    status, body = call(stack, f"/api/traces?service=gateway&{window()}")
    assert [t["traceID"] for t in body["data"]] == [ZIPKIN[16:]]
    status, body = call(stack, f"/api/traces/{SKEWED}")
    assert trace_of(body)["traceID"] == SKEWED


def test_tags_carry_their_types(stack: QueryStack) -> None:
    _status, body = call(stack, f"/api/traces/{SKEWED}")
    root = spans_by_id(trace_of(body))["0000000000000001"][0]
    tags = {t["key"]: (t["type"], t["value"]) for t in root["tags"]}
    assert tags["http.status_code"] == ("int64", 200)
    assert tags["cache.hit"] == ("bool", True)
    assert tags["ratio"] == ("float64", 0.25)
    assert tags["user"] == ("string", "alice")
    assert tags["big"] == ("int64", str(2**60))  # beyond JavaScript's safe integers
    assert tags["neg"] == ("int64", -3)
    assert tags["span.kind"] == ("string", "server")
    assert [t["key"] for t in root["tags"]] == sorted(t["key"] for t in root["tags"])
    _status, raw = call(stack, f"/api/traces/{SKEWED}?raw=true")  # stored order, no sorting
    raw_root = spans_by_id(trace_of(raw))["0000000000000001"][0]
    assert [t["key"] for t in raw_root["tags"]] == [*ROWS[0]["attributes"], "span.kind"]
    cart = spans_by_id(trace_of(body))["0000000000000003"][0]
    assert cart["logs"][0]["fields"] == [
        {"key": "event", "type": "string", "value": "db"},
        {"key": "n", "type": "int64", "value": 1},
    ]
    # A typed value searches as its text, from the tags JSON or a tag pair.
    for q in ('tags={"http.status_code":200,"cache.hit":true,"ratio":0.25}', "tag=neg:-3"):
        status, found = call(stack, f"/api/traces?service=frontend&{q}&{window()}")
        assert status == 200 and [t["traceID"] for t in found["data"]] == [SKEWED], q


def test_clock_skew_is_corrected_per_host_unless_raw(stack: QueryStack) -> None:
    _status, body = call(stack, f"/api/traces/{SKEWED}")
    by_id = {k: v[0] for k, v in spans_by_id(trace_of(body)).items()}
    client, cart, db = (
        by_id["0000000000000002"],
        by_id["0000000000000003"],
        by_id["0000000000000004"],
    )
    # cart (20 ms) is centred in its 80 ms client parent: 30 ms latency each way.
    assert cart["startTime"] == client["startTime"] + 30_000
    assert cart["warnings"] == ["This span's timestamps were adjusted by 80ms"]
    # Its same-host child and its log move with it (one host, one clock).
    assert db["startTime"] == T0 // 1000 + 42_000
    assert cart["logs"][0]["timestamp"] == T0 // 1000 + 45_000
    assert by_id["0000000000000001"]["warnings"] is None
    _status, raw = call(stack, f"/api/traces/{SKEWED}?raw=true")
    raw_cart = spans_by_id(trace_of(raw))["0000000000000003"][0]
    assert raw_cart["startTime"] == T0 // 1000 - 40_000 and raw_cart["warnings"] is None


def test_zipkin_shared_span_ids_are_made_unique_unless_raw(stack: QueryStack) -> None:
    _status, body = call(stack, f"/api/traces/{ZIPKIN}")
    trace = trace_of(body)
    ids = [s["spanID"] for s in trace["spans"]]
    assert len(ids) == len(set(ids)) == 4
    server = next(
        s
        for s in trace["spans"]
        if s["operationName"] == "auth op"
        and ("span.kind", "server") in {(t["key"], t["value"]) for t in s["tags"]}
    )
    assert server["spanID"] not in {"000000000000000a", "000000000000000c", "000000000000000d"}
    assert server["references"][0] == {
        "refType": "CHILD_OF", "traceID": ZIPKIN[16:], "spanID": "000000000000000c"
    }  # fmt: skip
    assert "shared with a client span" in server["warnings"][0]
    below = spans_by_id(trace)["000000000000000d"][0]
    assert below["references"][0]["spanID"] == server["spanID"]
    _status, raw = call(stack, f"/api/traces/{ZIPKIN}?raw=1")
    assert len(spans_by_id(trace_of(raw))["000000000000000c"]) == 2


def test_pretty_print_is_the_same_document_indented(stack: QueryStack) -> None:
    for path in (f"/api/traces/{SKEWED}", "/api/services", f"/api/traces/{MISSING}"):
        sep = "&" if "?" in path else "?"
        _s, _c, compact = stack.get(path)
        for flag in ("true", "1", "yes"):  # Jaeger: anything but "" and "false"
            _status, ctype, pretty = stack.get(f"{path}{sep}prettyPrint={flag}")
            assert ctype.startswith("application/json")
            assert b'\n    "' in pretty and b"\n" not in compact  # four spaces, as Jaeger
            assert json.loads(pretty) == json.loads(compact)
        _status, _ctype, plain = stack.get(f"{path}{sep}prettyPrint=false")
        assert plain == compact


def test_every_error_is_the_json_envelope(stack: QueryStack) -> None:
    envelope = openapi_contract.component_schema("ErrorEnvelope")
    cases = [
        ("GET", "/api/nope", 404),
        ("GET", f"/api/traces/{MISSING}", 404),
        ("GET", "/api/traces/xyz", 400),
        ("GET", "/api/traces", 400),  # neither traceID nor service
        ("POST", "/api/services", 405),
        ("GET", "/api/transform", 405),
        ("POST", "/api/transform", 400),
        ("POST", f"/api/archive/{MISSING}", 404),
    ]
    for method, path, code in cases:
        if method == "GET":
            status, ctype, raw = stack.get(path)
        else:
            status, ctype, raw = stack.post(path, b"{not json")
        assert status == code and ctype.startswith("application/json"), (path, status, ctype)
        body = json.loads(raw)
        jsonschema.validate(body, envelope)
        assert body["errors"][0]["code"] == code
    # Under /api/v3 an unknown path answers in api_v3's own error shape.
    status, ctype, raw = stack.get("/api/v3/nope")
    assert status == 404 and ctype.startswith("application/json")
    assert json.loads(raw)["error"]["httpCode"] == 404
    # An upload above the body limit (16 MiB) is refused before it is parsed.
    status, ctype, raw = stack.post("/api/transform", b" " * (16 * 1024 * 1024 + 1))
    assert status == 413 and ctype.startswith("application/json")
    openapi_contract.check("POST", "/api/transform", status, ctype, raw)


def otlp_json_of(trace_id: str) -> bytes:
    """The trace as an OTLP/JSON file: protobuf's JSON mapping with hex ids (OTLP/JSON)."""
    doc = json_format.MessageToDict(
        traces_from_rows([r for r in ROWS if r["trace_id"] == trace_id])
    )
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in s:
                        s[key] = base64.b64decode(s[key]).hex()
    return json.dumps(doc).encode()


def test_transform_renders_an_upload_like_the_stored_trace(stack: QueryStack) -> None:
    for trace_id in (SKEWED, ZIPKIN):
        status, uploaded = call(stack, "/api/transform", otlp_json_of(trace_id))
        assert status == 200
        _status, stored = call(stack, f"/api/traces/{trace_id}?raw=true")
        assert uploaded["data"] == stored["data"]
    status, body = call(
        stack, "/api/transform", b'{"resourceSpans":[{"scopeSpans":[{"spans":[{}]}]}]}'
    )
    assert status == 400 and "traceId" in body["errors"][0]["msg"]


def test_catalogue_and_dependencies_match_the_contract(stack: QueryStack) -> None:
    status, body = call(stack, "/api/services")
    assert status == 200 and "frontend" in body["data"]
    status, body = call(stack, "/api/services/frontend/operations")
    assert status == 200 and body["data"] == ["frontend op"]
    status, body = call(stack, "/api/operations?service=frontend")
    assert status == 200 and {o["spanKind"] for o in body["data"]} == {"server", "client"}
    status, body = call(stack, f"/api/dependencies?endTs={(T0 + 10**9) // 10**6}&lookback=60000")
    assert status == 200
    assert {(d["parent"], d["child"]) for d in body["data"]} >= {("frontend", "cart")}


def _v3_spans(stack: QueryStack, path: str) -> list[dict[str, Any]]:
    status, body = call(stack, path)
    assert status == 200, body
    rs = body["result"]["resourceSpans"]
    return [s for r in rs for ss in r["scopeSpans"] for s in ss["spans"]]


def _v3_warnings(span: dict[str, Any]) -> list[str]:
    return [
        v["stringValue"]
        for a in span.get("attributes", [])
        if a["key"] == "@jaeger@warnings"
        for v in a["value"]["arrayValue"]["values"]
    ]


def test_api_v3_applies_the_same_adjusters_unless_raw(stack: QueryStack) -> None:
    """GetTrace and FindTraces (api_v3, OTLP JSON) adjust as /api/traces does."""
    _status, body = call(stack, f"/api/traces/{SKEWED}")
    v1 = {k: v[0] for k, v in spans_by_id(trace_of(body)).items()}
    v3 = {s["spanId"]: s for s in _v3_spans(stack, f"/api/v3/traces/{SKEWED}")}
    assert set(v3) == set(v1)
    for span_id, span in v3.items():
        assert int(span["startTimeUnixNano"]) // 1000 == v1[span_id]["startTime"]
        assert _v3_warnings(span) == (v1[span_id]["warnings"] or [])
    cart = v3["0000000000000003"]
    assert int(cart["events"][0]["timeUnixNano"]) // 1000 == T0 // 1000 + 45_000
    raw = {s["spanId"]: s for s in _v3_spans(stack, f"/api/v3/traces/{SKEWED}?raw_traces=true")}
    assert int(raw["0000000000000003"]["startTimeUnixNano"]) // 1000 == T0 // 1000 - 40_000
    assert not any(_v3_warnings(s) for s in raw.values())
    zipkin = _v3_spans(stack, f"/api/v3/traces/{ZIPKIN}")
    assert len({s["spanId"] for s in zipkin}) == len(zipkin) == 4
    assert any("shared with a client span" in w for s in zipkin for w in _v3_warnings(s))
    assert len(_v3_spans(stack, f"/api/v3/traces/{ZIPKIN}?rawTraces=1")) == 4


# Last: it empties the id lookup table the other tests read.
def test_archived_trace_outlives_its_spans(stack: QueryStack) -> None:
    _status, before = call(stack, f"/api/traces/{ARCHIVED}")
    for _ in range(2):  # archiving twice keeps one copy of each span
        status, body = call(stack, f"/api/archive/{ARCHIVED}", b"")
        assert status == 200 and body["data"] == [] and body["errors"] == []  # as Jaeger
    client = stack.client()
    # Retention drops the spans and the id lookup; only the archive still has the trace.
    client.command("TRUNCATE TABLE otel_traces_trace_id_ts")
    client.command(f"ALTER TABLE otel_traces DELETE WHERE TraceId = '{ARCHIVED}'",
                   settings={"mutations_sync": 2})  # fmt: skip
    status, after = call(stack, f"/api/traces/{ARCHIVED}")
    assert status == 200 and after == before
    status, ids = call(stack, f"/api/traces?traceID={ARCHIVED}&traceID={SKEWED}")
    assert [t["traceID"] for t in ids["data"]] == [ARCHIVED]  # SKEWED's lookup row is gone too
    status, _body = call(stack, f"/api/archive/{MISSING}", b"")
    assert status == 404

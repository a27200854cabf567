"""Property-based fuzzing of the whole chain: generated OTLP protobuf, OTLP/JSON and Zipkin
requests with extreme and malformed values go through the real ingest, broker, streams, sink
and ClickHouse.

Every request also carries one good span with a fresh trace id. Whatever the rest of the
request holds, the test asserts: no process exits; every request is answered (2xx, or 4xx
naming the problem; never 5xx); every good span of an accepted request is stored; what
streams received equals what ingest accepted; and the accounting identity holds exactly.

``TRACEHOUSE_FUZZ_EXAMPLES`` sets the number of requests (default 120 for CI); a long run:
``TRACEHOUSE_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/integration/test_fuzz_pipeline.py -s``.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any, cast

from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from core.clickhouse import connect
from deploy.local.stack import LocalStack
from tests.integration.helpers import wait_until
from tests.integration.ingest_helpers import scrape
from tests.integration.test_docs_queries import doc_queries

EXAMPLES = int(os.environ.get("TRACEHOUSE_FUZZ_EXAMPLES", "120"))
NOW_NS = time.time_ns()
# Every numeric limit a uint64/int64/double field can meet.
ALL_TIMES = st.sampled_from(
    [0, 1, NOW_NS, 2**53, 2**62, 2**63 - 1, 2**63, 2**64 - 1, NOW_NS - 10**9, NOW_NS + 10**18]
)
# Mostly storable (so spans reach ClickHouse with extreme but legal times), sometimes not.
STORABLE_TIMES = st.one_of(st.integers(0, 2**63 - 1), st.sampled_from([0, 1, 2**63 - 1, NOW_NS]))


def mostly(usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` 4 times in 5, by a real coin: hypothesis steers its own choices towards the
    simplest branch, which here would be the malformed one almost every time. Both are drawn
    every time (hypothesis needs the same draws in every run of an example); only the value
    kept is chosen by the coin."""
    return st.tuples(usual, rare).map(lambda pair: pair[1] if os.urandom(1)[0] < 52 else pair[0])


TIMES = mostly(STORABLE_TIMES, ALL_TIMES)
TEXT = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=5).map(lambda t: t * 2000),
    st.just(""),
    st.just("é" * 70_000),
)
# Fresh random well-formed ids on every draw: hypothesis favours (and repeats) simple values,
# and spans that all share ids would only exercise the duplicate path.
TRACE_IDS = st.just(16).map(lambda n: b"\x01" + os.urandom(n - 1))
SPAN_IDS = st.just(8).map(lambda n: b"\x01" + os.urandom(n - 1))
IDS = st.one_of(st.binary(min_size=0, max_size=20), st.just(b"\x00" * 16), st.just(b"\x00" * 8))


def any_values(depth: int = 3) -> st.SearchStrategy[common_pb2.AnyValue]:
    leaves = st.one_of(
        TEXT.map(lambda v: common_pb2.AnyValue(string_value=v)),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: common_pb2.AnyValue(int_value=v)),
        st.floats(allow_nan=True, allow_infinity=True).map(
            lambda v: common_pb2.AnyValue(double_value=v)
        ),
        st.booleans().map(lambda v: common_pb2.AnyValue(bool_value=v)),
        st.binary(max_size=50).map(lambda v: common_pb2.AnyValue(bytes_value=v)),
        st.just(common_pb2.AnyValue()),
    )
    if depth == 0:
        return leaves

    def array(items: list[common_pb2.AnyValue]) -> common_pb2.AnyValue:
        v = common_pb2.AnyValue()
        v.array_value.values.extend(items)
        return v

    def kvlist(items: list[tuple[str, common_pb2.AnyValue]]) -> common_pb2.AnyValue:
        v = common_pb2.AnyValue()
        for k, item in items:
            v.kvlist_value.values.add(key=k, value=item)
        return v

    inner = any_values(depth - 1)
    return st.one_of(
        leaves,
        st.lists(inner, max_size=4).map(array),
        st.lists(st.tuples(TEXT, inner), max_size=4).map(kvlist),
    )


@st.composite
def fuzzed_span(draw: st.DrawFn) -> trace_pb2.Span:
    span = trace_pb2.Span(
        # Mostly well-formed ids, so most fuzzed spans get past ingest and test the stages
        # behind it with their extreme names, attributes and times.
        trace_id=draw(mostly(TRACE_IDS, IDS)),
        span_id=draw(mostly(SPAN_IDS, IDS)),
        parent_span_id=draw(mostly(st.one_of(st.just(b""), SPAN_IDS), IDS)),
        name=draw(TEXT),
        # Span kinds outside the enum too: proto3 enums are open, any int32 is on the wire.
        kind=cast(Any, draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 99, 2**31 - 1, -1]))),
        start_time_unix_nano=draw(TIMES),
        end_time_unix_nano=draw(TIMES),
        trace_state=draw(TEXT),
    )
    span.status.code = cast(Any, draw(st.sampled_from([0, 1, 2, 7])))
    span.status.message = draw(TEXT)
    for key, value in draw(st.lists(st.tuples(TEXT, any_values()), max_size=5)):
        span.attributes.add(key=key, value=value)
    for t in draw(st.lists(TIMES, max_size=3)):
        span.events.add(time_unix_nano=t, name=draw(TEXT))
    for _ in range(draw(st.integers(0, 2))):
        span.links.add(
            trace_id=draw(mostly(TRACE_IDS, IDS)),
            span_id=draw(mostly(SPAN_IDS, IDS)),
            trace_state=draw(TEXT),
        )
    return span


def otlp_json(data: trace_pb2.TracesData) -> dict[str, Any]:
    """OTLP/JSON as the spec writes it: protobuf's JSON mapping, but ids as hex, not base64."""
    doc = json_format.MessageToDict(data)
    spans = [s for rs in data.resource_spans for ss in rs.scope_spans for s in ss.spans]
    docs = [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    for span, d in zip(spans, docs, strict=True):
        for field, value in (
            ("traceId", span.trace_id),
            ("spanId", span.span_id),
            ("parentSpanId", span.parent_span_id),
        ):
            if value:
                d[field] = value.hex()
        for link, ld in zip(span.links, d.get("links", []), strict=True):
            ld["traceId"], ld["spanId"] = link.trace_id.hex(), link.span_id.hex()
    return doc


_GOOD_SPANS = itertools.count(int.from_bytes(os.urandom(4), "big") << 20)


def good_span(n: int) -> trace_pb2.Span:
    """A valid span with a trace id no fuzzed span can have (first byte 0xEE, then ``n``)."""
    return trace_pb2.Span(
        trace_id=b"\xee" + n.to_bytes(15, "big"),
        span_id=(n + 1).to_bytes(8, "big"),
        name="fuzz-good",
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=NOW_NS,
        end_time_unix_nano=NOW_NS + 1000,
    )


def traces(spans: list[trace_pb2.Span], resource: list[tuple[str, Any]]) -> trace_pb2.TracesData:
    data = trace_pb2.TracesData()
    rs = data.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=common_pb2.AnyValue(string_value="fz"))
    for k, v in resource:
        rs.resource.attributes.add(key=k, value=v)
    rs.scope_spans.add().spans.extend(spans)
    return data


def zipkin_span(draw: st.DrawFn, good: trace_pb2.Span | None) -> dict[str, Any]:
    if good is not None:
        return {
            "traceId": good.trace_id.hex(),
            "id": good.span_id.hex(),
            "name": "fuzz-good",
            "kind": "SERVER",
            "timestamp": NOW_NS // 1000,
            "duration": 1,
            "localEndpoint": {"serviceName": "fz"},
        }
    wild = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        TEXT,
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    )
    span: dict[str, Any] = {
        "traceId": draw(st.one_of(st.binary(min_size=8, max_size=16).map(bytes.hex), TEXT)),
        "id": draw(st.one_of(st.binary(min_size=8, max_size=8).map(bytes.hex), TEXT)),
        "name": draw(TEXT),
        "timestamp": draw(st.one_of(TIMES.map(lambda t: t // 1000), wild)),
        "duration": draw(st.one_of(st.integers(0, 2**64), wild)),
        "kind": draw(st.one_of(st.sampled_from(["CLIENT", "SERVER", "PRODUCER", "x"]), wild)),
        "localEndpoint": draw(
            st.one_of(
                st.fixed_dictionaries({"serviceName": TEXT, "port": st.integers(-(2**70), 2**70)}),
                wild,
            )
        ),
        "tags": draw(st.one_of(st.dictionaries(TEXT, TEXT, max_size=4), wild)),
        "annotations": draw(
            st.one_of(
                st.lists(st.fixed_dictionaries({"timestamp": wild, "value": wild}), max_size=3),
                wild,
            )
        ),
    }
    for key in draw(st.lists(st.sampled_from(list(span)), max_size=3)):
        span.pop(key, None)
    return span


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, trace_pb2.Span | None]:
    """(endpoint, content type, body, the good span inside it, if the body carries one)."""
    n = next(_GOOD_SPANS)
    good = good_span(n)
    kind = draw(st.sampled_from(["protobuf", "json", "json-mangled", "zipkin", "bytes"]))
    spans = [*draw(st.lists(fuzzed_span(), max_size=4)), good]
    spans = draw(st.permutations(spans))
    resource = draw(st.lists(st.tuples(TEXT, any_values(2)), max_size=3))
    data = traces(spans, resource)
    if kind == "protobuf":
        return "otlp", "application/x-protobuf", data.SerializeToString(), good
    if kind in ("json", "json-mangled"):
        doc = otlp_json(data)
        if kind == "json-mangled":
            # OTLP/JSON edge cases: base64 ids, numbers for strings, deep nesting, nulls; on a
            # span of their own, so the good span is refused only with its whole request.
            spans_doc = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
            first = json_format.MessageToDict(trace_pb2.Span(name="mangled"))
            first.update(traceId=b"\x01".hex() * 16, spanId=b"\x02".hex() * 8)
            spans_doc.insert(draw(st.integers(0, len(spans_doc))), first)
            choice = draw(st.sampled_from(["b64", "number", "deep", "null"]))
            if choice == "b64":
                first["traceId"] = base64.b64encode(b"x" * 16).decode()
            elif choice == "number":
                first["startTimeUnixNano"] = draw(st.one_of(st.floats(), st.integers()))
            elif choice == "deep":
                depth = draw(st.integers(10, 100_000))
                first["attributes"] = "__DEEP__"
                deep = '[{"key":"d","value":' + '{"arrayValue":{"values":[' * depth
                deep += "]}}" * depth + "}]"
                text = json.dumps(doc).replace('"__DEEP__"', deep, 1)
                return "otlp", "application/json", text.encode(), good
            else:
                first["name"] = None
        return "otlp", "application/json", json.dumps(doc).encode(), good
    if kind == "zipkin":
        body = [zipkin_span(draw, None) for _ in range(draw(st.integers(0, 3)))]
        body.insert(draw(st.integers(0, len(body))), zipkin_span(draw, good))
        text = json.dumps(body, allow_nan=True)
        return "zipkin", "application/json", text.encode("utf-8", "surrogatepass"), good
    # Arbitrary bytes: no good span inside (they may still decode as an empty request).
    content_type = draw(st.sampled_from(["application/x-protobuf", "application/json"]))
    return "otlp", content_type, draw(st.binary(max_size=200)), None


def send(url: str, content_type: str, body: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def test_fuzzed_requests_never_stop_the_pipeline_or_break_the_counts(
    pipeline: LocalStack,
) -> None:
    s = pipeline.settings
    urls = {
        "otlp": f"http://127.0.0.1:{s.ingest_http_port}/v1/traces",
        "zipkin": f"http://127.0.0.1:{s.ingest_zipkin_port}/api/v2/spans",
    }
    answers: Counter[int] = Counter()
    accepted_good: set[tuple[str, str]] = set()
    # What each accepted good span was sent with, to explain a missing one.
    sent_with: dict[tuple[str, str], tuple[str, str, bytes, bytes]] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(request=requests())
    def one(request: tuple[str, str, bytes, trace_pb2.Span | None]) -> None:
        endpoint, content_type, body, good = request
        status, answer = send(urls[endpoint], content_type, body)
        answers[status] += 1
        assert status < 500, (status, endpoint, content_type, body[:300], answer[:300])
        if 200 <= status < 300 and good is not None:
            key = (good.trace_id.hex(), good.span_id.hex())
            accepted_good.add(key)
            sent_with[key] = (endpoint, content_type, answer[:300], body[:600])

    one()
    print(f"answers by status: {dict(answers)}; good spans accepted: {len(accepted_good)}")
    client = connect(s.clickhouse_url, s.clickhouse_database)

    def stored_good() -> set[tuple[str, str]]:
        # By id, not name: a mangled OTLP/JSON request may have nulled the good span's name.
        rows = client.query(
            "SELECT TraceId, SpanId FROM otel_traces WHERE startsWith(TraceId, 'ee0000')"
        )
        return {(r[0], r[1]) for r in rows.result_rows}

    # A good span may be refused only with its whole request (4xx): all accepted ones land.
    try:
        wait_until(stored_good, lambda got: accepted_good <= got, timeout=120)
    except AssertionError:
        missing = accepted_good - stored_good()
        raise AssertionError(f"accepted, never stored: {[sent_with[k] for k in missing]}") from None
    # One ingest process serves every protocol with one registry: scrape it once.
    ingest = scrape(s.ingest_http_port)
    accepted = sum(
        v
        for (name, _labels), v in ingest.items()
        if name == "tracehouse_ingest_spans_accepted_total"
    )
    refused = {
        labels: v for (name, labels), v in ingest.items() if name.endswith("spans_rejected_total")
    }
    print(f"ingest accepted {accepted}; refused by (protocol, reason): {refused}")

    def accounting() -> dict[str, Any]:
        result = client.query(doc_queries()["pipeline_accounting"])
        return dict(zip(result.column_names, result.result_rows[0], strict=True))

    acc = wait_until(
        accounting, lambda a: a["received"] == accepted and bool(a["balanced"]), timeout=120
    )
    print(f"accounting: {acc}")
    assert not pipeline.dead(), [c.name for c in pipeline.dead()]
    assert answers[200] + answers[202] > 0  # the generator must reach the pipeline at all

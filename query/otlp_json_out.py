"""otel_traces rows -> OTLP ``TracesData`` in the protobuf JSON mapping (pure).

What api_v3 returns (jaeger-idl proto/api_v3/query_service.proto: GetTrace and FindTraces
stream ``opentelemetry.proto.trace.v1.TracesData``), written the way Jaeger writes it: ids as
lowercase hex (OTLP/JSON's exception to base64 for bytes; 32 digits for trace ids, 16 for span
ids), 64-bit integers as decimal strings, enums as their numbers, camelCase field names, and
fields holding their default value left out (proto3 JSON). Any proto3 JSON parser reads it;
the contract tests parse it with protobuf's json_format into the OTLP message types.

Spans of one trace are grouped into one ResourceSpans per (service, resource attributes) and
one ScopeSpans per (scope name, version), in order of first appearance. Attribute values are
``stringValue``: otel_traces (the Collector exporter's layout) stores every attribute as a
string, so the original type is not known here.

A trace cut by the span cap carries Jaeger's own warning convention: a ``@jaeger@warnings``
string-array attribute on its first span, which Jaeger UI shows on the trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

# Column order of query/sql/v3_trace_spans.sql.
(
    TRACE_ID,
    SPAN_ID,
    PARENT_ID,
    TRACE_STATE,
    NAME,
    KIND,
    SERVICE,
    RES_ATTRS,
    SCOPE_NAME,
    SCOPE_VERSION,
    ATTRS,
    START_NS,
    DURATION,
    STATUS,
    STATUS_MSG,
    EV_TIMES,
    EV_NAMES,
    EV_ATTRS,
    LINK_TRACES,
    LINK_SPANS,
    LINK_STATES,
    LINK_ATTRS,
) = range(22)

# otel_traces spellings (pdata's String()) -> OTLP enum numbers.
SPAN_KIND_NUMBERS = {
    "Unspecified": 0,
    "Internal": 1,
    "Server": 2,
    "Client": 3,
    "Producer": 4,
    "Consumer": 5,
}
STATUS_CODE_NUMBERS = {"Unset": 0, "Ok": 1, "Error": 2}
WARNINGS_ATTRIBUTE = "@jaeger@warnings"
MAX_UINT64 = 2**64 - 1


def enum_number(names: Mapping[str, int], stored: str) -> int:
    """Stored enum text -> number; the sink keeps unknown numbers as their digits."""
    known = names.get(stored)
    if known is not None:
        return known
    return int(stored) if stored.isascii() and stored.isdigit() and len(stored) < 10 else 0


def key_values(attrs: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]


def truncation_warning(stored: int, shown: int) -> str:
    return f"trace has {stored} spans; showing the first {shown} by start time"


def warnings_attribute(warnings: Sequence[str]) -> dict[str, Any]:
    """Jaeger's convention for trace warnings in OTLP: a string array on a span."""
    return {
        "key": WARNINGS_ATTRIBUTE,
        "value": {"arrayValue": {"values": [{"stringValue": w} for w in warnings]}},
    }


def span_json(row: Sequence[Any], warnings: Sequence[str] = ()) -> dict[str, Any]:
    """One span; fields equal to their proto3 default are omitted."""
    start = int(row[START_NS])
    span: dict[str, Any] = {"traceId": row[TRACE_ID], "spanId": row[SPAN_ID]}
    if row[TRACE_STATE]:
        span["traceState"] = row[TRACE_STATE]
    if row[PARENT_ID]:
        span["parentSpanId"] = row[PARENT_ID]
    if row[NAME]:
        span["name"] = row[NAME]
    kind = enum_number(SPAN_KIND_NUMBERS, row[KIND])
    if kind:
        span["kind"] = kind
    if start:
        span["startTimeUnixNano"] = str(start)
    end = min(start + int(row[DURATION]), MAX_UINT64)
    if end:
        span["endTimeUnixNano"] = str(end)
    attrs = key_values(row[ATTRS])
    if warnings:
        attrs.append(warnings_attribute(warnings))
    if attrs:
        span["attributes"] = attrs
    events = []
    for ts, name, ev_attrs in zip(row[EV_TIMES], row[EV_NAMES], row[EV_ATTRS], strict=False):
        event: dict[str, Any] = {}
        if ts:
            event["timeUnixNano"] = str(int(ts))
        if name:
            event["name"] = name
        if ev_attrs:
            event["attributes"] = key_values(ev_attrs)
        events.append(event)
    if events:
        span["events"] = events
    links = []
    for trace_id, span_id, state, link_attrs in zip(
        row[LINK_TRACES], row[LINK_SPANS], row[LINK_STATES], row[LINK_ATTRS], strict=False
    ):
        link: dict[str, Any] = {"traceId": trace_id, "spanId": span_id}
        if state:
            link["traceState"] = state
        if link_attrs:
            link["attributes"] = key_values(link_attrs)
        links.append(link)
    if links:
        span["links"] = links
    status: dict[str, Any] = {}
    if row[STATUS_MSG]:
        status["message"] = row[STATUS_MSG]
    code = enum_number(STATUS_CODE_NUMBERS, row[STATUS])
    if code:
        status["code"] = code
    span["status"] = status
    return span


def _resource(service: str, attrs: Mapping[str, str]) -> dict[str, Any]:
    merged = dict(attrs)
    if "service.name" not in merged and service:
        merged["service.name"] = service
    return {"attributes": key_values(merged)} if merged else {}


def _scope(name: str, version: str) -> dict[str, Any]:
    scope = {}
    if name:
        scope["name"] = name
    if version:
        scope["version"] = version
    return scope


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class TracesDataBuilder:
    """Rows (ordered by trace) -> resourceSpans, grouped per trace, resource and scope.

    Each span becomes its compact JSON text as it arrives (its dict is dropped at once), as in
    query.jaeger_model.TracesJsonWriter: a capped trace is still 20,000 spans, and keeping them
    as dicts until the end roughly doubled the query process's peak memory per request.
    """

    def __init__(self, stored: Mapping[str, int] | None = None) -> None:
        self._stored = dict(stored or {})
        # trace id -> resource key -> (resource json, scope key -> span JSON texts)
        self._traces: dict[str, dict[Any, tuple[dict[str, Any], dict[Any, list[str]]]]] = {}
        self._counts: dict[str, int] = {}
        self._warned: set[str] = set()

    def add(self, row: Sequence[Any]) -> None:
        trace_id = row[TRACE_ID]
        resources = self._traces.setdefault(trace_id, {})
        self._counts[trace_id] = self._counts.get(trace_id, 0) + 1
        res_attrs = row[RES_ATTRS]
        res_key = (row[SERVICE], tuple(res_attrs.items()))
        entry = resources.get(res_key)
        if entry is None:
            entry = resources[res_key] = (_resource(row[SERVICE], res_attrs), {})
        scope_key = (row[SCOPE_NAME], row[SCOPE_VERSION])
        entry[1].setdefault(scope_key, []).append(_dumps(span_json(row)))

    def __len__(self) -> int:
        return len(self._traces)

    def _ordered(self, order: Sequence[str]) -> list[str]:
        ids = [t for t in order if t in self._traces]
        seen = set(ids)
        return ids + [t for t in self._traces if t not in seen]

    def _scopes(self, trace_id: str) -> Iterator[tuple[dict[str, Any], dict[str, Any], list[str]]]:
        """(resource, scope, span texts) of a trace; the first span carries a cut's warning."""
        stored, shown = self._stored.get(trace_id, 0), self._counts.get(trace_id, 0)
        first = True
        for resource, scopes in self._traces[trace_id].values():
            for (name, version), spans in scopes.items():
                if first and stored > shown and trace_id not in self._warned:
                    self._warned.add(trace_id)
                    # Known only once all rows are in, so the first span is patched here.
                    span = json.loads(spans[0])
                    span.setdefault("attributes", []).append(
                        warnings_attribute([truncation_warning(stored, shown)])
                    )
                    spans[0] = _dumps(span)
                first = False
                yield resource, _scope(name, version), spans

    def resource_spans(self, order: Sequence[str] = ()) -> list[dict[str, Any]]:
        """All traces' ResourceSpans as dicts, traces in ``order`` first, the rest as added."""
        out: list[dict[str, Any]] = []
        for trace_id in self._ordered(order):
            by_resource: dict[int, dict[str, Any]] = {}
            for resource, scope, spans in self._scopes(trace_id):
                rs = by_resource.get(id(resource))
                if rs is None:
                    rs = by_resource[id(resource)] = {"resource": resource, "scopeSpans": []}
                    out.append(rs)
                rs["scopeSpans"].append({"scope": scope, "spans": [json.loads(t) for t in spans]})
        return out

    def json_chunks(self, order: Sequence[str] = (), spans_per_chunk: int = 1000) -> Iterator[str]:
        """``{"resourceSpans":[...]}`` as text pieces (single use: span texts are released)."""
        yield '{"resourceSpans":['
        first_rs = True
        for trace_id in self._ordered(order):
            current: int | None = None
            for resource, scope, spans in self._scopes(trace_id):
                if current != id(resource):
                    if current is not None:
                        yield "]}"
                    yield ("" if first_rs else ",") + '{"resource":' + _dumps(resource)
                    yield ',"scopeSpans":['
                    first_rs, current, first_scope = False, id(resource), True
                yield ("" if first_scope else ",") + '{"scope":' + _dumps(scope) + ',"spans":['
                first_scope = False
                for start in range(0, len(spans), spans_per_chunk):
                    piece = spans[start : start + spans_per_chunk]
                    spans[start : start + spans_per_chunk] = [""] * len(piece)  # release
                    yield ("," if start else "") + ",".join(piece)
                yield "]}"
            if current is not None:
                yield "]}"
        yield "]}"


def traces_data(
    rows: Iterable[Sequence[Any]],
    stored: Mapping[str, int] | None = None,
    order: Sequence[str] = (),
) -> dict[str, Any]:
    """A TracesData JSON object of all rows."""
    builder = TracesDataBuilder(stored)
    for row in rows:
        builder.add(row)
    return {"resourceSpans": builder.resource_spans(order)}

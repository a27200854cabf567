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

from query.adjusters import AdjustingTraceWriter, SpanNode, adjust, host_key

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
# The sort adjuster's warning, worded as the v1 API's (query.adjusters.sort_tags_and_logs).
EVENTS_SORTED_WARNING = "logs were not in time order; sorted by timestamp"
ZERO_SPAN_ID = "0" * 16
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


def _set_time(obj: dict[str, Any], key: str, ns: int) -> None:
    """A uint64 time field in proto3 JSON: decimal text, left out when 0, clamped to uint64."""
    ns = min(max(0, ns), MAX_UINT64)
    if ns:
        obj[key] = str(ns)
    else:
        obj.pop(key, None)


def _node(row: Sequence[Any]) -> SpanNode:
    """What the adjusters need of one row (query/adjusters.py works on these, not on JSON)."""
    kind = row[KIND]
    return SpanNode(
        span_id=row[SPAN_ID],
        parent_id=row[PARENT_ID] if row[PARENT_ID] and row[PARENT_ID] != ZERO_SPAN_ID else "",
        kind=kind.lower() if kind in SPAN_KIND_NUMBERS and kind != "Unspecified" else "",
        host=host_key(row[RES_ATTRS]),
        start_ns=int(row[START_NS]),
        duration_ns=int(row[DURATION]),
    )


def _patched(text: str, node: SpanNode | None, warnings: Sequence[str]) -> str:
    """The span's JSON text with what the adjusters changed (most spans pass unchanged)."""
    if (node is None or not node.changed) and not warnings:
        return text
    span = json.loads(text)
    all_warnings = list(warnings)
    if node is not None:
        all_warnings += node.warnings
        if node.relinked:
            span["spanId"] = node.span_id
            if node.parent_id:
                span["parentSpanId"] = node.parent_id
            else:
                span.pop("parentSpanId", None)
        if node.shift_ns:
            start = node.start_ns + node.shift_ns
            _set_time(span, "startTimeUnixNano", start)
            _set_time(span, "endTimeUnixNano", start + node.duration_ns)
            for event in span.get("events", []):
                _set_time(event, "timeUnixNano", int(event.get("timeUnixNano", 0)) + node.shift_ns)
    if all_warnings:
        span.setdefault("attributes", []).append(warnings_attribute(all_warnings))
    return _dumps(span)


class _Trace:
    """One trace being assembled: span texts, their adjuster skeletons, grouped by resource."""

    __slots__ = ("nodes", "resources", "texts", "warned")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.nodes: list[SpanNode] = []
        # Index in texts -> warnings raised while rendering (events out of time order).
        self.warned: dict[int, list[str]] = {}
        # resource key -> (resource JSON, scope key -> indices into texts)
        self.resources: dict[Any, tuple[dict[str, Any], dict[Any, list[int]]]] = {}


class TracesDataBuilder(AdjustingTraceWriter):
    """Rows (ordered by trace) -> resourceSpans, grouped per trace, resource and scope.

    Each span becomes its compact JSON text as it arrives (its dict is dropped at once), as in
    query.jaeger_model.TracesJsonWriter: a capped trace is still 20,000 spans, and keeping them
    as dicts until the end roughly doubled the query process's peak memory per request.

    ``adjusted`` (the default; api_v3's ``raw_traces`` turns it off) runs the query-time
    adjusters of the v1 API (query/adjusters.py: span-id dedupe, clock skew, parent checks)
    on small per-span skeletons and sorts each span's events by time; a span an adjuster
    changed is re-rendered and carries its warnings in Jaeger's ``@jaeger@warnings``
    attribute, as Jaeger's own api_v3 does.
    """

    def _start(self) -> None:
        self._traces: dict[str, _Trace] = {}
        self._done: set[str] = set()

    def add(self, row: Sequence[Any]) -> None:
        trace = self._traces.get(row[TRACE_ID])
        if trace is None:
            trace = self._traces[row[TRACE_ID]] = _Trace()
        res_attrs = row[RES_ATTRS]
        res_key = (row[SERVICE], tuple(res_attrs.items()))
        entry = trace.resources.get(res_key)
        if entry is None:
            entry = trace.resources[res_key] = (_resource(row[SERVICE], res_attrs), {})
        scope_key = (row[SCOPE_NAME], row[SCOPE_VERSION])
        entry[1].setdefault(scope_key, []).append(len(trace.texts))
        span = span_json(row)
        if self._adjusted:
            trace.nodes.append(_node(row))
            events = span.get("events") or []
            times = [int(e.get("timeUnixNano", 0)) for e in events]
            if times != sorted(times):
                span["events"] = sorted(events, key=lambda e: int(e.get("timeUnixNano", 0)))
                trace.warned[len(trace.texts)] = [EVENTS_SORTED_WARNING]
        trace.texts.append(_dumps(span))

    def __len__(self) -> int:
        return len(self._traces)

    def _ordered(self, order: Sequence[str]) -> list[str]:
        ids = [t for t in order if t in self._traces]
        seen = set(ids)
        return ids + [t for t in self._traces if t not in seen]

    def _scopes(
        self, trace_id: str
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any], Iterator[str]]]:
        """(resource, scope, final span texts) of a trace, adjusted; single use per trace.

        The first span carries a cut's warning (known only once all rows are in). Each text
        is released from the builder as it is handed out.
        """
        trace = self._traces[trace_id]
        if trace_id in self._done:
            raise RuntimeError(f"trace {trace_id} was already written")
        self._done.add(trace_id)
        if self._adjusted:
            adjust(trace.nodes, self._max_skew)
        stored, shown = self._stored.get(trace_id, 0), len(trace.texts)
        cut = [truncation_warning(stored, shown)] if stored > shown else []

        def texts(indices: list[int]) -> Iterator[str]:
            for i in indices:
                text, trace.texts[i] = trace.texts[i], ""
                node = trace.nodes[i] if self._adjusted else None
                warnings = trace.warned.get(i, [])
                if cut:
                    warnings = [*cut, *warnings]
                    cut.clear()
                yield _patched(text, node, warnings)

        for resource, scopes in trace.resources.values():
            for (name, version), indices in scopes.items():
                yield resource, _scope(name, version), texts(indices)

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
                piece: list[str] = []
                first_piece = True
                for text in spans:
                    piece.append(text)
                    if len(piece) == spans_per_chunk:
                        yield ("" if first_piece else ",") + ",".join(piece)
                        piece, first_piece = [], False
                if piece:
                    yield ("" if first_piece else ",") + ",".join(piece)
                yield "]}"
            if current is not None:
                yield "]}"
        yield "]}"


def traces_data(
    rows: Iterable[Sequence[Any]],
    stored: Mapping[str, int] | None = None,
    order: Sequence[str] = (),
    *,
    adjusted: bool = True,
) -> dict[str, Any]:
    """A TracesData JSON object of all rows (the same code as the streamed response)."""
    builder = TracesDataBuilder(stored, adjusted=adjusted)
    for row in rows:
        builder.add(row)
    return {"resourceSpans": builder.resource_spans(order)}

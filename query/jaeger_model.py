"""ClickHouse span rows -> the JSON shapes of Jaeger's query API (pure).

Jaeger UI and Grafana's Jaeger data source read these shapes (Jaeger's api_v2 JSON model, the
``uimodel`` of its query service): times in microseconds, a `processes` map shared by the
trace's spans, references for parents (CHILD_OF) and links (FOLLOWS_FROM), OTel status and kind
mapped to Jaeger's conventional tags, tags typed (query/tag_types.py), 64-bit trace ids as 16 hex
digits. Spans pass through the adjusters of query/adjusters.py unless the client asks for raw
data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from query.adjusters import AdjustingTraceWriter, SpanNode, adjust, host_key
from query.adjusters import sort_tags_and_logs as sort_tags_and_logs
from query.tag_types import string_tag, tag

KIND_TAG = {
    "Server": "server",
    "Client": "client",
    "Producer": "producer",
    "Consumer": "consumer",
    "Internal": "internal",
}
ZERO_TRACE_ID = "0" * 32
ZERO_SPAN_ID = "0" * 16
# Jaeger's query service's warning, once per link it drops.
INVALID_LINK_WARNING = "Invalid span link removed"

# Column order of query/sql/trace_spans.sql.
(
    TRACE_ID,
    SPAN_ID,
    PARENT_ID,
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
    TRACE_STATE,
) = range(20)


# Missing-parent warnings listed per trace; a trace cut by the span cap (or with many sampled-out
# parents) would otherwise carry thousands of them.
MAX_PARENT_WARNINGS = 10


def truncation_warning(stored: int, shown: int) -> str:
    """The warning on a trace cut by the span cap (Jaeger UI shows trace warnings on top)."""
    return f"trace has {stored} spans; showing the first {shown} by start time"


def display_trace_id(trace_id: str) -> str:
    """Jaeger's text of a trace id: 16 hex digits when the high 64 bits are zero, else 32.

    Storage pads every id to 32 digits; Jaeger prints a 64-bit id (Zipkin/B3, old Jaeger
    clients) without the zero high half, and its UI links and compares ids as text.
    """
    if len(trace_id) == 32 and trace_id.startswith(ZERO_SPAN_ID):
        return trace_id[16:]
    return trace_id


def envelope(data: Any, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    total = len(data) if isinstance(data, list) else 0
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def error_envelope(code: int, msg: str) -> dict[str, Any]:
    return envelope(None, [{"code": code, "msg": msg}])


def _tags(attrs: dict[str, str]) -> list[dict[str, Any]]:
    return [tag(k, v) for k, v in attrs.items()]


def _process_key(service: str, res: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return service, tuple(sorted((k, v) for k, v in res.items() if k != "service.name"))


def _valid_span_id(span_id: str) -> bool:
    return bool(span_id) and span_id != ZERO_SPAN_ID


def span_json(row: Sequence[Any], process_id: str) -> dict[str, Any]:
    """One span as Jaeger JSON (sorted, rendering warnings in ``warnings``), not adjusted."""
    span, warnings = render_span(row, process_id)
    span["warnings"] = warnings or None
    return span


def render_span(
    row: Sequence[Any], process_id: str, sort: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """One span as Jaeger JSON and the warnings rendering it raised.

    ``sort`` runs the sort adjuster (tags by key, logs by time); raw answers keep the stored
    order (attributes as stored, then the tags derived from columns).

    References: the parent first as CHILD_OF (Jaeger UI takes the first CHILD_OF as the
    parent), then links as FOLLOWS_FROM; links with an empty or all-zero id point nowhere and
    are dropped with a warning, as Jaeger's query service drops them.
    """
    trace_id = display_trace_id(row[TRACE_ID])
    tags = _tags(row[ATTRS])
    kind = KIND_TAG.get(row[KIND])
    if kind:
        tags.append(string_tag("span.kind", kind))
    if row[STATUS] == "Error":
        tags.append(tag("error", True))
        tags.append(string_tag("otel.status_code", "ERROR"))
    elif row[STATUS] == "Ok":
        tags.append(string_tag("otel.status_code", "OK"))
    if row[STATUS_MSG]:
        tags.append(string_tag("otel.status_description", row[STATUS_MSG]))
    if row[SCOPE_NAME]:
        tags.append(string_tag("otel.scope.name", row[SCOPE_NAME]))
    if row[SCOPE_VERSION]:
        tags.append(string_tag("otel.scope.version", row[SCOPE_VERSION]))
    if row[TRACE_STATE]:
        tags.append(string_tag("w3c.tracestate", row[TRACE_STATE]))
    warnings: list[str] = []
    references = []
    if _valid_span_id(row[PARENT_ID]):
        references.append({"refType": "CHILD_OF", "traceID": trace_id, "spanID": row[PARENT_ID]})
    dropped = 0
    for link_trace, link_span in zip(row[LINK_TRACES], row[LINK_SPANS], strict=False):
        if not link_trace or link_trace == ZERO_TRACE_ID or not _valid_span_id(link_span):
            dropped += 1
            continue
        references.append(
            {
                "refType": "FOLLOWS_FROM",
                "traceID": display_trace_id(link_trace),
                "spanID": link_span,
            }
        )
    warnings += [INVALID_LINK_WARNING] * dropped
    logs = [
        {"timestamp": ts // 1000, "fields": [string_tag("event", name), *_tags(attrs)]}
        for ts, name, attrs in zip(row[EV_TIMES], row[EV_NAMES], row[EV_ATTRS], strict=False)
    ]
    span = {
        "traceID": trace_id,
        "spanID": row[SPAN_ID],
        "operationName": row[NAME],
        "references": references,
        "startTime": row[START_NS] // 1000,
        "duration": row[DURATION] // 1000,
        "tags": tags,
        "logs": logs,
        "processID": process_id,
        "warnings": None,
        "flags": 1,
    }
    if sort:
        warnings += sort_tags_and_logs(span)
    return span, warnings


def _node(row: Sequence[Any], kind: str) -> SpanNode:
    return SpanNode(
        span_id=row[SPAN_ID],
        parent_id=row[PARENT_ID] if _valid_span_id(row[PARENT_ID]) else "",
        kind=kind,
        host=host_key(row[RES_ATTRS]),
        start_ns=row[START_NS],
        duration_ns=row[DURATION],
    )


def _patched(text: str, node: SpanNode | None, warnings: list[str]) -> str:
    """The span's JSON text with what the adjusters changed (most spans pass unchanged)."""
    if (node is None or not node.changed) and not warnings:
        return text
    span = json.loads(text)
    if node is not None and node.relinked:
        span["spanID"] = node.span_id
        refs = [r for r in span["references"] if r["refType"] != "CHILD_OF"]
        if node.parent_id:
            refs.insert(
                0, {"refType": "CHILD_OF", "traceID": span["traceID"], "spanID": node.parent_id}
            )
        span["references"] = refs
    if node is not None and node.shift_ns:
        # Jaeger shifts in ns; JSON carries µs, so shift the ns start and floor again.
        shift = node.shift_ns
        span["startTime"] = (node.start_ns + shift) // 1000
        for log in span["logs"]:
            # An event recorded before 1970 + shift would go negative; times are unsigned.
            log["timestamp"] = max(0, (log["timestamp"] * 1000 + shift) // 1000)
    all_warnings = warnings + (node.warnings if node is not None else [])
    span["warnings"] = all_warnings or None
    return _dumps(span)


class _TraceBuilder:
    """One trace being assembled: its process table, span skeletons for the adjusters."""

    __slots__ = (
        "nodes",
        "parents",
        "process_ids",
        "processes",
        "sort",
        "span_ids",
        "trace_id",
        "warned",
    )

    def __init__(self, trace_id: str, sort: bool = True) -> None:
        self.trace_id = trace_id
        self.sort = sort
        self.processes: dict[str, dict[str, Any]] = {}
        self.process_ids: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self.span_ids: set[str] = set()
        self.parents: set[str] = set()
        self.nodes: list[SpanNode] = []
        # Index in nodes -> warnings from rendering (rare; most spans have none).
        self.warned: dict[int, list[str]] = {}

    def span(self, row: Sequence[Any]) -> dict[str, Any]:
        key = _process_key(row[SERVICE], row[RES_ATTRS])
        pid = self.process_ids.get(key)
        if pid is None:
            pid = self.process_ids[key] = f"p{len(self.process_ids) + 1}"
            self.processes[pid] = {
                "serviceName": key[0],
                "tags": sorted(_tags(dict(key[1])), key=lambda t: t["key"]),
            }
        self.span_ids.add(row[SPAN_ID])
        if _valid_span_id(row[PARENT_ID]):
            self.parents.add(row[PARENT_ID])
        span, warnings = render_span(row, pid, self.sort)
        if warnings:
            self.warned[len(self.nodes)] = warnings
        self.nodes.append(_node(row, KIND_TAG.get(row[KIND], "")))
        return span

    def warnings(self, cut: tuple[int, int] | None) -> list[str] | None:
        """Truncation first, then at most MAX_PARENT_WARNINGS missing parents; None if none."""
        warnings = [] if cut is None else [truncation_warning(*cut)]
        missing = sorted(self.parents - self.span_ids)
        warnings += [
            f"parent span {m} is not stored (sampled out or late)"
            + ("" if cut is None else " or beyond the span limit")
            for m in missing[:MAX_PARENT_WARNINGS]
        ]
        if len(missing) > MAX_PARENT_WARNINGS:
            warnings.append(
                f"{len(missing) - MAX_PARENT_WARNINGS} more parent spans are not returned"
            )
        return warnings or None


def traces_json(
    rows: Iterable[Sequence[Any]],
    truncated: Mapping[str, tuple[int, int]] | None = None,
    *,
    adjusted: bool = True,
) -> list[dict[str, Any]]:
    """Group rows (ordered by trace) into Jaeger traces, each with its own process table.

    ``truncated`` maps a stored trace id to (spans stored, spans returned) for traces the
    store capped; those traces lead their warnings with :func:`truncation_warning`. The same
    code as the streamed response (:class:`TracesJsonWriter`), parsed back.
    """
    stored = {t: n for t, (n, _shown) in (truncated or {}).items()}
    writer = TracesJsonWriter(stored, adjusted=adjusted)
    for row in rows:
        writer.add(row)
    data: list[dict[str, Any]] = json.loads(b"".join(writer.chunks()))["data"]
    return data


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class TracesJsonWriter(AdjustingTraceWriter):
    """The JSON envelope of some traces, built span by span and sent in chunks.

    A capped trace is still 20,000 spans; as nested dicts they cost ~2.5 KB each on top of the
    rows, so building the whole document and then ``json.dumps`` held ~5 KB per span at peak.
    Here each span becomes its compact JSON text as it arrives (its dict is dropped at once),
    plus a small :class:`SpanNode` for the adjusters, and :meth:`chunks` releases the texts as
    it yields them, re-rendering only the spans an adjuster changed.
    """

    def _start(self) -> None:
        self._traces: dict[str, tuple[_TraceBuilder, list[str | None]]] = {}
        # The envelope's ``errors`` (e.g. ids of a multi-id lookup that were not found).
        self.errors: list[dict[str, Any]] | None = None

    def trace_ids(self) -> set[str]:
        """Stored ids (32 hex digits) of the traces added so far."""
        return set(self._traces)

    def add(self, row: Sequence[Any]) -> None:
        entry = self._traces.get(row[TRACE_ID])
        if entry is None:
            builder = _TraceBuilder(row[TRACE_ID], sort=self._adjusted)
            entry = self._traces[row[TRACE_ID]] = (builder, [])
        entry[1].append(_dumps(entry[0].span(row)))

    def __len__(self) -> int:
        return len(self._traces)

    def chunks(self, order: Sequence[str] = (), spans_per_chunk: int = 1000) -> Iterator[bytes]:
        """The envelope as bytes, traces in ``order`` first (the rest as added); single use."""
        ids = [t for t in order if t in self._traces]
        listed = set(ids)
        ids += [t for t in self._traces if t not in listed]
        yield b'{"data":['
        for n, trace_id in enumerate(ids):
            builder, spans = self._traces.pop(trace_id)
            if self._adjusted:
                adjust(builder.nodes, self._max_skew)
            stored = self._stored.get(trace_id, 0)
            cut = (stored, len(spans)) if stored > len(spans) else None
            head = (
                ("," if n else "")
                + '{"traceID":'
                + _dumps(display_trace_id(trace_id))
                + ',"spans":['
            )
            for start in range(0, max(len(spans), 1), spans_per_chunk):
                piece = spans[start : start + spans_per_chunk]
                spans[start : start + spans_per_chunk] = [None] * len(piece)  # release texts
                text = ",".join(
                    _patched(
                        t,
                        builder.nodes[start + i] if self._adjusted else None,
                        builder.warned.get(start + i, []),
                    )
                    for i, t in enumerate(piece)
                    if t is not None
                )
                yield ((head if start == 0 else ",") + text).encode()
            yield (
                '],"processes":'
                + _dumps(builder.processes)
                + ',"warnings":'
                + _dumps(builder.warnings(cut))
                + "}"
            ).encode()
        yield (
            f'],"total":{len(ids)},"limit":0,"offset":0,"errors":{_dumps(self.errors)}}}'
        ).encode()

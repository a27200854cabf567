"""ClickHouse span rows -> the JSON shapes of Jaeger's query API (pure).

Jaeger UI and Grafana's Jaeger data source read these shapes: times in microseconds, a
`processes` map shared by the trace's spans, references for parents (CHILD_OF) and links
(FOLLOWS_FROM), OTel status and kind mapped to Jaeger's conventional tags.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

KIND_TAG = {
    "Server": "server",
    "Client": "client",
    "Producer": "producer",
    "Consumer": "consumer",
    "Internal": "internal",
}

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


def envelope(data: Any, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    total = len(data) if isinstance(data, list) else 0
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def error_envelope(code: int, msg: str) -> dict[str, Any]:
    return envelope(None, [{"code": code, "msg": msg}])


def _tag(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    return {"key": key, "type": "string", "value": str(value)}


def _tags(attrs: dict[str, str]) -> list[dict[str, Any]]:
    return [_tag(k, v) for k, v in sorted(attrs.items())]


def _process_key(service: str, res: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return service, tuple(sorted((k, v) for k, v in res.items() if k != "service.name"))


def span_json(row: Sequence[Any], process_id: str) -> dict[str, Any]:
    trace_id = row[TRACE_ID]
    tags = _tags(row[ATTRS])
    kind = KIND_TAG.get(row[KIND])
    if kind:
        tags.append(_tag("span.kind", kind))
    if row[STATUS] == "Error":
        tags.append(_tag("error", True))
        tags.append(_tag("otel.status_code", "ERROR"))
    elif row[STATUS] == "Ok":
        tags.append(_tag("otel.status_code", "OK"))
    if row[STATUS_MSG]:
        tags.append(_tag("otel.status_description", row[STATUS_MSG]))
    if row[SCOPE_NAME]:
        tags.append(_tag("otel.scope.name", row[SCOPE_NAME]))
    if row[SCOPE_VERSION]:
        tags.append(_tag("otel.scope.version", row[SCOPE_VERSION]))
    if row[TRACE_STATE]:
        tags.append(_tag("w3c.tracestate", row[TRACE_STATE]))
    references = []
    if row[PARENT_ID]:
        references.append({"refType": "CHILD_OF", "traceID": trace_id, "spanID": row[PARENT_ID]})
    for link_trace, link_span in zip(row[LINK_TRACES], row[LINK_SPANS], strict=False):
        references.append({"refType": "FOLLOWS_FROM", "traceID": link_trace, "spanID": link_span})
    logs = [
        {"timestamp": ts // 1000, "fields": [_tag("event", name), *_tags(attrs)]}
        for ts, name, attrs in zip(row[EV_TIMES], row[EV_NAMES], row[EV_ATTRS], strict=False)
    ]
    return {
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


class _TraceBuilder:
    """One trace being assembled: its process table and what its warnings need."""

    __slots__ = ("parents", "process_ids", "processes", "span_ids", "trace_id")

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.processes: dict[str, dict[str, Any]] = {}
        self.process_ids: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self.span_ids: set[str] = set()
        self.parents: set[str] = set()

    def span(self, row: Sequence[Any]) -> dict[str, Any]:
        key = _process_key(row[SERVICE], row[RES_ATTRS])
        pid = self.process_ids.get(key)
        if pid is None:
            pid = self.process_ids[key] = f"p{len(self.process_ids) + 1}"
            self.processes[pid] = {
                "serviceName": key[0],
                "tags": [_tag(k, v) for k, v in key[1]],
            }
        self.span_ids.add(row[SPAN_ID])
        if row[PARENT_ID]:
            self.parents.add(row[PARENT_ID])
        return span_json(row, pid)

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
) -> list[dict[str, Any]]:
    """Group rows (ordered by trace) into Jaeger traces, each with its own process table.

    ``truncated`` maps a trace id to (spans stored, spans returned) for traces the store
    capped; those traces lead their warnings with :func:`truncation_warning`.
    """
    traces: dict[str, tuple[_TraceBuilder, list[dict[str, Any]]]] = {}
    for row in rows:
        entry = traces.get(row[TRACE_ID])
        if entry is None:
            entry = traces[row[TRACE_ID]] = (_TraceBuilder(row[TRACE_ID]), [])
        entry[1].append(entry[0].span(row))
    return [
        {
            "traceID": trace_id,
            "spans": spans,
            "processes": builder.processes,
            "warnings": builder.warnings((truncated or {}).get(trace_id)),
        }
        for trace_id, (builder, spans) in traces.items()
    ]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class TracesJsonWriter:
    """The JSON of ``envelope(traces_json(rows))``, built span by span and sent in chunks.

    A capped trace is still 20,000 spans; as nested dicts they cost ~2.5 KB each on top of the
    rows, so building the whole document and then ``json.dumps`` held ~5 KB per span at peak.
    Here each span becomes its compact JSON text as it arrives (its dict is dropped at once)
    and :meth:`chunks` releases the texts as it yields them.
    """

    def __init__(self, stored: Mapping[str, int] | None = None) -> None:
        # Spans stored per trace: a trace with fewer spans added is marked truncated.
        self._stored = dict(stored or {})
        self._traces: dict[str, tuple[_TraceBuilder, list[str | None]]] = {}

    def add(self, row: Sequence[Any]) -> None:
        entry = self._traces.get(row[TRACE_ID])
        if entry is None:
            entry = self._traces[row[TRACE_ID]] = (_TraceBuilder(row[TRACE_ID]), [])
        entry[1].append(_dumps(entry[0].span(row)))

    def __len__(self) -> int:
        return len(self._traces)

    def chunks(self, order: Sequence[str] = (), spans_per_chunk: int = 1000) -> Iterator[bytes]:
        """The envelope as bytes, traces in ``order`` first (the rest as added); single use."""
        ids = [t for t in order if t in self._traces]
        ids += [t for t in self._traces if t not in set(ids)]
        yield b'{"data":['
        for n, trace_id in enumerate(ids):
            builder, spans = self._traces.pop(trace_id)
            stored = self._stored.get(trace_id, 0)
            cut = (stored, len(spans)) if stored > len(spans) else None
            head = ("," if n else "") + '{"traceID":' + _dumps(trace_id) + ',"spans":['
            for start in range(0, max(len(spans), 1), spans_per_chunk):
                piece = spans[start : start + spans_per_chunk]
                spans[start : start + spans_per_chunk] = [None] * len(piece)  # release texts
                text = ",".join(t for t in piece if t is not None)
                yield ((head if start == 0 else ",") + text).encode()
            yield (
                '],"processes":'
                + _dumps(builder.processes)
                + ',"warnings":'
                + _dumps(builder.warnings(cut))
                + "}"
            ).encode()
        yield f'],"total":{len(ids)},"limit":0,"offset":0,"errors":null}}'.encode()

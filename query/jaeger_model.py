"""ClickHouse span rows -> the JSON shapes of Jaeger's query API (pure).

Jaeger UI and Grafana's Jaeger data source read these shapes: times in microseconds, a
`processes` map shared by the trace's spans, references for parents (CHILD_OF) and links
(FOLLOWS_FROM), OTel status and kind mapped to Jaeger's conventional tags.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


def traces_json(
    rows: Iterable[Sequence[Any]],
    truncated: Mapping[str, tuple[int, int]] | None = None,
) -> list[dict[str, Any]]:
    """Group rows (ordered by trace) into Jaeger traces, each with its own process table.

    ``truncated`` maps a trace id to (spans stored, spans returned) for traces the store
    capped; those traces lead their warnings with :func:`truncation_warning`.
    """
    traces: dict[str, dict[str, Any]] = {}
    process_ids: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], str]] = {}
    for row in rows:
        trace_id = row[TRACE_ID]
        trace = traces.get(trace_id)
        if trace is None:
            trace = traces[trace_id] = {
                "traceID": trace_id,
                "spans": [],
                "processes": {},
                "warnings": None,
            }
            process_ids[trace_id] = {}
        key = _process_key(row[SERVICE], row[RES_ATTRS])
        pid = process_ids[trace_id].get(key)
        if pid is None:
            pid = f"p{len(process_ids[trace_id]) + 1}"
            process_ids[trace_id][key] = pid
            trace["processes"][pid] = {
                "serviceName": key[0],
                "tags": [_tag(k, v) for k, v in key[1]],
            }
        trace["spans"].append(span_json(row, pid))
    for trace in traces.values():
        warnings: list[str] = []
        cut = (truncated or {}).get(trace["traceID"])
        if cut is not None:
            warnings.append(truncation_warning(*cut))
        ids = {s["spanID"] for s in trace["spans"]}
        missing = sorted(
            {
                r["spanID"]
                for s in trace["spans"]
                for r in s["references"]
                if r["refType"] == "CHILD_OF"
            }
            - ids
        )
        warnings += [
            f"parent span {m} is not stored (sampled out or late)"
            + ("" if cut is None else " or beyond the span limit")
            for m in missing[:MAX_PARENT_WARNINGS]
        ]
        if len(missing) > MAX_PARENT_WARNINGS:
            warnings.append(
                f"{len(missing) - MAX_PARENT_WARNINGS} more parent spans are not returned"
            )
        if warnings:
            trace["warnings"] = warnings
    return list(traces.values())

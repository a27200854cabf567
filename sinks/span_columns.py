"""Avro span records -> the column lists of ``otel_traces``.

Column-oriented so clickhouse-connect can serialise each column in one go instead of
walking row dicts; the names, kinds and status strings match what the OTel Collector's
ClickHouse exporter writes so existing Grafana/SQL queries work unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# pdata's SpanKind.String() / StatusCode.String(), as the current exporter stores them.
SPAN_KIND_NAMES = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODE_NAMES = ("Unset", "Ok", "Error")

OTEL_TRACES_COLUMNS = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
    "TenantId",
)


def _name(names: tuple[str, ...], code: int) -> str:
    return names[code] if 0 <= code < len(names) else str(code)


def otel_traces_columns(spans: Iterable[dict[str, Any]]) -> list[list[Any]]:
    cols: list[list[Any]] = [[] for _ in OTEL_TRACES_COLUMNS]
    (
        ts,
        trace_id,
        span_id,
        parent,
        state,
        name,
        kind,
        service,
        res_attrs,
        scope_name,
        scope_version,
        attrs,
        duration,
        status,
        status_msg,
        ev_ts,
        ev_name,
        ev_attrs,
        ln_trace,
        ln_span,
        ln_state,
        ln_attrs,
        tenant,
    ) = cols
    for s in spans:
        start = s["start_time_unix_nano"]
        ts.append(start)
        trace_id.append(s["trace_id"])
        span_id.append(s["span_id"])
        parent.append(s["parent_span_id"])
        state.append(s["trace_state"])
        name.append(s["name"])
        kind.append(_name(SPAN_KIND_NAMES, s["kind"]))
        service.append(s["service_name"])
        res_attrs.append(s["resource_attributes"])
        scope_name.append(s["scope_name"])
        scope_version.append(s["scope_version"])
        attrs.append(s["attributes"])
        duration.append(max(0, s["end_time_unix_nano"] - start))
        status.append(_name(STATUS_CODE_NAMES, s["status_code"]))
        status_msg.append(s["status_message"])
        events = s["events"]
        ev_ts.append([e["time_unix_nano"] for e in events])
        ev_name.append([e["name"] for e in events])
        ev_attrs.append([e["attributes"] for e in events])
        links = s["links"]
        ln_trace.append([lk["trace_id"] for lk in links])
        ln_span.append([lk["span_id"] for lk in links])
        ln_state.append([lk["trace_state"] for lk in links])
        ln_attrs.append([lk["attributes"] for lk in links])
        tenant.append(s["tenant_id"])
    return cols

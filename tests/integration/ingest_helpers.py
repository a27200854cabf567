"""Helpers for the ingest integration tests: raw HTTP, /metrics parsing, ClickHouse probes,
and an OTLP/JSON encoder for SDK spans written from the OTLP spec (hex ids, int enums,
int64 as strings) so the JSON path is tested against the spec, not against our decoder."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from prometheus_client.parser import text_string_to_metric_families

from core.clickhouse import connect
from core.settings import Settings
from tests.integration.helpers import wait_until


def post(
    url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """All samples of an ingest /metrics page, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def metric(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def ch_rows(settings: Settings, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    client = connect(settings.clickhouse_url, settings.clickhouse_database)
    return list(client.query(sql, parameters=params).result_rows)


def wait_for_trace_rows(settings: Settings, trace_ids: Sequence[str], expected: int) -> list[Any]:
    sql = (
        "SELECT TraceId, SpanId, ParentSpanId, ServiceName, SpanName, SpanKind, StatusCode,"
        " StatusMessage, SpanAttributes, `Events.Name`, TenantId, ResourceAttributes"
        " FROM otel_traces WHERE TraceId IN {t:Array(String)}"
    )
    return wait_until(
        lambda: ch_rows(settings, sql, t=list(trace_ids)),
        lambda rows: len(rows) >= expected,
        timeout=60,
    )


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attrs(attrs: Any) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in (attrs or {}).items()]


def otlp_json_request(spans: Sequence[ReadableSpan]) -> bytes:
    """Encode SDK spans as an OTLP/JSON ExportTraceServiceRequest, per the OTLP spec."""
    by_resource: dict[int, tuple[Any, list[ReadableSpan]]] = {}
    for span in spans:
        by_resource.setdefault(id(span.resource), (span.resource, []))[1].append(span)
    resource_spans = []
    for resource, items in by_resource.values():
        json_spans = []
        for s in items:
            ctx = s.get_span_context()
            assert ctx is not None
            json_spans.append(
                {
                    "traceId": format(ctx.trace_id, "032x"),
                    "spanId": format(ctx.span_id, "016x"),
                    "parentSpanId": format(s.parent.span_id, "016x") if s.parent else "",
                    "name": s.name,
                    "kind": s.kind.value + 1,  # SDK INTERNAL=0; OTLP INTERNAL=1
                    "startTimeUnixNano": str(s.start_time),
                    "endTimeUnixNano": s.end_time,  # numbers are legal for int64 too
                    "attributes": _attrs(s.attributes),
                    "events": [
                        {
                            "timeUnixNano": str(e.timestamp),
                            "name": e.name,
                            "attributes": _attrs(e.attributes),
                        }
                        for e in s.events
                    ],
                    "status": {
                        "code": s.status.status_code.value,
                        "message": s.status.description or "",
                    },
                }
            )
        resource_spans.append(
            {
                "resource": {"attributes": _attrs(resource.attributes)},
                "scopeSpans": [{"scope": {"name": "tests.json"}, "spans": json_spans}],
            }
        )
    return json.dumps({"resourceSpans": resource_spans}).encode()


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=1)

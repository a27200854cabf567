"""Build OTLP ``TracesData`` messages span by span, for tests and benchmarks.

Readable span specs (or rows) in, valid OTLP out; kept out of ``tests/`` so that ``bench/``
imports nothing from the test suite."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = 2, 3, 4, 5, 1
OK, ERROR = 1, 2
MS = 1_000_000


@dataclass
class SpanSpec:
    trace_id: bytes
    span_id: bytes
    service: str
    name: str = "op"
    parent_id: bytes = b""
    kind: int = INTERNAL
    start_ns: int = 1_700_000_000_000_000_000
    duration_ms: float = 1.0
    status: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    trace_state: str = ""


def any_value(value: Any) -> common_pb2.AnyValue:
    """A Python value as the OTLP AnyValue an SDK would send for it (other types as text)."""
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    return common_pb2.AnyValue(string_value=str(value))


def traces_data(spans: list[SpanSpec]) -> trace_pb2.TracesData:
    """One ResourceSpans per service, in first-seen order."""
    data = trace_pb2.TracesData()
    by_service: dict[str, Any] = {}
    for s in spans:
        scope = by_service.get(s.service)
        if scope is None:
            rs = data.resource_spans.add()
            kv = rs.resource.attributes.add()
            kv.key, kv.value.string_value = "service.name", s.service
            scope = by_service[s.service] = rs.scope_spans.add()
            scope.scope.name = "tests"
        span = scope.spans.add()
        span.trace_id, span.span_id, span.parent_span_id = s.trace_id, s.span_id, s.parent_id
        span.name, span.kind, span.trace_state = s.name, s.kind, s.trace_state
        span.start_time_unix_nano = s.start_ns
        span.end_time_unix_nano = s.start_ns + int(s.duration_ms * MS)
        span.status.code = s.status
        for k, v in s.attributes.items():
            a = span.attributes.add()
            a.key = k
            a.value.CopyFrom(any_value(v))
    return data


def payload(spans: list[SpanSpec]) -> bytes:
    return traces_data(spans).SerializeToString()


def tid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _put_attributes(target: Any, attributes: Mapping[str, Any]) -> None:
    for k, v in attributes.items():
        a = target.add()
        a.key = k
        a.value.CopyFrom(any_value(v))


def traces_from_rows(rows: Sequence[Mapping[str, Any]]) -> trace_pb2.TracesData:
    """Spans written as readable dicts -> OTLP, so fixtures take the pipeline's one path.

    A row holds the ``otel_traces`` facts of one span under the OTLP field names: ``trace_id``,
    ``span_id`` and ``parent_span_id`` as hex, ``name``, ``kind``, ``service_name``,
    ``start_time_unix_nano``, ``end_time_unix_nano``, ``status_code`` and optionally
    ``tenant_id``, ``trace_state``, ``status_message``, ``scope_name``, ``scope_version``,
    ``resource_attributes``, ``attributes`` and ``events``/``links`` (dicts of the same
    names). The service and the tenant go into the resource, where streams reads them. Spans
    keep their order: a new ResourceSpans starts whenever the resource or scope changes.
    """
    data = trace_pb2.TracesData()
    last: tuple[Any, ...] | None = None
    scope: Any = None
    for row in rows:
        resource = {**row.get("resource_attributes", {}), "service.name": row["service_name"]}
        if row.get("tenant_id"):
            resource["tracehouse.tenant"] = row["tenant_id"]
        key = (tuple(resource.items()), row.get("scope_name", ""), row.get("scope_version", ""))
        if key != last:
            rs = data.resource_spans.add()
            _put_attributes(rs.resource.attributes, resource)
            scope = rs.scope_spans.add()
            scope.scope.name, scope.scope.version = key[1], key[2]
            last = key
        span = scope.spans.add(
            trace_id=bytes.fromhex(row["trace_id"]),
            span_id=bytes.fromhex(row["span_id"]),
            parent_span_id=bytes.fromhex(row.get("parent_span_id", "")),
            trace_state=row.get("trace_state", ""),
            name=row["name"],
            kind=row["kind"],
            start_time_unix_nano=row["start_time_unix_nano"],
            end_time_unix_nano=row["end_time_unix_nano"],
        )
        span.status.code = row["status_code"]
        span.status.message = row.get("status_message", "")
        _put_attributes(span.attributes, row.get("attributes", {}))
        for e in row.get("events", []):
            event = span.events.add(time_unix_nano=e["time_unix_nano"], name=e["name"])
            _put_attributes(event.attributes, e.get("attributes", {}))
        for lk in row.get("links", []):
            link = span.links.add(
                trace_id=bytes.fromhex(lk["trace_id"]),
                span_id=bytes.fromhex(lk["span_id"]),
                trace_state=lk.get("trace_state", ""),
            )
            _put_attributes(link.attributes, lk.get("attributes", {}))
    return data

"""Cheap per-span views for the hot path; full Avro records only for spans that are kept.

RED, the service graph and most policies need a dozen scalar fields per span, while building
the complete record (hex ids, attribute maps, events, links) costs most of the per-span time.
Since tail sampling usually keeps a small share of spans, views carry the scalars plus a
reference to the protobuf span, and :func:`full_record` builds the ``span_batch`` record only
for spans that leave the worker. Ids stay bytes here (hex is for the wire).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.trace.v1 import trace_pb2

from streams.otlp_values import any_value_to_str, attributes_to_dict
from streams.span_records import events_of, links_of, service_name_of


def span_views(data: trace_pb2.TracesData, tenant_id: str = "") -> list[dict[str, Any]]:
    views: list[dict[str, Any]] = []
    append = views.append
    for rs in data.resource_spans:
        resource_attributes = attributes_to_dict(rs.resource.attributes)
        tenant = resource_attributes.get("tracehouse.tenant", tenant_id)
        service = service_name_of(resource_attributes)
        for ss in rs.scope_spans:
            scope = ss.scope
            for span in ss.spans:
                append(
                    {
                        "tenant_id": tenant,
                        "trace_id": span.trace_id,
                        "span_id": span.span_id,
                        "parent_span_id": span.parent_span_id,
                        "trace_state": span.trace_state,
                        "name": span.name,
                        "kind": span.kind,
                        "service_name": service,
                        "start_time_unix_nano": span.start_time_unix_nano,
                        "end_time_unix_nano": span.end_time_unix_nano,
                        "status_code": span.status.code,
                        "resource_attributes": resource_attributes,
                        "_span": span,
                        "_scope": scope,
                    }
                )
    return views


def attributes_of(view: dict[str, Any]) -> dict[str, str]:
    """The span's attributes as strings, converted on first use and then cached in the view."""
    attrs = view.get("attributes")
    if attrs is None:
        span = view["_span"]
        attrs = view["attributes"] = attributes_to_dict(span.attributes) if span.attributes else {}
    return attrs


def first_attribute(view: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The value of the first of ``keys`` the span has, without converting all attributes."""
    attrs = view.get("attributes")
    if attrs is not None:
        for k in keys:
            if k in attrs:
                return str(attrs[k])
        return ""
    found: dict[str, Any] = {}
    for kv in view["_span"].attributes:
        if kv.key in keys:
            found[kv.key] = kv.value
    for k in keys:
        if k in found:
            return any_value_to_str(found[k])
    return ""


def full_record(view: dict[str, Any]) -> dict[str, Any]:
    """The ``span_batch`` Span record of a view (same result as span_records)."""
    span = view["_span"]
    scope = view["_scope"]
    return {
        "tenant_id": view["tenant_id"],
        "trace_id": view["trace_id"].hex(),
        "span_id": view["span_id"].hex(),
        "parent_span_id": view["parent_span_id"].hex(),
        "trace_state": view["trace_state"],
        "name": view["name"],
        "kind": view["kind"],
        "service_name": view["service_name"],
        "start_time_unix_nano": view["start_time_unix_nano"],
        "end_time_unix_nano": view["end_time_unix_nano"],
        "status_code": view["status_code"],
        "status_message": span.status.message,
        "resource_attributes": view["resource_attributes"],
        "scope_name": scope.name,
        "scope_version": scope.version,
        "attributes": attributes_of(view),
        "events": events_of(span),
        "links": links_of(span),
    }

"""OTLP ``TracesData`` -> Avro ``Span`` records, one pass per message.

This is the single place where the wire format of the raw topic meets the internal schema, so
sampling, RED and the sink all see spans the same way (service name from the resource, ids
as hex, attributes as strings).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.trace.v1 import trace_pb2

from streams.otlp_values import attributes_to_dict

SERVICE_NAME_KEY = "service.name"


def service_name_of(resource_attributes: dict[str, str]) -> str:
    return resource_attributes.get(SERVICE_NAME_KEY, "")


def events_of(span: trace_pb2.Span) -> list[dict[str, Any]]:
    """The span's events as ``Event`` records (most spans have none: no list is built)."""
    if not span.events:
        return []
    return [
        {
            "time_unix_nano": e.time_unix_nano,
            "name": e.name,
            "attributes": attributes_to_dict(e.attributes),
        }
        for e in span.events
    ]


def links_of(span: trace_pb2.Span) -> list[dict[str, Any]]:
    """The span's links as ``Link`` records, ids as hex like the span's own."""
    if not span.links:
        return []
    return [
        {
            "trace_id": link.trace_id.hex(),
            "span_id": link.span_id.hex(),
            "trace_state": link.trace_state,
            "attributes": attributes_to_dict(link.attributes),
        }
        for link in span.links
    ]


def span_records(data: trace_pb2.TracesData, tenant_id: str = "") -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    append = records.append
    for rs in data.resource_spans:
        resource_attributes = attributes_to_dict(rs.resource.attributes)
        # The tenant travels as a resource attribute set by ingest (see ingest/tenancy).
        tenant = resource_attributes.get("tracehouse.tenant", tenant_id)
        service = service_name_of(resource_attributes)
        for ss in rs.scope_spans:
            scope_name = ss.scope.name
            scope_version = ss.scope.version
            for span in ss.spans:
                append(
                    {
                        "tenant_id": tenant,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "trace_state": span.trace_state,
                        "name": span.name,
                        "kind": span.kind,
                        "service_name": service,
                        "start_time_unix_nano": span.start_time_unix_nano,
                        "end_time_unix_nano": span.end_time_unix_nano,
                        "status_code": span.status.code,
                        "status_message": span.status.message,
                        "resource_attributes": resource_attributes,
                        "scope_name": scope_name,
                        "scope_version": scope_version,
                        "attributes": attributes_to_dict(span.attributes)
                        if span.attributes
                        else {},
                        "events": events_of(span),
                        "links": links_of(span),
                    }
                )
    return records

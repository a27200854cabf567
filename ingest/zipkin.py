"""Zipkin v2 JSON (``POST /api/v2/spans``) -> OTLP ``TracesData``.

Zipkin clients still exist in older stacks; converting at the edge lets the rest of the
pipeline see only OTLP. Mapping (the same choices the OTel Collector's zipkin receiver makes):

- ``localEndpoint.serviceName`` -> resource ``service.name`` (one ResourceSpans per service);
- ``kind`` CLIENT/SERVER/PRODUCER/CONSUMER -> the OTLP kind, absent -> INTERNAL;
- ``tags`` -> string attributes; the ``error`` tag -> status ERROR with the tag as message
  (``otel.status_code``/``otel.status_description`` tags win when present);
- ``annotations`` -> events; ``remoteEndpoint`` -> ``peer.service``/``network.peer.*``;
- 64-bit trace ids are left-padded to 128 bits;
- ``shared: true`` server spans reuse their client's span id in Zipkin, which would collide
  with the client span in OTLP storage, so they get a derived id (BLAKE2b of the original id)
  with the client span as parent, and keep the original in ``zipkin.original_span_id``.
"""

from __future__ import annotations

import binascii
import hashlib
from typing import Any

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.errors import BodyError, parse_json_body

SCOPE_NAME = "tracehouse.zipkin"
_KINDS = {
    "CLIENT": trace_pb2.Span.SPAN_KIND_CLIENT,
    "SERVER": trace_pb2.Span.SPAN_KIND_SERVER,
    "PRODUCER": trace_pb2.Span.SPAN_KIND_PRODUCER,
    "CONSUMER": trace_pb2.Span.SPAN_KIND_CONSUMER,
}
_STATUS = {"ERROR": trace_pb2.Status.STATUS_CODE_ERROR, "OK": trace_pb2.Status.STATUS_CODE_OK}


def _hex_id(value: Any, width: int) -> bytes:
    """Hex id -> bytes, left-padded to ``width`` bytes; invalid -> b"" (rejected later)."""
    if not isinstance(value, str) or not value or len(value) > width * 2:
        return b""
    try:
        raw = binascii.unhexlify(value.rjust(width * 2, "0"))
    except (binascii.Error, ValueError):
        return b""
    return raw


def shared_span_id(span_id: bytes) -> bytes:
    """Deterministic id for the server half of a shared Zipkin span (retries stay idempotent)."""
    return hashlib.blake2b(span_id + b"zipkin-shared", digest_size=8).digest()


def _str_attr(span: trace_pb2.Span, key: str, value: str) -> None:
    span.attributes.append(
        common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))
    )


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _convert(z: dict[str, Any], span: trace_pb2.Span) -> None:
    span.trace_id = _hex_id(z.get("traceId"), 16)
    span_id = _hex_id(z.get("id"), 8)
    parent = _hex_id(z.get("parentId"), 8) if z.get("parentId") else b""
    kind = str(z.get("kind") or "").upper()
    if z.get("shared") is True and kind == "SERVER" and span_id:
        parent, span_id = span_id, shared_span_id(span_id)
        _str_attr(span, "zipkin.original_span_id", z["id"])
        span.attributes.append(
            common_pb2.KeyValue(key="zipkin.shared", value=common_pb2.AnyValue(bool_value=True))
        )
    span.span_id = span_id
    span.parent_span_id = parent
    span.name = str(z.get("name") or "")
    span.kind = _KINDS.get(kind, trace_pb2.Span.SPAN_KIND_INTERNAL)
    start_us = _int(z.get("timestamp"))
    span.start_time_unix_nano = start_us * 1000
    span.end_time_unix_nano = (start_us + _int(z.get("duration"))) * 1000
    tags = _obj(z.get("tags"))
    status_code = tags.get("otel.status_code")
    if isinstance(status_code, str) and status_code.upper() in _STATUS:
        span.status.code = _STATUS[status_code.upper()]
        span.status.message = str(tags.get("otel.status_description", ""))
    elif "error" in tags:
        span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
        span.status.message = str(tags["error"])
    for key, value in tags.items():
        if key in ("error", "otel.status_code", "otel.status_description"):
            continue
        _str_attr(span, str(key), str(value))
    remote = _obj(z.get("remoteEndpoint"))
    if remote.get("serviceName"):
        _str_attr(span, "peer.service", str(remote["serviceName"]))
    address = remote.get("ipv4") or remote.get("ipv6")
    if address:
        _str_attr(span, "network.peer.address", str(address))
    if remote.get("port"):
        span.attributes.append(
            common_pb2.KeyValue(
                key="network.peer.port", value=common_pb2.AnyValue(int_value=_int(remote["port"]))
            )
        )
    for annotation in z.get("annotations") or []:
        if isinstance(annotation, dict):
            event = span.events.add()
            event.time_unix_nano = _int(annotation.get("timestamp")) * 1000
            event.name = str(annotation.get("value", ""))


def decode_spans(body: bytes) -> trace_pb2.TracesData:
    """Parse a Zipkin v2 JSON span list; raises BodyError(400) for anything else."""
    doc = parse_json_body(body)
    if not isinstance(doc, list):
        raise BodyError(400, "invalid_zipkin", "Zipkin v2 body must be a JSON array of spans")
    data = trace_pb2.TracesData()
    scopes: dict[str, trace_pb2.ScopeSpans] = {}
    for z in doc:
        if not isinstance(z, dict):
            raise BodyError(400, "invalid_zipkin", "each Zipkin span must be a JSON object")
        local = _obj(z.get("localEndpoint"))
        service = str(local.get("serviceName") or "")
        ss = scopes.get(service)
        if ss is None:
            rs = data.resource_spans.add()
            rs.resource.attributes.append(
                common_pb2.KeyValue(
                    key="service.name", value=common_pb2.AnyValue(string_value=service)
                )
            )
            address = local.get("ipv4") or local.get("ipv6")
            if address:
                rs.resource.attributes.append(
                    common_pb2.KeyValue(
                        key="host.ip", value=common_pb2.AnyValue(string_value=str(address))
                    )
                )
            ss = scopes[service] = rs.scope_spans.add()
            ss.scope.name = SCOPE_NAME
        _convert(z, ss.spans.add())
    return data

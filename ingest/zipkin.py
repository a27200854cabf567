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
  with the client span as parent, and keep the original in ``zipkin.original_span_id`` and
  their declared parent in ``zipkin.parent_id``. Spans of the same request that the same
  service logged under the shared id are re-pointed at the derived id (Zipkin attaches them
  to the server half). py_zipkin marks a server ``shared`` even when the client minted a new
  id for it, so no client half has that id: streams then re-parents the server to
  ``zipkin.parent_id`` once it sees the whole trace (``streams/zipkin_links.py``).

Each span is checked while it is converted: a span with a field of the wrong type or range
(negative, fractional or > int64 timestamps, a port outside 1..65535, ``annotations`` that is
not a list, ``tags`` that is not an object of scalars, ids that are not hex, a lone surrogate)
is refused alone with a reason, since the array still delimits it; a body that is not a JSON
array, or nests deeper than ``errors.MAX_JSON_DEPTH``, is a 400. Times are checked against
storage here (``time_out_of_range``) because microseconds x 1000 can exceed even uint64.
"""

from __future__ import annotations

import binascii
import hashlib
import math
from collections import Counter
from typing import Any

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.decoded import Decoded, finish
from ingest.errors import BodyError, parse_json_body
from ingest.zipkin_version import require_version
from schemas.span_limits import MAX_TIME_UNIX_NANO, TIME_OUT_OF_RANGE

SCOPE_NAME = "tracehouse.zipkin"
ZIPKIN_PARENT_ID = "zipkin.parent_id"
# Spans per request. Zipkin clients flush a few thousand at most; a bound keeps the per-span
# Python work of one request (~7 µs a span) under a second, where 16 MiB of two-byte spans
# would hold the event loop for a minute.
MAX_SPANS_PER_REQUEST = 100_000
REQUEST_REASON = "invalid_zipkin"
_KINDS = {
    "CLIENT": trace_pb2.Span.SPAN_KIND_CLIENT,
    "SERVER": trace_pb2.Span.SPAN_KIND_SERVER,
    "PRODUCER": trace_pb2.Span.SPAN_KIND_PRODUCER,
    "CONSUMER": trace_pb2.Span.SPAN_KIND_CONSUMER,
}
_STATUS = {"ERROR": trace_pb2.Status.STATUS_CODE_ERROR, "OK": trace_pb2.Status.STATUS_CODE_OK}
_MAX_INT64 = 2**63 - 1
_MAX_MICROS = MAX_TIME_UNIX_NANO // 1000


class SpanRejected(Exception):
    """This span cannot be converted; ``reason`` is its metric label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _hex_id(value: Any, width: int, reason: str) -> bytes:
    """Hex id -> bytes, left-padded to ``width`` bytes like Zipkin does.

    Missing/empty or longer than ``width`` -> b"" (validation then rejects it by length);
    not a string or not hex -> the span is refused with ``reason``.
    """
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise SpanRejected(reason)
    if len(value) > width * 2:
        return b""
    try:
        return binascii.unhexlify(value.rjust(width * 2, "0"))
    except (binascii.Error, ValueError):
        raise SpanRejected(reason) from None


def shared_span_id(span_id: bytes) -> bytes:
    """Deterministic id for the server half of a shared Zipkin span (retries stay idempotent)."""
    return hashlib.blake2b(span_id + b"zipkin-shared", digest_size=8).digest()


def _str_attr(span: trace_pb2.Span, key: str, value: str) -> None:
    span.attributes.append(
        common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))
    )


def micros(value: Any, reason: str) -> int:
    """A Zipkin int64 microsecond count (absent = 0): integers, integral floats within int64
    and digit strings; anything else (negative, fractional, bool, NaN, > int64) refuses."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise SpanRejected(reason)
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise SpanRejected(reason)
        value = int(value)
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= _MAX_INT64:
        raise SpanRejected(reason)
    return value


def _nanos(micros: int) -> int:
    if micros > _MAX_MICROS:
        raise SpanRejected(TIME_OUT_OF_RANGE)
    return micros * 1000


def _text(value: Any, reason: str) -> str:
    """An optional string field (absent/null = ""); other types refuse the span."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SpanRejected(reason)
    return value


def _endpoint(value: Any) -> dict[str, Any]:
    """A validated endpoint object (absent/null = {}); port must be 1..65535 when given."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpanRejected("invalid_endpoint")
    for key in ("serviceName", "ipv4", "ipv6"):
        _text(value.get(key), "invalid_endpoint")
    port = value.get("port")
    if port is not None and port != 0:
        if isinstance(port, str) and port.isascii() and port.isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
            raise SpanRejected("invalid_port")
    return value


def _tag_value(value: Any) -> str:
    # Zipkin v2 tags are strings; numbers and booleans are tolerated as their text.
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    raise SpanRejected("invalid_tags")


def _convert(
    z: dict[str, Any],
    span: trace_pb2.Span,
    service: str,
    shared_servers: set[tuple[str, bytes]],
) -> None:
    span.trace_id = _hex_id(z.get("traceId"), 16, "invalid_trace_id_encoding")
    span_id = _hex_id(z.get("id"), 8, "invalid_span_id_encoding")
    parent = _hex_id(z.get("parentId"), 8, "invalid_parent_span_id_encoding")
    kind = _text(z.get("kind"), "invalid_kind").upper()
    if kind and kind not in _KINDS:
        raise SpanRejected("invalid_kind")
    if z.get("shared") is True and kind == "SERVER" and span_id:
        if parent:
            # The parent Zipkin declared; streams falls back to it when no client half with
            # this id is in the trace (streams/zipkin_links.py).
            _str_attr(span, ZIPKIN_PARENT_ID, parent.hex())
        parent, span_id = span_id, shared_span_id(span_id)
        _str_attr(span, "zipkin.original_span_id", z["id"])
        span.attributes.append(
            common_pb2.KeyValue(key="zipkin.shared", value=common_pb2.AnyValue(bool_value=True))
        )
    elif parent and (service, parent) in shared_servers:
        # A child of the server half of a shared span, logged by that server: Zipkin attaches
        # it to the server half (same id and same local service), so it gets the server's
        # derived id as its parent instead of hanging under the caller's client span.
        parent = shared_span_id(parent)
    span.span_id = span_id
    span.parent_span_id = parent
    span.name = _text(z.get("name"), "malformed_span")
    span.kind = _KINDS.get(kind, trace_pb2.Span.SPAN_KIND_INTERNAL)
    start_us = micros(z.get("timestamp"), "invalid_timestamp")
    duration_us = micros(z.get("duration"), "invalid_duration")
    span.start_time_unix_nano = _nanos(start_us)
    span.end_time_unix_nano = _nanos(start_us + duration_us)
    tags = z.get("tags")
    if tags is None:
        tags = {}
    elif not isinstance(tags, dict):
        raise SpanRejected("invalid_tags")
    status_code = tags.get("otel.status_code")
    if isinstance(status_code, str) and status_code.upper() in _STATUS:
        span.status.code = _STATUS[status_code.upper()]
        span.status.message = _tag_value(tags.get("otel.status_description", ""))
    elif "error" in tags:
        span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
        span.status.message = _tag_value(tags["error"])
    for key, value in tags.items():
        if key in ("error", "otel.status_code", "otel.status_description"):
            continue
        _str_attr(span, key, _tag_value(value))
    remote = _endpoint(z.get("remoteEndpoint"))
    if remote.get("serviceName"):
        _str_attr(span, "peer.service", remote["serviceName"])
    address = remote.get("ipv4") or remote.get("ipv6")
    if address:
        _str_attr(span, "network.peer.address", address)
    if remote.get("port"):
        span.attributes.append(
            common_pb2.KeyValue(
                key="network.peer.port", value=common_pb2.AnyValue(int_value=int(remote["port"]))
            )
        )
    local_port = _endpoint(z.get("localEndpoint")).get("port")
    if local_port:
        # The resource is per service; the port the span was served on is the span's.
        span.attributes.append(
            common_pb2.KeyValue(
                key="network.local.port", value=common_pb2.AnyValue(int_value=int(local_port))
            )
        )
    if z.get("debug") is True:
        span.attributes.append(
            common_pb2.KeyValue(key="zipkin.debug", value=common_pb2.AnyValue(bool_value=True))
        )
    annotations = z.get("annotations")
    if annotations is None:
        annotations = []
    elif not isinstance(annotations, list):
        raise SpanRejected("invalid_annotations")
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise SpanRejected("invalid_annotations")
        event = span.events.add()
        event.time_unix_nano = _nanos(micros(annotation.get("timestamp"), "invalid_annotations"))
        event.name = _text(annotation.get("value"), "invalid_annotations")


def _scope_for(
    data: trace_pb2.TracesData, scopes: dict[str, trace_pb2.ScopeSpans], z: dict[str, Any]
) -> tuple[str, trace_pb2.ScopeSpans]:
    """This span's service and its ScopeSpans (one ResourceSpans per service), made once."""
    local = _endpoint(z.get("localEndpoint"))
    service: str = local.get("serviceName") or ""
    ss = scopes.get(service)
    if ss is None:
        service.encode()  # a lone surrogate refuses the span before a resource exists
        address = local.get("ipv4") or local.get("ipv6")
        if address:
            address.encode()
        rs = data.resource_spans.add()
        rs.resource.attributes.append(
            common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value=service))
        )
        if address:
            rs.resource.attributes.append(
                common_pb2.KeyValue(key="host.ip", value=common_pb2.AnyValue(string_value=address))
            )
        ss = scopes[service] = rs.scope_spans.add()
        ss.scope.name = SCOPE_NAME
    return service, ss


def _shared_servers(spans: list[Any]) -> set[tuple[str, bytes]]:
    """(local service, span id) of every shared server half in the request.

    Children of such a half name its (shared) id as their parent; those the same service
    logged are re-pointed at the half's derived id. Only spans of one request are seen: a
    server reports its half and its local children together (py_zipkin, zipkin-js and Brave
    flush per local root or interval), which is what makes this decidable at ingest.
    """
    found: set[tuple[str, bytes]] = set()
    for z in spans:
        if not isinstance(z, dict) or z.get("shared") is not True:
            continue
        if not isinstance(z.get("kind"), str) or z["kind"].upper() != "SERVER":
            continue
        local = z.get("localEndpoint")
        service = local.get("serviceName") if isinstance(local, dict) else None
        try:
            span_id = _hex_id(z.get("id"), 8, "invalid_span_id_encoding")
        except SpanRejected:
            continue
        if span_id:
            found.add((service if isinstance(service, str) else "", span_id))
    return found


def check_span_count(count: int) -> None:
    """BodyError(413, ``too_many_spans``) for a request over ``MAX_SPANS_PER_REQUEST``."""
    if count > MAX_SPANS_PER_REQUEST:
        raise BodyError(
            413,
            "too_many_spans",
            f"{count} spans in one request; at most {MAX_SPANS_PER_REQUEST}: send smaller batches",
        )


def convert_spans(spans: list[Any], rejected: Counter[str] | None = None) -> Decoded:
    """Zipkin v2 span objects (from JSON, proto3 or translated v1) -> OTLP, span by span.

    ``rejected`` carries spans already refused before conversion (v1 translation). Raises
    BodyError(400) when no span was usable because all were malformed. Each decoder bounds
    its input with ``check_span_count`` first.
    """
    data = trace_pb2.TracesData()
    scopes: dict[str, trace_pb2.ScopeSpans] = {}
    rejected = Counter(rejected or {})
    shared_servers = _shared_servers(spans)
    for z in spans:
        added: trace_pb2.ScopeSpans | None = None
        try:
            if not isinstance(z, dict):
                raise SpanRejected("malformed_span")
            service, ss = _scope_for(data, scopes, z)
            span = ss.spans.add()
            added = ss
            _convert(z, span, service, shared_servers)
        except SpanRejected as exc:
            rejected[exc.reason] += 1
        except UnicodeError:  # a lone surrogate: protobuf strings must be valid UTF-8
            rejected["invalid_utf8"] += 1
        else:
            continue
        if added is not None:
            del added.spans[-1]  # the half-converted span
    return finish(data, rejected, REQUEST_REASON)


def decode_request(body: bytes) -> Decoded:
    """Parse a Zipkin v2 JSON span list into OTLP, refusing malformed spans one by one.

    Raises BodyError(400) for a body that is not a JSON array (or too deep), that is Zipkin v1
    JSON by its shape (``zipkin_wrong_version``), and when no span of a non-empty array was
    usable because all were malformed.
    """
    doc = parse_json_body(body)
    if not isinstance(doc, list):
        raise BodyError(400, REQUEST_REASON, "Zipkin v2 body must be a JSON array of spans")
    require_version(doc, 2)
    check_span_count(len(doc))
    return convert_spans(doc)


def decode_spans(body: bytes) -> trace_pb2.TracesData:
    """The usable spans of a Zipkin v2 request (refused spans dropped); see decode_request."""
    return decode_request(body).data

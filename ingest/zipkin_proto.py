"""Zipkin v2 protobuf (``ListOfSpans`` of ``zipkin.proto``, proto3) -> Zipkin v2 span objects.

``POST /api/v2/spans`` with ``Content-Type: application/x-protobuf`` is what py_zipkin's
``Encoding.V2_PROTO3`` and Brave's ``PROTO3`` encoder send. The message types are built at
import from a descriptor written here from the published field numbers (no generated code, no
build step). The outer ``ListOfSpans`` is read with its spans left encoded, so each span is
decoded on its own: a span that does not decode (invalid UTF-8, truncated inside) is refused
alone with a reason, while a body whose framing is broken is a 400. The decoded spans become
the same dicts the JSON path produces, so both share one conversion to OTLP
(``zipkin.convert_spans``).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from ingest.decoded import Decoded
from ingest.errors import BodyError
from ingest.zipkin import SpanRejected, check_span_count, convert_spans

REQUEST_REASON = "invalid_zipkin_proto"
_KIND_NAMES = {1: "CLIENT", 2: "SERVER", 3: "PRODUCER", 4: "CONSUMER"}
_F = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    """The three messages of zipkin.proto a span needs (package ``zipkin.proto3``)."""
    f = descriptor_pb2.FileDescriptorProto(
        name="tracehouse/zipkin_v2.proto", package="zipkin.proto3", syntax="proto3"
    )

    def add(msg: descriptor_pb2.DescriptorProto, name: str, number: int, ftype: int,
            label: int = _F.LABEL_OPTIONAL, type_name: str = "") -> None:  # fmt: skip
        field = msg.field.add(name=name, number=number, type=ftype, label=label)
        if type_name:
            field.type_name = type_name

    endpoint = f.message_type.add(name="Endpoint")
    add(endpoint, "service_name", 1, _F.TYPE_STRING)
    add(endpoint, "ipv4", 2, _F.TYPE_BYTES)
    add(endpoint, "ipv6", 3, _F.TYPE_BYTES)
    add(endpoint, "port", 4, _F.TYPE_INT32)
    annotation = f.message_type.add(name="Annotation")
    add(annotation, "timestamp", 1, _F.TYPE_FIXED64)
    add(annotation, "value", 2, _F.TYPE_STRING)
    span = f.message_type.add(name="Span")
    # Kind is an open proto3 enum on the wire: read as int32 so unknown values stay visible.
    for name, number, ftype in (
        ("trace_id", 1, _F.TYPE_BYTES),
        ("parent_id", 2, _F.TYPE_BYTES),
        ("id", 3, _F.TYPE_BYTES),
        ("kind", 4, _F.TYPE_INT32),
        ("name", 5, _F.TYPE_STRING),
        ("timestamp", 6, _F.TYPE_FIXED64),
        ("duration", 7, _F.TYPE_UINT64),
        ("debug", 12, _F.TYPE_BOOL),
        ("shared", 13, _F.TYPE_BOOL),
    ):
        add(span, name, number, ftype)
    add(span, "local_endpoint", 8, _F.TYPE_MESSAGE, type_name=".zipkin.proto3.Endpoint")
    add(span, "remote_endpoint", 9, _F.TYPE_MESSAGE, type_name=".zipkin.proto3.Endpoint")
    add(span, "annotations", 10, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".zipkin.proto3.Annotation")
    tags = span.nested_type.add(name="TagsEntry")
    tags.options.map_entry = True
    add(tags, "key", 1, _F.TYPE_STRING)
    add(tags, "value", 2, _F.TYPE_STRING)
    add(span, "tags", 11, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".zipkin.proto3.Span.TagsEntry")
    # ListOfSpans with its spans left encoded, to decode (and refuse) them one by one.
    raw_list = f.message_type.add(name="ListOfSpansRaw")
    add(raw_list, "spans", 1, _F.TYPE_BYTES, _F.LABEL_REPEATED)
    return f


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())
SpanMessage = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("zipkin.proto3.Span"))
SpanList = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("zipkin.proto3.ListOfSpansRaw")
)


def span_chunks(body: bytes) -> list[bytes]:
    """The encoded spans (field 1) of a ``ListOfSpans``, undecoded; other fields are skipped as
    proto3 requires. Raises BodyError(400) when the framing is broken (truncated, bad wire
    type). Read as ``repeated bytes`` (the same wire format as embedded messages), so the
    framing is walked by protobuf's C parser, not a Python loop over hostile input."""
    try:
        return list(SpanList.FromString(body).spans)
    except (DecodeError, RecursionError) as exc:
        raise BodyError(400, REQUEST_REASON, f"body is not a Zipkin ListOfSpans: {exc}") from None


def _id(raw: bytes, widths: tuple[int, ...], reason: str) -> str | None:
    if not raw:
        return None
    if len(raw) not in widths:
        raise SpanRejected(reason)
    return raw.hex()


def _endpoint(msg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if msg.service_name:
        out["serviceName"] = msg.service_name
    for field, width, version in (("ipv4", 4, 4), ("ipv6", 16, 6)):
        raw = getattr(msg, field)
        if raw:
            if len(raw) != width:
                raise SpanRejected("invalid_endpoint")
            address = ipaddress.IPv4Address(raw) if version == 4 else ipaddress.IPv6Address(raw)
            out[field] = str(address)
    if msg.port:
        out["port"] = msg.port
    return out


def to_v2(chunk: bytes) -> dict[str, Any]:
    """One encoded ``Span`` as a Zipkin v2 JSON-shaped dict; SpanRejected when it is bad."""
    try:
        m: Any = SpanMessage.FromString(chunk)
    except (DecodeError, RecursionError):
        raise SpanRejected("malformed_span") from None
    z: dict[str, Any] = {
        "traceId": _id(m.trace_id, (8, 16), "invalid_trace_id_length"),
        "id": _id(m.id, (8,), "invalid_span_id_length"),
        "parentId": _id(m.parent_id, (8,), "invalid_parent_span_id_length"),
        "name": m.name,
    }
    if m.kind:
        if m.kind not in _KIND_NAMES:
            raise SpanRejected("invalid_kind")
        z["kind"] = _KIND_NAMES[m.kind]
    if m.timestamp:
        z["timestamp"] = m.timestamp
    if m.duration:
        z["duration"] = m.duration
    if m.HasField("local_endpoint"):
        z["localEndpoint"] = _endpoint(m.local_endpoint)
    if m.HasField("remote_endpoint"):
        z["remoteEndpoint"] = _endpoint(m.remote_endpoint)
    if m.annotations:
        z["annotations"] = [{"timestamp": a.timestamp, "value": a.value} for a in m.annotations]
    if m.tags:
        z["tags"] = dict(m.tags)
    if m.shared:
        z["shared"] = True
    if m.debug:
        z["debug"] = True
    return z


def decode_request(body: bytes) -> Decoded:
    """A ``ListOfSpans`` body -> OTLP, spans refused one by one; BodyError(400) when the
    framing is broken or every span was malformed. An empty body is an empty list."""
    rejected: Counter[str] = Counter()
    spans: list[Any] = []
    chunks = span_chunks(body)
    check_span_count(len(chunks))
    for chunk in chunks:
        try:
            spans.append(to_v2(chunk))
        except SpanRejected as exc:
            rejected[exc.reason] += 1
    return convert_spans(spans, rejected)

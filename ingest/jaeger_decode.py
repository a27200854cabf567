"""Jaeger request bodies -> ``Decoded`` OTLP, one function per wire format (pure).

Every receiver (HTTP, UDP, gRPC) calls one of these, so they refuse the same things the same
way: a body that is not the expected Thrift / protobuf is a ``BodyError`` (400-class, reason
``invalid_thrift`` / ``undecodable``, the protocol detail in the message); spans that decoded
but cannot be stored as sent are counted by reason; a request whose every span was refused is
a ``BodyError`` too (``decoded.finish``), so nothing is ever silently accepted.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from ingest.decoded import Decoded, finish
from ingest.errors import BodyError
from ingest.jaeger_otlp import batches_to_otlp
from ingest.jaeger_proto import PostSpansRequest, request_to_batch
from ingest.jaeger_thrift import read_batch, read_emit_batch
from ingest.thrift_wire import ThriftError

INVALID_THRIFT = "invalid_thrift"
INVALID_JAEGER = "invalid_jaeger"
# A protobuf Span with a 16-byte trace id and an 8-byte span id, framed in its Batch: the
# smallest a storable one gets. More spans than that allows are refused before we build any
# objects for them (a body of empty spans would otherwise cost memory and CPU per 2 bytes).
MIN_PROTO_SPAN_BYTES = 2 + (2 + 16) + (2 + 8)


def _thrift_error(exc: ThriftError) -> BodyError:
    return BodyError(400, INVALID_THRIFT, f"not a Jaeger Thrift batch ({exc.reason}): {exc}")


def decode_thrift_batch(body: bytes) -> Decoded:
    """``POST /api/traces`` body: one ``jaeger.Batch`` in the Thrift binary protocol."""
    try:
        batch = read_batch(body, compact=False)
    except ThriftError as exc:
        raise _thrift_error(exc) from None
    decoded = batches_to_otlp([batch])
    return finish(decoded.data, decoded.rejected, INVALID_JAEGER)


def decode_agent_packet(packet: bytes, compact: bool) -> Decoded:
    """A UDP agent packet: ``Agent.emitBatch`` in the compact (6831) or binary (6832) protocol."""
    try:
        batch = read_emit_batch(packet, compact)
    except ThriftError as exc:
        raise _thrift_error(exc) from None
    decoded = batches_to_otlp([batch])
    return finish(decoded.data, decoded.rejected, INVALID_JAEGER)


def decode_post_spans(raw: bytes) -> Decoded:
    """gRPC ``CollectorService/PostSpans`` request bytes."""
    try:
        request = PostSpansRequest.FromString(raw)
    except DecodeError as exc:
        raise BodyError(
            400, "undecodable", f"not a jaeger.api_v2.PostSpansRequest: {exc}"
        ) from None
    spans = len(request.batch.spans)
    if spans * MIN_PROTO_SPAN_BYTES > len(raw):
        raise BodyError(
            400,
            INVALID_JAEGER,
            f"{spans} spans cannot be valid in {len(raw)} bytes (a span with its ids takes at"
            f" least {MIN_PROTO_SPAN_BYTES})",
        )
    decoded = batches_to_otlp([request_to_batch(request)])
    return finish(decoded.data, decoded.rejected, INVALID_JAEGER)

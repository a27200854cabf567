"""Raw message -> ``span_batch`` payloads without sampling, and the batch encoder.

The worker itself runs :mod:`streams.partition_processor` (RED, graph, tail sampling);
:func:`encode_span_batches` is how it cuts sampled span views into ``span_batch`` v3 (packed
columns, the only span wire format) messages for ``spans.sampled``, and
:func:`process_raw_message` remains the no-sampling conversion used by codec tests and tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from opentelemetry.proto.trace.v1 import trace_pb2

from streams.packed_batch import encode_views
from streams.span_views import SpanView, span_views, wire_size

# Upper bound of spans per spans.sampled message (the sink's batching likes many small spans per
# message; the byte bound below is what keeps a message under the producer's limit).
MAX_SPANS_PER_MESSAGE = 5000
# What a span adds to a v3 message beyond its protobuf size (ids as hex, resource attributes
# repeated per span, offsets): a first guess for cutting; the encoded size is checked anyway.
_SPAN_OVERHEAD_BYTES = 256


@dataclass
class MessageResult:
    spans_in: int = 0
    sampled_payloads: list[bytes] = field(default_factory=list)
    malformed: str | None = None


def decode_traces(payload: bytes) -> trace_pb2.TracesData:
    return trace_pb2.TracesData.FromString(payload)


@dataclass
class EncodedBatches:
    """``span_batch`` messages, each within the byte limit, and the spans that fit none."""

    payloads: list[bytes] = field(default_factory=list)
    # (reason, views): "span_too_large" (one span's message exceeds the limit) or
    # "encode_error" (a span the encoder cannot write).
    refused: list[tuple[str, list[SpanView]]] = field(default_factory=list)


def _estimate(view: SpanView) -> int:
    return wire_size(view) + _SPAN_OVERHEAD_BYTES


def encode_span_batches(views: list[SpanView], max_bytes: int = 1 << 62) -> EncodedBatches:
    """Span views (see :mod:`streams.span_views`) -> framed ``span_batch`` messages of at most
    ``max_bytes`` each.

    Messages are cut by estimated size first, then any message still over the limit is halved
    until it fits, so a trace of many large spans never makes a message the producer refuses
    (which would stop the worker). A span that cannot be encoded, or whose message alone is
    over the limit, is isolated by halving and refused with its reason instead of taking the
    other spans down with it.
    """
    out = EncodedBatches()

    def encode(chunk: list[SpanView]) -> None:
        try:
            data = encode_views(chunk)
        except Exception:
            # Poison isolation: whatever one span makes the encoder raise (a value out of a
            # column's range, text that is not encodable) must not cost the others.
            if len(chunk) == 1:
                out.refused.append(("encode_error", chunk))
                return
            data = None
        if data is not None and len(data) <= max_bytes:
            out.payloads.append(data)
            return
        if len(chunk) == 1:
            out.refused.append(("span_too_large", chunk))
            return
        mid = len(chunk) // 2
        encode(chunk[:mid])
        encode(chunk[mid:])

    chunk: list[SpanView] = []
    size = 0
    for view in views:
        estimate = _estimate(view) if max_bytes < 1 << 62 else 0
        if chunk and (len(chunk) >= MAX_SPANS_PER_MESSAGE or size + estimate > max_bytes):
            encode(chunk)
            chunk, size = [], 0
        chunk.append(view)
        size += estimate
    if chunk:
        encode(chunk)
    return out


def process_raw_message(payload: bytes) -> MessageResult:
    try:
        data = decode_traces(payload)
    except DecodeError as exc:
        return MessageResult(malformed=f"undecodable OTLP protobuf: {exc}")
    views = span_views(data)
    return MessageResult(spans_in=len(views), sampled_payloads=encode_span_batches(views).payloads)

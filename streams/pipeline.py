"""Raw message -> ``span_batch`` payloads without sampling, and the batch encoders.

The worker itself runs :mod:`streams.partition_processor` (RED, graph, tail sampling);
:func:`encode_span_batches` is how it cuts sampled span views into ``span_batch`` v3 (packed
columns) messages for ``spans.sampled``, and :func:`process_raw_message` remains the
no-sampling conversion used by codec tests and tools. ``encode_span_batches(views, version=2)``
(typed columns) and :func:`encode_span_batches_v1` (rows) write the older formats, kept for
upgrade tests and the ``bench/streams.py --wire`` comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.trace.v1 import trace_pb2

from schemas import avro_codec
from streams.columnar_batch import columnar_batch
from streams.packed_batch import pack_columns
from streams.span_views import span_views

SPAN_BATCH = "span_batch"
# Upper bound of spans per spans.sampled message: keeps messages well under broker limits.
MAX_SPANS_PER_MESSAGE = 5000


@dataclass
class MessageResult:
    spans_in: int = 0
    sampled_payloads: list[bytes] = field(default_factory=list)
    malformed: str | None = None


def decode_traces(payload: bytes) -> trace_pb2.TracesData:
    return trace_pb2.TracesData.FromString(payload)


# What encode_span_batches writes: v3. Sinks must be deployed first (ADR 0003).
SPAN_BATCH_VERSION = 3


def encode_span_batches(
    views: list[dict[str, Any]], version: int = SPAN_BATCH_VERSION
) -> list[bytes]:
    """Span views (see :mod:`streams.span_views`) -> framed ``span_batch`` v3 (or v2) messages."""
    if version not in (2, 3):
        raise ValueError(f"span views encode as span_batch v2 or v3, not v{version}")
    out = []
    for i in range(0, len(views), MAX_SPANS_PER_MESSAGE):
        columns = columnar_batch(views[i : i + MAX_SPANS_PER_MESSAGE])
        record = pack_columns(columns) if version == 3 else columns
        out.append(avro_codec.encode(SPAN_BATCH, record, version))
    return out


def encode_span_batches_v1(records: list[dict[str, Any]]) -> list[bytes]:
    """v1 ``Span`` records (see :mod:`streams.span_records`) -> framed v1 messages."""
    return [
        avro_codec.encode(SPAN_BATCH, {"spans": records[i : i + MAX_SPANS_PER_MESSAGE]}, 1)
        for i in range(0, len(records), MAX_SPANS_PER_MESSAGE)
    ]


def process_raw_message(payload: bytes) -> MessageResult:
    try:
        data = decode_traces(payload)
    except DecodeError as exc:
        return MessageResult(malformed=f"undecodable OTLP protobuf: {exc}")
    views = span_views(data)
    return MessageResult(spans_in=len(views), sampled_payloads=encode_span_batches(views))

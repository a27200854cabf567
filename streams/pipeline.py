"""Raw message -> ``span_batch`` payloads without sampling, and the batch encoder.

The worker itself runs :mod:`streams.partition_processor` (RED, graph, tail sampling);
:func:`encode_span_batches` is how it cuts sampled spans into ``spans.sampled`` messages, and
:func:`process_raw_message` remains the no-sampling conversion used by codec tests and tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.trace.v1 import trace_pb2

from schemas import avro_codec
from streams.span_records import span_records

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


def encode_span_batches(records: list[dict[str, Any]]) -> list[bytes]:
    return [
        avro_codec.encode(SPAN_BATCH, {"spans": records[i : i + MAX_SPANS_PER_MESSAGE]})
        for i in range(0, len(records), MAX_SPANS_PER_MESSAGE)
    ]


def process_raw_message(payload: bytes) -> MessageResult:
    try:
        data = decode_traces(payload)
    except DecodeError as exc:
        return MessageResult(malformed=f"undecodable OTLP protobuf: {exc}")
    records = span_records(data)
    return MessageResult(spans_in=len(records), sampled_payloads=encode_span_batches(records))

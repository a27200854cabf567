"""What the streams worker writes to the raw DLQ for spans it refuses one by one.

A whole malformed message goes to the DLQ as it came. A single refused span goes as a small
OTLP ``TracesData`` of just the refused spans (so an operator can read, fix and re-publish
them), or, when the span itself is what did not fit in a message, as a JSON summary of its ids
and size. Headers say why and where it came from.
"""

from __future__ import annotations

import json

from streams.partition_processor import DeadLetter
from streams.span_views import SpanView, wire_size


def dead_letter_headers(letter: DeadLetter, source: str) -> dict[str, bytes]:
    return {
        "reason": letter.reason.encode(),
        "spans": str(letter.spans).encode(),
        "source": source.encode(),
        "stage": b"streams.validate",
    }


def refused_span_summary(view: SpanView) -> bytes:
    return json.dumps(
        {
            "trace_id": view.trace_id.hex(),
            "span_id": view.span_id.hex(),
            "service_name": view.service_name,
            "name": view.name[:256],
            "protobuf_bytes": wire_size(view),
        }
    ).encode()

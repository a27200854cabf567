"""What storage can hold: the limits every stage checks spans against.

One definition, imported by ingest (to reject a span with a reason before Kafka) and by streams
(to reject spans that high-volume producers wrote straight to the raw topic), so both stages
refuse exactly the same spans. Values come from the ClickHouse column types of ``otel_traces``
and from the Avro/Arrow encodings between the stages:

- ``Timestamp``/``Events.Timestamp`` are ``DateTime64(9)``: nanoseconds since the epoch in an
  Int64, so the largest time is 2^63 - 1 ns (2262-04-11T23:47:16.854775807Z). OTLP carries
  times as uint64, so values from 2^63 up are legal on the wire and must be refused here;
  otherwise they overflow every int64 on the way (packed columns, RED sums, Arrow casts).
- ``Duration`` is UInt64 and computed as end - start; a span ending before it starts is kept
  (clock skew) and stored with duration 0.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.proto.trace.v1 import trace_pb2

# DateTime64(9) is an Int64 of nanoseconds: its largest value is the largest int64.
MAX_TIME_UNIX_NANO = 2**63 - 1
# Reason labels (stable: they are Prometheus label values and pipeline_counters reasons).
TIME_OUT_OF_RANGE = "time_out_of_range"
# Ids of all zeros are invalid in OTLP (a parent of all zeros means "no parent").
ZERO_TRACE_ID = bytes(16)
ZERO_SPAN_ID = bytes(8)


def time_in_range(t: int) -> bool:
    """Whether ``t`` (ns since the epoch) fits ``DateTime64(9)``; 0 means "unset" and fits."""
    return 0 <= t <= MAX_TIME_UNIX_NANO


def times_problem(start: int, end: int, event_times: Iterable[int] = ()) -> str | None:
    """The reason a span's times cannot be stored, or None when they all fit."""
    if not (time_in_range(start) and time_in_range(end)):
        return TIME_OUT_OF_RANGE
    for t in event_times:
        if not time_in_range(t):
            return TIME_OUT_OF_RANGE
    return None


def span_problem(span: trace_pb2.Span) -> str | None:
    """Why a span cannot be stored, or None: ids of the wrong length or all zeros, times
    outside ``DateTime64(9)``. The one definition of a storable span; callers on a hot path
    keep a cheap inline check of the common valid case and call this for the reason."""
    if len(span.trace_id) != 16:
        return "invalid_trace_id_length"
    if span.trace_id == ZERO_TRACE_ID:
        return "zero_trace_id"
    if len(span.span_id) != 8:
        return "invalid_span_id_length"
    if span.span_id == ZERO_SPAN_ID:
        return "zero_span_id"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return "invalid_parent_span_id_length"
    if span.events:
        return times_problem(
            span.start_time_unix_nano,
            span.end_time_unix_nano,
            (e.time_unix_nano for e in span.events),
        )
    return times_problem(span.start_time_unix_nano, span.end_time_unix_nano)

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

# DateTime64(9) is an Int64 of nanoseconds: its largest value is the largest int64.
MAX_TIME_UNIX_NANO = 2**63 - 1
# Reason labels (stable: they are Prometheus label values and pipeline_counters reasons).
TIME_OUT_OF_RANGE = "time_out_of_range"


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

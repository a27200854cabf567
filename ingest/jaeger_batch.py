"""Jaeger's span model as both of its wire formats carry it (Thrift ``jaeger.Batch`` and
protobuf ``jaeger.api_v2.Batch``), decoded but not yet translated to OTLP.

The two wire decoders (``jaeger_thrift``, ``jaeger_proto``) fill these plain objects and the one
translator (``jaeger_otlp``) maps them to OTLP, so the mapping rules exist once. Ids are already
raw big-endian bytes and times nanoseconds since the epoch; a decoder that found something it
cannot represent faithfully (a field of the wrong type, a time storage cannot hold, a tag of an
unknown type) records ``problem`` — the span's rejection reason — instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Tag value kinds, named after Jaeger's TagType / ValueType.
STRING, DOUBLE, BOOL, LONG, BINARY = "string", "double", "bool", "long", "binary"

TagValue = str | float | bool | int | bytes


@dataclass(slots=True)
class Tag:
    key: str
    kind: str
    value: TagValue


CHILD_OF, FOLLOWS_FROM = 0, 1


@dataclass(slots=True)
class SpanRef:
    ref_type: int
    trace_id: bytes
    span_id: bytes


@dataclass(slots=True)
class Log:
    time_unix_nano: int
    fields: list[Tag]


@dataclass(slots=True)
class Process:
    service_name: str = ""
    tags: list[Tag] = field(default_factory=list)

    def identity(self) -> tuple[object, ...]:
        """Equal for processes that describe the same resource (grouping key)."""
        return (self.service_name, tuple((t.key, t.kind, t.value) for t in self.tags))


@dataclass(slots=True)
class Span:
    trace_id: bytes = b""
    span_id: bytes = b""
    # Thrift's explicit parentSpanId (b"" when 0 or absent; proto has only references).
    parent_span_id: bytes = b""
    operation_name: str = ""
    references: list[SpanRef] = field(default_factory=list)
    flags: int = 0
    start_unix_nano: int = 0
    end_unix_nano: int = 0
    tags: list[Tag] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    # proto: a span may carry its own process, overriding the batch's.
    process: Process | None = None
    # Rejection reason when the span cannot be stored as sent; None = fine.
    problem: str | None = None


@dataclass(slots=True)
class Batch:
    process: Process | None
    spans: list[Span]
    # Set when the batch's process itself cannot be used: every span is rejected with it.
    process_problem: str | None = None

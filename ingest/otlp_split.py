"""Split an OTLP export request into one ``TracesData`` per Kafka partition.

A faust worker handles ~14k messages/s (docs/architecture.md, "Measured facts"), so ingest must
never send one message per span: each request becomes at most one message per partition, keeping
resource and scope grouping intact so the message is still valid OTLP that any Collector can
read. Invalid spans (ids of the wrong length or all zero, times storage cannot hold) are removed
and counted by reason, so one bad span never costs its neighbours; a parent span id of eight
zero bytes (some SDKs send it for roots) is cleared to mean "root", as the data model says."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from opentelemetry.proto.trace.v1 import trace_pb2

from core.partitioning import partition_for_key
from schemas.span_limits import MAX_TIME_UNIX_NANO, ZERO_SPAN_ID, ZERO_TRACE_ID, span_problem


@dataclass
class SplitResult:
    """Per-partition payloads plus the accounting of what was accepted and rejected."""

    by_partition: dict[int, trace_pb2.TracesData] = field(default_factory=dict)
    # Trace id (16 raw bytes) of the first span in each partition's message: the Kafka key.
    keys: dict[int, bytes] = field(default_factory=dict)
    # Spans in each partition's message.
    counts: Counter[int] = field(default_factory=Counter)
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def _event_time_over(span: trace_pb2.Span, max_time: int) -> bool:
    return any(event.time_unix_nano > max_time for event in span.events)


PartitionOf = Callable[[bytes, int], int]


def split_by_partition(
    data: trace_pb2.TracesData, partitions: int, partition_of: PartitionOf = partition_for_key
) -> SplitResult:
    """Group valid spans by the partition of their trace id, preserving resource/scope nesting.

    ``partition_of`` maps (trace id, partition count) to a partition; it must be the mapping of
    any producer that writes to the same topic directly (see core/partitioning.py).
    """
    result = SplitResult()
    out = result.by_partition
    counts = result.counts
    max_time = MAX_TIME_UNIX_NANO
    for rs in data.resource_spans:
        # partition -> this resource's clone in that partition's message; created lazily.
        resources: dict[int, trace_pb2.ResourceSpans] = {}
        for ss in rs.scope_spans:
            scopes: dict[int, trace_pb2.ScopeSpans] = {}
            for span in ss.spans:
                tid = span.trace_id
                sid = span.span_id
                parent = span.parent_span_id
                # Fast path for the valid common case (a few comparisons; event times only
                # when there are events); span_problem names the reason otherwise.
                if not (
                    len(tid) == 16
                    and len(sid) == 8
                    and tid != ZERO_TRACE_ID
                    and sid != ZERO_SPAN_ID
                    and len(parent) in (0, 8)
                    and span.start_time_unix_nano <= max_time
                    and span.end_time_unix_nano <= max_time
                ) or (span.events and _event_time_over(span, max_time)):
                    result.rejected[span_problem(span) or "invalid"] += 1
                    continue
                if parent == ZERO_SPAN_ID:
                    span.parent_span_id = b""  # all-zero parent = root, not a stored id
                p = partition_of(tid, partitions)
                target = scopes.get(p)
                if target is None:
                    new_rs = resources.get(p)
                    if new_rs is None:
                        td = out.get(p)
                        if td is None:
                            td = out[p] = trace_pb2.TracesData()
                            result.keys[p] = span.trace_id
                        new_rs = resources[p] = td.resource_spans.add()
                        new_rs.resource.CopyFrom(rs.resource)
                        new_rs.schema_url = rs.schema_url
                    target = scopes[p] = new_rs.scope_spans.add()
                    target.scope.CopyFrom(ss.scope)
                    target.schema_url = ss.schema_url
                target.spans.append(span)
                counts[p] += 1
    result.accepted = sum(counts.values())
    return result


@dataclass
class Chunk:
    """One Kafka message: serialized ``TracesData``, its span count and first trace id."""

    payload: bytes
    spans: int
    first_trace_id: bytes


def bounded_chunks(
    data: trace_pb2.TracesData, max_bytes: int, spans: int | None = None
) -> tuple[list[Chunk], list[trace_pb2.Span]]:
    """Serialize ``data`` as messages of at most ``max_bytes``, halving by spans when needed.

    A message over the broker's limit would be rejected by Kafka and lose every span in it, so
    big partitions are cut in halves (resource and scope repeated in each) until each fits.
    A single span that alone exceeds the limit cannot be stored; it is returned separately so
    the caller rejects it by reason instead of failing its neighbours.
    """
    payload = data.SerializeToString()
    if len(payload) <= max_bytes:
        first = b""
        for rs in data.resource_spans:
            for ss in rs.scope_spans:
                if ss.spans:
                    first = ss.spans[0].trace_id
                    break
            if first:
                break
        count = (
            spans
            if spans is not None
            else sum(len(ss.spans) for rs in data.resource_spans for ss in rs.scope_spans)
        )
        return [Chunk(payload, count, first)], []
    entries = _flatten(data)
    chunks: list[Chunk] = []
    too_large: list[trace_pb2.Span] = []
    _halve(data, entries, max_bytes, chunks, too_large)
    return chunks, too_large


_Entry = tuple[int, int, trace_pb2.Span]


def _flatten(data: trace_pb2.TracesData) -> list[_Entry]:
    return [
        (r, s, span)
        for r, rs in enumerate(data.resource_spans)
        for s, ss in enumerate(rs.scope_spans)
        for span in ss.spans
    ]


def _subset(data: trace_pb2.TracesData, entries: list[_Entry]) -> trace_pb2.TracesData:
    out = trace_pb2.TracesData()
    resources: dict[int, trace_pb2.ResourceSpans] = {}
    scopes: dict[tuple[int, int], trace_pb2.ScopeSpans] = {}
    for r, s, span in entries:
        target = scopes.get((r, s))
        if target is None:
            new_rs = resources.get(r)
            if new_rs is None:
                src_rs = data.resource_spans[r]
                new_rs = resources[r] = out.resource_spans.add()
                new_rs.resource.CopyFrom(src_rs.resource)
                new_rs.schema_url = src_rs.schema_url
            src_ss = data.resource_spans[r].scope_spans[s]
            target = scopes[(r, s)] = new_rs.scope_spans.add()
            target.scope.CopyFrom(src_ss.scope)
            target.schema_url = src_ss.schema_url
        target.spans.append(span)
    return out


def _halve(
    data: trace_pb2.TracesData,
    entries: list[_Entry],
    max_bytes: int,
    chunks: list[Chunk],
    too_large: list[trace_pb2.Span],
) -> None:
    payload = _subset(data, entries).SerializeToString()
    if len(payload) <= max_bytes:
        chunks.append(Chunk(payload, len(entries), entries[0][2].trace_id))
        return
    if len(entries) == 1:
        too_large.append(entries[0][2])
        return
    mid = len(entries) // 2
    _halve(data, entries[:mid], max_bytes, chunks, too_large)
    _halve(data, entries[mid:], max_bytes, chunks, too_large)

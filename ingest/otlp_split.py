"""Split an OTLP export request into one ``TracesData`` per Kafka partition.

A faust worker handles ~14k messages/s (docs/architecture.md, "Measured facts"), so ingest must
never send one message per span: each request becomes at most one message per partition, keeping
resource and scope grouping intact so the message is still valid OTLP that any Collector can
read. Invalid spans (ids of the wrong length or all zero, times storage cannot hold) are removed
and counted by reason, so one bad span never costs its neighbours; a parent span id of eight
zero bytes (some SDKs send it for roots) is cleared to mean "root", as the data model says."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from opentelemetry.proto.trace.v1 import trace_pb2

from core.partitioning import partition_for_key
from schemas.span_limits import MAX_TIME_UNIX_NANO, ZERO_SPAN_ID, ZERO_TRACE_ID, span_problem

log = logging.getLogger(__name__)


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


@dataclass
class PartitionChunks:
    """A request cut into Kafka messages: (partition, chunk) in publishing order, spans in
    each partition, and the spans refused by reason (invalid, or alone over the limit)."""

    chunks: list[tuple[int, Chunk]] = field(default_factory=list)
    counts: Counter[int] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    # Partitions whose spans needed more than one message.
    split_partitions: int = 0


def _load_compiled() -> ModuleType | None:
    try:
        from ingest import _otlp_split  # type: ignore[attr-defined]
    except ImportError as exc:
        log.warning("ingest: compiled partition split not built (%s); protobuf split only", exc)
        return None
    return _otlp_split if getattr(_otlp_split, "ABI", None) == 1 else None


_COMPILED = _load_compiled()
COMPILED = _COMPILED is not None


def partition_chunks(
    data: trace_pb2.TracesData,
    partitions: int,
    max_bytes: int,
    partition_of: PartitionOf = partition_for_key,
    raw: bytes | None = None,
) -> PartitionChunks:
    """Every storable span of ``data`` in messages of at most ``max_bytes`` per partition.

    The compiled split (``ingest/_otlp_split.pyx``) cuts the serialized request by copying span
    bytes; it gives the same messages as :func:`split_by_partition` + :func:`bounded_chunks`,
    and leaves every request with a refused span or a message over the limit to them. ``raw``
    (bytes ``data`` was parsed from, unchanged since) is cut instead of serializing ``data``:
    the split copies each span's bytes as the client laid them out, which the protobuf parse of
    every message reads as the same spans (``tests/unit/test_otlp_split_bytes.py``).
    """
    if _COMPILED is not None:
        payload = raw if raw is not None else data.SerializeToString()
        try:
            parts = _COMPILED.split(payload, partitions, partition_of, max_bytes)
        except _COMPILED.Fallback:
            parts = None
        if parts is not None:
            out = PartitionChunks()
            for p, payload, spans, first in parts:
                out.chunks.append((p, Chunk(payload, spans, first)))
                out.counts[p] += spans
            return out
    split = split_by_partition(data, partitions, partition_of)
    out = PartitionChunks(counts=split.counts, rejected=Counter(split.rejected))
    for p, td in split.by_partition.items():
        chunks, too_large = bounded_chunks(td, max_bytes, split.counts[p])
        if too_large:
            out.rejected["span_too_large"] += len(too_large)
            out.counts[p] -= len(too_large)
        if len(chunks) > 1:
            out.split_partitions += 1
        out.chunks.extend((p, chunk) for chunk in chunks)
    return out

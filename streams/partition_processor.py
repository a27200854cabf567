"""Everything the streams worker does for one raw partition, free of faust and Kafka.

One instance per owned partition: it decodes each raw message once, feeds RED and the service
graph with all spans, buffers spans per trace until the sampling decision, and on each tick
returns what to publish. Offsets become committable only after that output is delivered (see
:mod:`streams.offset_tracker`), which is what makes a killed worker's partitions resumable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from streams import counters as c
from streams.counters import CounterSet
from streams.kept_packer import KeptPacker
from streams.offset_tracker import OffsetTracker
from streams.otlp_scan import scan_views
from streams.packed_batch import OPEN_BATCHES
from streams.policies import Policy, TraceView, evaluate_all, keeps_every_trace
from streams.raw_encodings import RawDecodeError, RawEncodings
from streams.red_metrics import RedAggregator
from streams.sampling_config import SamplingConfig
from streams.service_graph import ServiceGraph
from streams.span_fingerprint import same_content, span_key, split_keys
from streams.span_views import Rejected, SpanView, rejected_payload, span_views
from streams.trace_buffer import BufferedTrace, DecisionCache, TraceBuffer
from streams.zipkin_links import needs_whole_trace, relink_orphaned_shared_servers


@dataclass(frozen=True)
class AggregationOptions:
    red_window_seconds: float = 10.0
    red_max_series: int = 5000
    graph_wait_seconds: float = 10.0
    graph_max_items: int = 100_000


# (counter name, reason) -> value, as in CounterSet.drain().
Counts = dict[tuple[str, str], int]


@dataclass(frozen=True)
class CounterRecord:
    """Counter deltas of one decisions-log record with the identity they are published under
    (see :mod:`streams.state_log`)."""

    epoch: int
    seq: int
    time_unix_nano: int
    counters: Counts


@dataclass
class RestoredState:
    """What a previous owner of the partition persisted (see :mod:`streams.state_log`)."""

    decisions: list[tuple[str, bool, int]] = field(default_factory=list)
    aggregates_through: int = -1
    # Keys of spans already sent, per sampled trace (see streams.span_fingerprint).
    sent_keys: dict[str, bytes] = field(default_factory=dict)
    # The offset of this owner's barrier in the decisions log: its counter epoch.
    epoch: int = 0
    # The counters of the previous owner's last record, re-published under their identity
    # in case that owner died before publishing them (streams.state_log.CounterRecord).
    last_counters: CounterRecord | None = None


@dataclass
class TickOutput:
    # Span views of kept spans (ids as bytes); streams.span_batch_messages cuts them into
    # messages for the wire.
    sampled: list[SpanView] = field(default_factory=list)
    # Kept spans already packed as they were decided (streams.kept_packer, ADR 0021): framed
    # spans.sampled messages, sent before the views of ``sampled``; and the spans no message
    # could carry, by reason (already counted as spans_rejected in ``counters``).
    packed: list[bytes] = field(default_factory=list)
    refused: list[tuple[str, list[SpanView]]] = field(default_factory=list)
    decisions: list[tuple[str, bool, int]] = field(default_factory=list)
    red: dict[str, Any] | None = None
    edges: dict[str, Any] | None = None
    aggregates_through: int | None = None
    # Keys of the spans in ``sampled``, per trace, to persist with the decisions.
    sent_keys: dict[str, bytes] = field(default_factory=dict)
    # Counter deltas that describe exactly this output: persisted in the same decisions-log
    # record as ``decisions`` and ``aggregates_through``, so a replay never counts them again.
    counters: Counts = field(default_factory=dict)

    def persists_state(self) -> bool:
        return bool(self.decisions or self.aggregates_through is not None or self.counters)


# New traces per message checked against the producers' partitioner (~3.5 µs each, pure-Python
# hashing): every trace of one-trace-per-message producers (the Collector), a bounded sample of
# big multi-trace messages (ingest's), where checking all would add ~10 % per span.
ROUTE_CHECKS_PER_MESSAGE = 8


@dataclass(frozen=True)
class Routing:
    """Which partition this processor reads and the producers' trace id -> partition mapping
    (``core.partitioning.PARTITIONERS[ingest_partitioner]`` over the topic's partitions)."""

    partition: int
    partition_of: Callable[[bytes], int]


@dataclass
class DeadLetter:
    """Spans refused one by one (the rest of their message goes on): OTLP payload + reason."""

    reason: str
    payload: bytes
    spans: int


class PartitionProcessor:
    """One raw partition's RED, service graph, tail sampling, dedupe and accounting.

    Counting is exact across failovers because every counter delta is persisted together with
    the state it describes: per-message counts (spans received, spans rejected) wait in
    ``pending`` until the RED window that covers the same offsets is flushed, since a replay
    re-reads exactly the offsets after the last flush (``aggregates_through``); decision
    counts (sampled, sampled out, evicted, late, duplicate) go out in the tick that persists
    the decisions, since a replay skips spans whose decision was persisted.
    """

    def __init__(
        self,
        source: str,
        sampling: SamplingConfig,
        policies: Sequence[Policy],
        options: AggregationOptions,
        counters: CounterSet,
        restored: RestoredState | None = None,
        encodings: RawEncodings | None = None,
        routing: Routing | None = None,
        kept_message_bytes: int | None = None,
    ) -> None:
        self.source = source
        self.encodings = encodings or RawEncodings()
        self.routing = routing
        self.policies = policies
        # Keep-all knows every decision before a trace's first span: waiting would change
        # nothing about what is kept, only delay it (and hold every span in memory for the
        # wait). Such traces are decided on arrival; see _decide_on_arrival for the exception.
        self.decides_on_arrival = keeps_every_trace(policies)
        # Under sampling most spans are dropped unread: the compiled pass then leaves their
        # text in their bytes until their trace is kept (streams.otlp_scan, lazy views).
        self.lazy_text = not self.decides_on_arrival
        self.options = options
        self.counters = counters
        self.pending = CounterSet()
        self.buffer = TraceBuffer(
            sampling.decision_wait,
            sampling.num_traces,
            sampling.max_buffer_bytes,
            sampling.decide_on_root_span,
            sampling.root_span_wait,
        )
        self.cache = DecisionCache(sampling.sampled_cache_size, sampling.non_sampled_cache_size)
        self.red = RedAggregator(options.red_max_series)
        self.graph = ServiceGraph(options.graph_wait_seconds, options.graph_max_items)
        self.tracker = OffsetTracker()
        restored = restored or RestoredState()
        for tid, sampled, through in restored.decisions:
            self.cache.put(tid, sampled, through)
            if sampled:
                self.cache.add_sent_keys(tid, restored.sent_keys.get(tid, b""))
        self.replayed_through = restored.aggregates_through
        # Counter records are identified by (epoch, seq): the epoch is this owner's, the seq
        # counts its records. The previous owner's last record is published again once.
        self.epoch = restored.epoch
        self._seq = 0
        self.unpublished_counters = restored.last_counters
        self.last_offset = -1
        self._flushed_offset = -1
        self._window_start: float | None = None
        self._outbox: list[SpanView] = []
        # Given the byte limit of a spans.sampled message, spans kept while a message is
        # processed are packed then, while their views are hot (ADR 0021); the tick only
        # frames them. Where the compiled packer is not built, they wait for the tick.
        self.packer = (
            KeptPacker(kept_message_bytes)
            if kept_message_bytes is not None and OPEN_BATCHES
            else None
        )
        self._outbox_keys: dict[str, bytes] = {}
        self._decisions: list[tuple[str, bool, int]] = []
        self.dead_letters: list[DeadLetter] = []
        # Raw messages read by each path since the worker last published them (metrics only:
        # how much of the traffic the compiled pass takes, streams.otlp_scan).
        self.read_by = {"compiled": 0, "protobuf": 0}

    # -- per message -------------------------------------------------------------------------
    def process(
        self, offset: int, payload: bytes, now: float, encoding: str | None = None
    ) -> str | None:
        """Handle one raw message; returns a reason when it is malformed (for the DLQ).

        ``encoding`` is the message's ``encoding`` header (None: the topic's default).

        Single spans that cannot be stored are refused one by one into :attr:`dead_letters`
        (counted as ``spans_rejected`` by reason); the rest of the message goes on.
        """
        if offset <= self.last_offset:
            return None  # redelivered after a re-seek: already in memory
        self.last_offset = offset
        self.tracker.add(offset, 0)
        fresh = offset > self.replayed_through  # not yet counted in a persisted window
        if self._window_start is None:
            # Started by any message, also one that does not decode: its count waits in
            # ``pending`` for the window's close, which would otherwise never come on a
            # partition that has seen only undecodable messages.
            self._window_start = math.floor(now / self.options.red_window_seconds) * (
                self.options.red_window_seconds
            )
        rejected: list[Rejected] = []
        # OTLP protobuf, the encoding of ingest and of most producers: the compiled pass
        # first; anything it does not handle goes the protobuf way, which owns every
        # rejection (streams.otlp_scan).
        scanned = (
            scan_views(payload, lazy=self.lazy_text) if self.encodings.scannable(encoding) else None
        )
        # Spans a decoder delimited but could not use, by reason (the compiled pass reads
        # only messages without).
        refused_by: Mapping[str, int] = {}
        if scanned is not None:
            records = scanned
            self.read_by["compiled"] += 1
        else:
            self.read_by["protobuf"] += 1
            try:
                decoded = self.encodings.decode(payload, encoding)
            except RawDecodeError as exc:
                if fresh:
                    self.pending.add(c.MESSAGES_REJECTED, 1, exc.reason)
                return str(exc)
            try:
                records = span_views(decoded.data, rejected=rejected)
            except (DecodeError, RecursionError, ValueError) as exc:
                if fresh:
                    self.pending.add(c.MESSAGES_REJECTED, 1, "malformed")
                return f"undecodable OTLP protobuf: {exc}"
            refused_by = decoded.refused
        if rejected and fresh:
            self._reject(rejected)
        refused = sum(refused_by.values())
        if refused and fresh:
            # Spans the decoder delimited but could not use: counted by reason; the message
            # as it came goes to the DLQ once, since there is no OTLP form of those spans.
            for reason, n in refused_by.items():
                self.pending.add(c.SPANS_REJECTED, n, reason)
            reasons = ",".join(sorted(refused_by))
            self.dead_letters.append(DeadLetter(reasons, payload, refused))
        if fresh:
            self.pending.add(c.SPANS_RECEIVED, len(records) + len(rejected) + refused)
        by_trace: dict[bytes, list[SpanView]] = {}
        for r in records:
            group = by_trace.get(r.trace_id)
            if group is None:
                by_trace[r.trace_id] = [r]
            else:
                group.append(r)
        span_bytes = len(payload) // max(1, len(records) + len(rejected))
        counted: list[SpanView] = []
        route_checks = ROUTE_CHECKS_PER_MESSAGE if fresh and self.routing is not None else 0
        for tid_bytes, recs in by_trace.items():
            tid = tid_bytes.hex()
            known = self.cache.get(tid)
            if known is not None:
                counted.extend(self._follow_decision(tid, recs, offset, *known))
                continue
            buffered = tid in self.buffer
            if route_checks and not buffered:
                route_checks -= 1
                self._check_route(tid_bytes)
            if self.decides_on_arrival and not buffered and not needs_whole_trace(recs):
                counted.extend(self._decide_on_arrival(tid, tid_bytes, recs, offset, now))
                continue
            recs, keys, dups = self._new_spans(self.buffer.get(tid), recs)
            counted.extend(recs)
            has_root = self.buffer.decide_on_root_span and any(not r.parent_span_id for r in recs)
            # Even a message of copies only joins the trace: its offset is then committed with
            # the trace's decision, and its copies are counted in the same record.
            self.tracker.inc(offset)
            for ev in self.buffer.add(
                tid, recs, span_bytes * len(recs), offset, now, has_root, keys, dups
            ):
                self._evicted(ev)
        if self.packer is not None and self._outbox:
            self.packer.add(self._outbox)
            self._outbox = []
        if fresh:
            # RED and the graph see each span once: copies a client sent again are left out.
            self.red.add(counted)
            self.graph.add(counted, now)
        return None

    def _check_route(self, trace_id: bytes) -> None:
        """Count a trace first seen here that the producers' partitioner puts elsewhere: its
        spans arrive on two partitions and each part is decided alone."""
        assert self.routing is not None
        if self.routing.partition_of(trace_id) != self.routing.partition:
            self.pending.add(c.TRACES_MISROUTED, 1)

    def _reject(self, rejected: list[Rejected]) -> None:
        by_reason: dict[str, list[Rejected]] = {}
        for item in rejected:
            by_reason.setdefault(item[0], []).append(item)
        for reason, items in by_reason.items():
            self.pending.add(c.SPANS_REJECTED, len(items), reason)
            self.dead_letters.append(DeadLetter(reason, rejected_payload(items), len(items)))

    @staticmethod
    def _new_spans(
        trace: BufferedTrace | None, recs: list[SpanView]
    ) -> tuple[list[SpanView], dict[bytes, SpanView], int]:
        """``recs`` without copies of spans already buffered or earlier in ``recs``, the new
        spans by key, and the number of copies (accounted when the trace is decided)."""
        seen = trace.seen if trace is not None else {}
        local: dict[bytes, SpanView] = {}
        out: list[SpanView] = []
        for r in recs:
            key = span_key(r)
            other = local.get(key) or seen.get(key)
            if other is not None and same_content(other, r):
                continue
            local[key] = r
            out.append(r)
        return out, local, len(recs) - len(out)

    def _follow_decision(
        self, tid: str, recs: list[SpanView], offset: int, sampled: bool, through: int
    ) -> list[SpanView]:
        """Late spans of a decided trace follow the decision; returns the spans RED counts."""
        if offset <= through:
            # A replay after failover: the previous owner already forwarded these spans.
            self.counters.add(c.SPANS_REPLAYED, len(recs))
            return recs
        if sampled:
            sent = split_keys(self.cache.sent_keys(tid))
            new: list[SpanView] = []
            for r in recs:
                key = span_key(r)
                if key not in sent:
                    sent.add(key)
                    new.append(r)
            dups = len(recs) - len(new)
            if dups:
                self.counters.add(c.SPANS_DUPLICATE, dups)
            recs = new
        # The decision is re-recorded through this offset even when only copies arrived, so a
        # replay after a failover treats the message as handled and counts nothing again.
        self.cache.put(tid, sampled, offset)
        self._decisions.append((tid, sampled, offset))
        if not recs:
            return recs
        if not (sampled and self.decides_on_arrival):
            # Under keep-all every trace is decided on its first message, so its later spans
            # are not late in any sense an operator could act on.
            self.counters.add(c.SPANS_LATE, len(recs), "sampled" if sampled else "not_sampled")
        if sampled:
            self._send(tid, recs)
            self.counters.add(c.SPANS_SAMPLED, len(recs))
        else:
            self.counters.add(c.SPANS_SAMPLED_OUT, len(recs), "late")
        return recs

    def _decide_on_arrival(
        self, tid: str, tid_bytes: bytes, recs: list[SpanView], offset: int, now: float
    ) -> list[SpanView]:
        """Decide a new trace from its first message (keep-all); returns the spans RED counts.

        The decision is recorded through ``offset`` like any other, so the trace's later
        spans follow it (:meth:`_follow_decision`: copies dropped by their sent keys) and a
        replay after a failover skips what was already forwarded. The outbox is delivered
        with the tick that persists the decision, as for late spans, so no offset is
        committed before its spans are on the broker."""
        recs, keys, dups = self._new_spans(None, recs)
        failed: list[str] = []
        keep, reason = evaluate_all(self.policies, TraceView(tid_bytes, recs), now, failed)
        for name in failed:
            self.counters.add(c.POLICY_ERRORS, 1, name)
        self.cache.put(tid, keep, offset)
        self._decisions.append((tid, keep, offset))
        if dups:
            self.counters.add(c.SPANS_DUPLICATE, dups)
        if keep:
            self._send(tid, recs, b"".join(keys))
            self.counters.add(c.TRACES_SAMPLED, 1, reason)
            self.counters.add(c.SPANS_SAMPLED, len(recs))
        else:
            self.counters.add(c.TRACES_NOT_SAMPLED, 1, reason)
            self.counters.add(c.SPANS_SAMPLED_OUT, len(recs), reason)
        return recs

    def _send(self, tid: str, recs: list[SpanView], keys: bytes | None = None) -> None:
        self._outbox.extend(recs)
        if keys is None:
            keys = b"".join(span_key(r) for r in recs)
        self._outbox_keys[tid] = self._outbox_keys.get(tid, b"") + keys
        self.cache.add_sent_keys(tid, keys)

    def _evicted(self, trace: BufferedTrace) -> None:
        self.counters.add(c.TRACES_EVICTED, 1)
        self.counters.add(c.SPANS_EVICTED, len(trace.records), "buffer_full")
        self._count_duplicates(trace)
        through = trace.offsets[-1]
        # Cached as not sampled so later spans of the trace are dropped consistently.
        self.cache.put(trace.trace_id, False, through)
        self._decisions.append((trace.trace_id, False, through))
        self.tracker.trace_done(trace.offsets)

    def _count_duplicates(self, trace: BufferedTrace) -> None:
        if trace.duplicates:
            self.counters.add(c.SPANS_DUPLICATE, trace.duplicates)

    # -- per tick ----------------------------------------------------------------------------
    def tick(self, now: float) -> TickOutput:
        """Decide due traces and close the aggregation window if it ended."""
        out = TickOutput(sampled=self._outbox, decisions=self._decisions)
        out.sent_keys = self._outbox_keys
        self._outbox, self._decisions, self._outbox_keys = [], [], {}
        if self.packer is not None:
            out.packed, out.refused = self.packer.drain()
            for reason, views in out.refused:
                self.counters.add(c.SPANS_REJECTED, len(views), reason)
        for trace in self.buffer.due(now):
            self._decide(trace, now, out)
        self.graph.expire(now)
        start = self._window_start
        if start is not None and now >= start + self.options.red_window_seconds:
            end = start + self.options.red_window_seconds
            s_ns, e_ns = int(start * 1e9), int(end * 1e9)
            if self.red.overflow_spans:
                self.counters.add(c.RED_SERIES_OVERFLOW, self.red.overflow_spans)
            if not self.red.empty():
                out.red = self.red.drain(self.source, s_ns, e_ns)
            if self.graph.edges:
                out.edges = self.graph.drain(self.source, s_ns, e_ns)
            self.counters.add(c.GRAPH_EDGES_EXPIRED, self.graph.expired_unpaired)
            self.counters.add(c.GRAPH_CROSS_TENANT, self.graph.cross_tenant)
            self.counters.add(c.GRAPH_DROPPED_FULL, self.graph.dropped_full)
            self.graph.expired_unpaired = 0
            self.graph.cross_tenant = 0
            self.graph.dropped_full = 0
            if self.last_offset > self._flushed_offset:  # idle partitions write nothing
                out.aggregates_through = self._flushed_offset = self.last_offset
            # The window's per-message counts are persisted with the offset they cover.
            self.counters.merge(self.pending.drain())
            w = self.options.red_window_seconds
            self._window_start = math.floor(now / w) * w
        out.counters = self.counters.drain()
        return out

    def _decide(self, trace: BufferedTrace, now: float, out: TickOutput) -> None:
        if trace.records:
            tid_bytes = trace.records[0].trace_id
            for old, new in relink_orphaned_shared_servers(trace.records):
                self.graph.relink(tid_bytes, old, new)
        failed: list[str] = []
        keep, reason = evaluate_all(
            self.policies, TraceView(bytes.fromhex(trace.trace_id), trace.records), now, failed
        )
        for name in failed:  # counted with the decision they shaped
            self.counters.add(c.POLICY_ERRORS, 1, name)
        through = trace.offsets[-1]
        self.cache.put(trace.trace_id, keep, through)
        out.decisions.append((trace.trace_id, keep, through))
        n = len(trace.records)
        self._count_duplicates(trace)
        if keep:
            out.sampled.extend(trace.records)
            keys = b"".join(trace.seen)
            out.sent_keys[trace.trace_id] = out.sent_keys.get(trace.trace_id, b"") + keys
            self.cache.add_sent_keys(trace.trace_id, keys)
            self.counters.add(c.TRACES_SAMPLED, 1, reason)
            self.counters.add(c.SPANS_SAMPLED, n)
        else:
            self.counters.add(c.TRACES_NOT_SAMPLED, 1, reason)
            self.counters.add(c.SPANS_SAMPLED_OUT, n, reason)
        self.tracker.trace_done(trace.offsets)

    def counter_record(self, counts: Counts, time_unix_nano: int) -> CounterRecord:
        """The identity under which ``counts`` (one tick's deltas) are persisted and published."""
        self._seq += 1
        return CounterRecord(self.epoch, self._seq, time_unix_nano, counts)

    def delivered(self, out: TickOutput) -> list[int]:
        """Call once ``out`` is on the broker; returns the offsets now safe to commit."""
        if out.aggregates_through is not None:
            self.tracker.flushed_through(out.aggregates_through)
        return self.tracker.ackable()

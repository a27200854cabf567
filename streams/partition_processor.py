"""Everything the streams worker does for one raw partition, free of faust and Kafka.

One instance per owned partition: it decodes each raw message once, feeds RED and the service
graph with all spans, buffers spans per trace until the sampling decision, and on each tick
returns what to publish. Offsets become committable only after that output is delivered (see
:mod:`streams.offset_tracker`), which is what makes a killed worker's partitions resumable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.trace.v1 import trace_pb2

from streams import counters as c
from streams.counters import CounterSet
from streams.offset_tracker import OffsetTracker
from streams.policies import Policy, TraceView, evaluate_all
from streams.red_metrics import RedAggregator
from streams.sampling_config import SamplingConfig
from streams.service_graph import ServiceGraph
from streams.span_views import span_views
from streams.trace_buffer import BufferedTrace, DecisionCache, TraceBuffer


@dataclass(frozen=True)
class AggregationOptions:
    red_window_seconds: float = 10.0
    red_max_series: int = 5000
    graph_wait_seconds: float = 10.0
    graph_max_items: int = 100_000


@dataclass
class RestoredState:
    """What a previous owner of the partition persisted (see :mod:`streams.state_log`)."""

    decisions: list[tuple[str, bool, int]] = field(default_factory=list)
    aggregates_through: int = -1


@dataclass
class TickOutput:
    # Span views of kept spans (ids as bytes); streams.pipeline encodes them for the wire.
    sampled: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[tuple[str, bool, int]] = field(default_factory=list)
    red: dict[str, Any] | None = None
    edges: dict[str, Any] | None = None
    aggregates_through: int | None = None


class PartitionProcessor:
    def __init__(
        self,
        source: str,
        sampling: SamplingConfig,
        policies: Sequence[Policy],
        options: AggregationOptions,
        counters: CounterSet,
        restored: RestoredState | None = None,
    ) -> None:
        self.source = source
        self.policies = policies
        self.options = options
        self.counters = counters
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
        self.replayed_through = restored.aggregates_through
        self.last_offset = -1
        self._flushed_offset = -1
        self._window_start: float | None = None
        self._outbox: list[dict[str, Any]] = []
        self._decisions: list[tuple[str, bool, int]] = []

    # -- per message -------------------------------------------------------------------------
    def process(self, offset: int, payload: bytes, now: float) -> str | None:
        """Handle one raw message; returns a reason when it is malformed (for the DLQ)."""
        if offset <= self.last_offset:
            return None  # redelivered after a re-seek: already in memory
        self.last_offset = offset
        self.tracker.add(offset, 0)
        try:
            records = span_views(trace_pb2.TracesData.FromString(payload))
        except DecodeError as exc:
            self.counters.add(c.MESSAGES_REJECTED, 1, "malformed")
            return f"undecodable OTLP protobuf: {exc}"
        if self._window_start is None:
            self._window_start = math.floor(now / self.options.red_window_seconds) * (
                self.options.red_window_seconds
            )
        if offset > self.replayed_through:
            self.counters.add(c.SPANS_RECEIVED, len(records))
            self.red.add(records)
            self.graph.add(records, now)
        by_trace: dict[bytes, list[dict[str, Any]]] = {}
        for r in records:
            group = by_trace.get(r["trace_id"])
            if group is None:
                by_trace[r["trace_id"]] = [r]
            else:
                group.append(r)
        span_bytes = len(payload) // max(1, len(records))
        for tid_bytes, recs in by_trace.items():
            tid = tid_bytes.hex()
            known = self.cache.get(tid)
            if known is not None:
                self._follow_decision(tid, recs, offset, *known)
                continue
            has_root = self.buffer.decide_on_root_span and any(
                not r["parent_span_id"] for r in recs
            )
            self.tracker.inc(offset)
            for ev in self.buffer.add(tid, recs, span_bytes * len(recs), offset, now, has_root):
                self._evicted(ev)
        return None

    def _follow_decision(
        self, tid: str, recs: list[dict[str, Any]], offset: int, sampled: bool, through: int
    ) -> None:
        if offset <= through:
            # A replay after failover: the previous owner already forwarded these spans.
            self.counters.add(c.SPANS_REPLAYED, len(recs))
            return
        self.counters.add(c.SPANS_LATE, len(recs), "sampled" if sampled else "not_sampled")
        if sampled:
            self._outbox.extend(recs)
            self.counters.add(c.SPANS_SAMPLED, len(recs))
        else:
            self.counters.add(c.SPANS_SAMPLED_OUT, len(recs), "late")
        self.cache.put(tid, sampled, offset)
        self._decisions.append((tid, sampled, offset))

    def _evicted(self, trace: BufferedTrace) -> None:
        self.counters.add(c.TRACES_EVICTED, 1)
        self.counters.add(c.SPANS_EVICTED, len(trace.records), "buffer_full")
        through = trace.offsets[-1]
        # Cached as not sampled so later spans of the trace are dropped consistently.
        self.cache.put(trace.trace_id, False, through)
        self._decisions.append((trace.trace_id, False, through))
        self.tracker.trace_done(trace.offsets)

    # -- per tick ----------------------------------------------------------------------------
    def tick(self, now: float) -> TickOutput:
        """Decide due traces and close the aggregation window if it ended."""
        out = TickOutput(sampled=self._outbox, decisions=self._decisions)
        self._outbox, self._decisions = [], []
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
            self.graph.expired_unpaired = 0
            if self.last_offset > self._flushed_offset:  # idle partitions write nothing
                out.aggregates_through = self._flushed_offset = self.last_offset
            w = self.options.red_window_seconds
            self._window_start = math.floor(now / w) * w
        return out

    def _decide(self, trace: BufferedTrace, now: float, out: TickOutput) -> None:
        keep, reason = evaluate_all(
            self.policies, TraceView(bytes.fromhex(trace.trace_id), trace.records), now
        )
        through = trace.offsets[-1]
        self.cache.put(trace.trace_id, keep, through)
        out.decisions.append((trace.trace_id, keep, through))
        n = len(trace.records)
        if keep:
            out.sampled.extend(trace.records)
            self.counters.add(c.TRACES_SAMPLED, 1, reason)
            self.counters.add(c.SPANS_SAMPLED, n)
        else:
            self.counters.add(c.TRACES_NOT_SAMPLED, 1, reason)
            self.counters.add(c.SPANS_SAMPLED_OUT, n, reason)
        self.tracker.trace_done(trace.offsets)

    def delivered(self, out: TickOutput) -> list[int]:
        """Call once ``out`` is on the broker; returns the offsets now safe to commit."""
        if out.aggregates_through is not None:
            self.tracker.flushed_through(out.aggregates_through)
        return self.tracker.ackable()

"""The tail sampler's memory: traces waiting for a decision, and decisions already taken.

The buffer is bounded twice (number of traces and bytes), evicting the oldest trace first so
the newest traffic is never refused; every eviction is reported to the caller to be counted.
The decision cache remembers recent decisions so spans arriving after their trace was decided
follow that decision instead of starting a new trace (OTel's decision cache).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from streams.span_views import SpanView


@dataclass
class BufferedTrace:
    trace_id: str
    deadline: float
    records: list[SpanView] = field(default_factory=list)
    nbytes: int = 0
    offsets: list[int] = field(default_factory=list)
    # Buffered spans by key (see streams.span_fingerprint): a copy of a span already here (a
    # client retry) is counted as a duplicate instead of being stored twice.
    seen: dict[bytes, SpanView] = field(default_factory=dict)
    duplicates: int = 0


@dataclass
class TraceBuffer:
    decision_wait: float
    max_traces: int
    max_bytes: int
    decide_on_root_span: bool = False
    root_span_wait: float = 1.0
    nbytes: int = 0

    def __post_init__(self) -> None:
        # Insertion order = arrival order, so the front is both the oldest and the first due.
        self._traces: OrderedDict[str, BufferedTrace] = OrderedDict()
        # Traces whose root arrived: due earlier than their arrival order says.
        self._early: set[str] = set()

    def __len__(self) -> int:
        return len(self._traces)

    def __contains__(self, trace_id: str) -> bool:
        return trace_id in self._traces

    def get(self, trace_id: str) -> BufferedTrace | None:
        return self._traces.get(trace_id)

    def add(
        self,
        trace_id: str,
        records: list[SpanView],
        nbytes: int,
        offset: int,
        now: float,
        has_root: bool = False,
        keys: dict[bytes, SpanView] | None = None,
        duplicates: int = 0,
    ) -> list[BufferedTrace]:
        """Buffer spans of a trace; returns the traces evicted to stay within bounds.

        ``keys`` are the new spans by key and ``duplicates`` the copies left out of
        ``records`` (see streams.span_fingerprint); both are kept on the trace."""
        trace = self._traces.get(trace_id)
        if trace is None:
            trace = self._traces[trace_id] = BufferedTrace(trace_id, now + self.decision_wait)
        trace.records.extend(records)
        if keys:
            trace.seen.update(keys)
        trace.duplicates += duplicates
        trace.nbytes += nbytes
        self.nbytes += nbytes
        if not trace.offsets or trace.offsets[-1] != offset:
            trace.offsets.append(offset)
        if has_root and self.decide_on_root_span:
            early = now + self.root_span_wait
            if early < trace.deadline:
                trace.deadline = early
                self._early.add(trace_id)
        return self._evict(keep=trace_id)

    def _evict(self, keep: str) -> list[BufferedTrace]:
        evicted: list[BufferedTrace] = []
        while len(self._traces) > self.max_traces or (
            self.nbytes > self.max_bytes and len(self._traces) > 1
        ):
            oldest = next(iter(self._traces))
            if oldest == keep and len(self._traces) == 1:
                break
            evicted.append(self._pop(oldest))
        return evicted

    def _pop(self, trace_id: str) -> BufferedTrace:
        trace = self._traces.pop(trace_id)
        self._early.discard(trace_id)
        self.nbytes -= trace.nbytes
        return trace

    def due(self, now: float) -> list[BufferedTrace]:
        """Remove and return every trace whose decision time has come, oldest first."""
        out: list[BufferedTrace] = []
        if self._early:
            for tid in [t for t in self._early if self._traces[t].deadline <= now]:
                out.append(self._pop(tid))
        traces = self._traces
        while traces:
            tid, trace = next(iter(traces.items()))
            if trace.deadline > now:
                break
            out.append(self._pop(tid))
        return out


class DecisionCache:
    """Bounded LRU of decisions: trace id -> (sampled, highest raw offset already handled).

    The offset lets a worker that replays the raw topic after a failover tell spans it (or the
    previous owner) already forwarded from genuinely late ones.
    """

    def __init__(self, sampled_size: int, not_sampled_size: int) -> None:
        self._sizes = {True: sampled_size, False: not_sampled_size}
        self._maps: dict[bool, OrderedDict[str, int]] = {True: OrderedDict(), False: OrderedDict()}
        # Sampled traces only: the concatenated keys of the spans already sent (see
        # streams.span_fingerprint), so a late copy of one of them (a client retry) is not
        # stored twice. Not-sampled traces need none: a late copy is dropped either way.
        self._keys: dict[str, bytes] = {}

    def sent_keys(self, trace_id: str) -> bytes:
        return self._keys.get(trace_id, b"")

    def add_sent_keys(self, trace_id: str, blob: bytes) -> None:
        if blob and trace_id in self._maps[True]:
            self._keys[trace_id] = self._keys.get(trace_id, b"") + blob

    def get(self, trace_id: str) -> tuple[bool, int] | None:
        for sampled in (True, False):
            through = self._maps[sampled].get(trace_id)
            if through is not None:
                return sampled, through
        return None

    def put(self, trace_id: str, sampled: bool, through_offset: int) -> None:
        m = self._maps[sampled]
        old = m.get(trace_id, -1)
        m[trace_id] = max(old, through_offset)
        m.move_to_end(trace_id)
        while len(m) > self._sizes[sampled]:
            gone, _ = m.popitem(last=False)
            if sampled:
                self._keys.pop(gone, None)

    def __len__(self) -> int:
        return len(self._maps[True]) + len(self._maps[False])

"""Which raw messages are fully handled, so their offsets may be committed.

The raw topic is the tail sampler's changelog: an offset is committed only once every trace in
that message is decided (and its sampled spans delivered) and its RED/graph contribution has been
flushed. A worker that dies therefore leaves its undecided traces uncommitted, and the next owner
of the partition rebuilds them by re-reading from the committed offset. Commits must advance in
order (faust commits the first run of consecutive acked offsets), so :meth:`ackable` only ever
releases a prefix.
"""

from __future__ import annotations

from collections import OrderedDict


class OffsetTracker:
    def __init__(self) -> None:
        # offset -> number of its traces still undecided, in arrival (= offset) order.
        self._pending: OrderedDict[int, int] = OrderedDict()
        self._flushed_through = -1

    def add(self, offset: int, undecided_traces: int) -> None:
        self._pending[offset] = undecided_traces

    def inc(self, offset: int) -> None:
        """One more undecided trace in the message at ``offset``."""
        self._pending[offset] = self._pending.get(offset, 0) + 1

    def trace_done(self, offsets: list[int]) -> None:
        for o in offsets:
            if o in self._pending:
                self._pending[o] -= 1

    def flushed_through(self, offset: int) -> None:
        """Aggregates (RED, graph) covering every offset <= ``offset`` were delivered."""
        self._flushed_through = max(self._flushed_through, offset)

    def ackable(self) -> list[int]:
        out: list[int] = []
        pending = self._pending
        while pending:
            offset, left = next(iter(pending.items()))
            if left > 0 or offset > self._flushed_through:
                break
            del pending[offset]
            out.append(offset)
        return out

    def __len__(self) -> int:
        return len(self._pending)

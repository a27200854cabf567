"""Kept spans packed into ``spans.sampled`` messages as they are decided (ADR 0021).

Why: under keep-all every span is decided on arrival, but its view waited for the tick to be
packed. By then a second of views (tens of MB at 50k spans/s) had left the CPU caches, and the
compiled walk cost twice in the worker what it costs alone; freeing that second of views at
the tick was cold work too. Here a partition's kept views are packed when the message that
brought them is processed, while they are hot, into one open message: the tick only frames
it, and the views die with their message.

Messages are cut as :func:`streams.span_batch_messages.encode_span_batches` cuts them: at most
:data:`MAX_SPANS_PER_MESSAGE` spans and ``max_bytes`` bytes each. Views are added a message's
worth at a time, all or nothing; a group that makes the walk raise, or that is over the byte
limit alone, goes the per-list way, which isolates and refuses the one span at fault
(``refused``, with its reason) and sends the rest. Pure: the processor owns one per partition
and hands what :meth:`KeptPacker.drain` returns to the tick's output.
"""

from __future__ import annotations

from streams.packed_batch import OpenBatch
from streams.span_batch_messages import MAX_SPANS_PER_MESSAGE, encode_span_batches
from streams.span_views import SpanView

Refused = list[tuple[str, list[SpanView]]]


class KeptPacker:
    """One partition's kept spans since the last tick, as framed messages and one open one."""

    def __init__(self, max_bytes: int, max_spans: int = MAX_SPANS_PER_MESSAGE) -> None:
        if max_spans < 1:
            raise ValueError("max_spans must be at least 1")
        self.max_bytes = max_bytes
        self.max_spans = max_spans
        self._payloads: list[bytes] = []
        self._refused: Refused = []
        self._open = OpenBatch()

    def add(self, views: list[SpanView]) -> None:
        """Pack ``views`` (kept, in the order they go out) after those already added."""
        start = 0
        while start < len(views):
            room = self.max_spans - len(self._open)
            if room <= 0:
                self._seal()
                continue
            chunk = views[start : start + room]
            start += len(chunk)
            self._add(chunk)

    def _add(self, chunk: list[SpanView]) -> None:
        try:
            self._open.append(chunk)
        except Exception:
            # A span the walk cannot write (a value out of its column's range, text that is
            # not encodable): the per-list way finds it and sends the others.
            self._per_list(chunk)
            return
        if self._open.framed_size() <= self.max_bytes:
            return
        self._open.undo()
        if len(self._open):
            self._seal()  # the open message is full: the chunk starts the next one
            self._add(chunk)
        else:
            self._per_list(chunk)  # over the limit alone: halved until each part fits

    def _per_list(self, chunk: list[SpanView]) -> None:
        self._seal()
        encoded = encode_span_batches(chunk, max_bytes=self.max_bytes)
        self._payloads.extend(encoded.payloads)
        self._refused.extend(encoded.refused)

    def _seal(self) -> None:
        if len(self._open):
            self._payloads.append(self._open.frame())
            self._open = OpenBatch()

    def pending(self) -> int:
        """Spans in the open message (framed ones are counted by their messages)."""
        return len(self._open)

    def drain(self) -> tuple[list[bytes], Refused]:
        """Every message since the last drain, in order, and the spans none could carry."""
        self._seal()
        out = self._payloads, self._refused
        self._payloads, self._refused = [], []
        return out

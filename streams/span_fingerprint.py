"""What makes two spans the same span, for exactly-once storage under client retries.

A client that retries after a 503 or a timeout sends spans a second time that may already be on
the raw topic (the broker appended part of the first attempt), and so does any producer whose
acknowledgement was lost. Traces are partitioned by trace id, so every copy of a span reaches
the same partition processor, which compares spans within their trace.

A span's *key* is its span id plus its kind (9 bytes): Zipkin's shared spans (client and server
halves with one span id) differ in kind and stay two spans. Two buffered spans with the same key
are one span sent twice when their content (name, service, times) is equal too; a span with a
reused key but other content is kept, since it is not a copy. After a decision only keys are
remembered (and persisted in the decisions log, 9 bytes a span), so a late copy is recognised
by its key alone. Keys cost a bytes concatenation per span; content is compared only on the
rare key collision.
"""

from __future__ import annotations

from streams.span_views import SpanView

KEY_BYTES = 9
_KIND_BYTE = [bytes([k]) for k in range(256)]


def span_key(view: SpanView) -> bytes:
    return view.span_id + _KIND_BYTE[view.kind & 0xFF]


def same_content(a: SpanView, b: SpanView) -> bool:
    """Whether two spans with the same key are copies of one span."""
    return (
        a.start_time_unix_nano == b.start_time_unix_nano
        and a.end_time_unix_nano == b.end_time_unix_nano
        and a.name == b.name
        and a.service_name == b.service_name
        and a.tenant_id == b.tenant_id
    )


def split_keys(blob: bytes) -> set[bytes]:
    return {blob[i : i + KEY_BYTES] for i in range(0, len(blob), KEY_BYTES)}

"""One tick's kept spans of every partition a worker owns -> one run of ``spans.sampled``
messages (ADR 0020).

The sink stores each ``spans.sampled`` partition's batch as one ClickHouse part, and a part
costs the server ~13-40 ms of CPU whatever its size (docs/perf.md). Sending each raw
partition's kept spans under its own key spread one worker's output over up to four
``spans.sampled`` partitions, so four parts a second where one would do. Here the tick's kept
spans of all the worker's partitions are cut into messages together, under one key: the lowest
raw partition of the tick, so while the assignment holds, a worker's output stays in order on
one partition, as each raw partition's did.

Pure: the worker (:mod:`streams.app`) sends what this returns. A span no message can carry is
counted in the output of the partition it came from, so the partition's decisions-log record
carries its rejection exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from streams import counters as c
from streams.partition_processor import TickOutput
from streams.span_batch_messages import EncodedBatches, encode_span_batches
from streams.span_views import SpanView


def encode_kept(
    outputs: Sequence[tuple[int, TickOutput]], max_bytes: int
) -> tuple[bytes, EncodedBatches]:
    """The key and the messages of the kept spans of ``outputs`` ((raw partition, tick output)
    pairs): first the messages each output packed as its spans were decided
    (:mod:`streams.kept_packer`), in partition order, then the views left for the tick, cut
    together in partition order then each output's order. Spans refused here are counted as
    ``spans_rejected{reason}`` in their own output's counters (an output's packer counted its
    own already); the result lists both."""
    if not outputs:
        return b"", EncodedBatches()
    views: list[SpanView] = []
    out = EncodedBatches()
    for _, output in outputs:
        out.payloads.extend(output.packed)
        out.refused.extend(output.refused)
        views.extend(output.sampled)
    key = str(min(partition for partition, _ in outputs)).encode()
    if not views:
        return key, out
    encoded = encode_span_batches(views, max_bytes=max_bytes)
    if encoded.refused:
        owner = {id(view): output for _, output in outputs for view in output.sampled}
        for reason, refused in encoded.refused:
            for view in refused:
                counts = owner[id(view)].counters
                counts[(c.SPANS_REJECTED, reason)] = counts.get((c.SPANS_REJECTED, reason), 0) + 1
    out.payloads.extend(encoded.payloads)
    out.refused.extend(encoded.refused)
    return key, out

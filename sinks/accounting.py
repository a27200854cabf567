"""The sink's part of the pipeline accounting: span rows ClickHouse refused.

``received = stored + sampled_out + rejected`` is checked against ``pipeline_counters``
(docs/queries.md). A span row the sink dead-letters is neither stored nor counted anywhere
else, so for every batch of the spans topic with rejected rows the sink publishes one
``CounterBatch`` to the accounting topic, before it commits the batch's offsets.

The record is a pure function of the batch (ADR 0001, "Rejected rows"): ``instance`` is the
source ``topic/partition``, ``seq`` the batch's first offset and ``time_unix_nano`` the Kafka
timestamp of its first record. A replay after a crash (same intent, same records, same
isolated rows) therefore publishes an identical record, which ``pipeline_counters``
(ReplacingMergeTree keyed by component, instance, seq, tenant, name, reason and partitioned
by the day of ``TimeUnix``) collapses, so the rejected rows are counted once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from schemas.counter_batch import counter_batch

COMPONENT = "sink"
SPANS_REJECTED = "spans_rejected"
# DLQ ``reason`` header and accounting reason of rows ClickHouse refused for their data.
CLICKHOUSE_REJECTED = "clickhouse_rejected"


def rejected_spans_record(
    topic: str,
    partition: int,
    first_offset: int,
    first_timestamp_ms: int,
    rejected_by_reason: Mapping[str, int],
) -> dict[str, Any] | None:
    """The ``pipeline_counters`` record for one batch's rejected span rows (None: none)."""
    counts = {(SPANS_REJECTED, reason): n for reason, n in rejected_by_reason.items() if n > 0}
    if not counts:
        return None
    # Without a Kafka timestamp (a broker that does not keep them) the wall clock is the only
    # time there is; a replay of such a batch may then be counted on another day.
    when = first_timestamp_ms * 1_000_000 if first_timestamp_ms >= 0 else time.time_ns()
    return counter_batch(COMPONENT, f"{topic}/{partition}", first_offset, when, counts)

"""Decision and drop counters of the streams worker, kept as deltas until published.

The pure processors count here; the faust adapter drains the deltas on each tick into Prometheus
counters and into ``pipeline_counters`` batches, so both views always agree.
"""

from __future__ import annotations

from collections import Counter

# Counter names (see streams/README.md).
SPANS_RECEIVED = "spans_received"
SPANS_SAMPLED = "spans_sampled"
SPANS_SAMPLED_OUT = "spans_sampled_out"
SPANS_EVICTED = "spans_evicted"
SPANS_LATE = "spans_late"
SPANS_REPLAYED = "spans_replayed"
TRACES_SAMPLED = "traces_sampled"
TRACES_NOT_SAMPLED = "traces_not_sampled"
TRACES_EVICTED = "traces_evicted"
MESSAGES_REJECTED = "messages_rejected"
# Spans refused one by one (reason: schemas.span_limits / streams.span_views.span_problem).
SPANS_REJECTED = "spans_rejected"
# Copies of spans already received (client retries): counted, stored once.
SPANS_DUPLICATE = "spans_duplicate"
GRAPH_CROSS_TENANT = "graph_cross_tenant"
# Traces first seen on a partition the configured partitioner (ingest_partitioner) does not map
# them to: a producer partitions differently, so the trace is split and decided in parts.
TRACES_MISROUTED = "traces_misrouted"
# Sampling policies that raised while evaluating a trace (reason: policy name); ignored in the
# decision, as the Collector does.
POLICY_ERRORS = "policy_errors"
RED_SERIES_OVERFLOW = "red_spans_overflow"
GRAPH_EDGES_EXPIRED = "graph_unpaired_expired"
# Spans the service graph forgot unpaired because it was at ``max_items``: edges may be missing.
GRAPH_DROPPED_FULL = "graph_dropped_full"


class CounterSet:
    def __init__(self) -> None:
        self._deltas: Counter[tuple[str, str]] = Counter()

    def add(self, name: str, value: int = 1, reason: str = "") -> None:
        if value:
            self._deltas[(name, reason)] += value

    def get(self, name: str, reason: str = "") -> int:
        return self._deltas[(name, reason)]

    def drain(self) -> dict[tuple[str, str], int]:
        out = dict(self._deltas)
        self._deltas.clear()
        return out

    def merge(self, other: dict[tuple[str, str], int]) -> None:
        self._deltas.update(other)

"""Prometheus metrics of the streams worker (served on the faust web port at ``/metrics``).

Every counter of :mod:`streams.counters` becomes ``tracehouse_streams_<name>_total`` with a
``reason`` label, fed from the same deltas that go to ``pipeline.accounting``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from streams import counters as c

COUNTER_NAMES = (
    c.SPANS_RECEIVED,
    c.SPANS_SAMPLED,
    c.SPANS_SAMPLED_OUT,
    c.SPANS_EVICTED,
    c.SPANS_LATE,
    c.SPANS_REPLAYED,
    c.TRACES_SAMPLED,
    c.TRACES_NOT_SAMPLED,
    c.TRACES_EVICTED,
    c.MESSAGES_REJECTED,
    c.RED_SERIES_OVERFLOW,
    c.GRAPH_EDGES_EXPIRED,
    c.SPANS_REJECTED,
    c.SPANS_DUPLICATE,
    c.GRAPH_CROSS_TENANT,
    c.GRAPH_DROPPED_FULL,
    c.POLICY_ERRORS,
    c.TRACES_MISROUTED,
)

COUNTERS = {
    name: Counter(f"tracehouse_streams_{name}", f"streams counter {name}", ["reason"])
    for name in COUNTER_NAMES
}

BUFFERED_TRACES = Gauge("tracehouse_streams_buffered_traces", "Traces awaiting a decision")
BUFFERED_BYTES = Gauge("tracehouse_streams_buffered_bytes", "Approximate bytes of buffered spans")
UNCOMMITTED_MESSAGES = Gauge(
    "tracehouse_streams_uncommitted_messages", "Raw messages held until decided and flushed"
)
DECISION_CACHE = Gauge("tracehouse_streams_decision_cache_entries", "Cached trace decisions")
GRAPH_WAITING = Gauge("tracehouse_streams_graph_waiting_halves", "Spans waiting for a partner")
MESSAGES_READ = Counter(
    "tracehouse_streams_raw_messages_read",
    "Raw messages read, by path: compiled (the OTLP scan) or protobuf (other encodings, the"
    " scan off or not built, or a message the scan left to protobuf)",
    ["path"],
)
OTLP_SCAN_ENABLED = Gauge(
    "tracehouse_streams_otlp_scan_enabled", "1 when the compiled OTLP pass is built and on"
)
OWNED_PARTITIONS = Gauge("tracehouse_streams_partitions", "Raw partitions owned by this worker")


def publish(deltas: dict[tuple[str, str], int]) -> None:
    for (name, reason), value in deltas.items():
        counter = COUNTERS.get(name)
        if counter is not None and value > 0:
            counter.labels(reason).inc(value)

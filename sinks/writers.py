"""Which topic goes to which table, and how: one :class:`TopicTable` per sunk stream.

A writer is pure data plus two pure functions, so the worker's exactly-once protocol
(intent -> insert with token -> commit) is written once and every table gets it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from core.settings import Settings
from schemas import span_batch_v3
from sinks.counter_columns import counter_rows, pipeline_counters_arrow
from sinks.packed_spans import otel_traces_from_packed
from sinks.window_columns import edge_rows, red_metrics_arrow, red_rows, service_graph_arrow


@dataclass(frozen=True)
class TopicTable:
    """How the messages of one sunk topic become rows of one ClickHouse table (schema, decoding,
    conversion); the worker does the writing."""

    stream: str
    avro_schema: str
    table: str
    # Schemas that evolve compatibly: the record is resolved to the newest schema, then
    # decoded Avro record -> rows (raises window_columns.InvalidRecord for contract breaches)
    # and the rows of one message -> the Arrow table inserted in one go.
    rows: Callable[[dict[str, Any]], list[Any]] | None = None
    arrow: Callable[[Sequence[Any]], pa.Table] | None = None
    # Schemas read as written instead (span_batch: packed columns, whose next version need not
    # be Avro-resolvable from this one): writer-schema version -> record-as-written -> Arrow
    # table. A version missing here is dead-lettered.
    by_version: Mapping[int, Callable[[dict[str, Any]], pa.Table]] = field(default_factory=dict)


WRITERS: dict[str, TopicTable] = {
    w.stream: w
    for w in (
        TopicTable(
            "spans",
            "span_batch",
            "otel_traces",
            by_version={span_batch_v3.VERSION: otel_traces_from_packed},
        ),
        TopicTable("red", "red_metrics", "red_metrics", red_rows, red_metrics_arrow),
        TopicTable("edges", "graph_edges", "service_graph_edges", edge_rows, service_graph_arrow),
        TopicTable(
            "accounting",
            "pipeline_counters",
            "pipeline_counters",
            counter_rows,
            pipeline_counters_arrow,
        ),
    )
}


def topic_of(settings: Settings, stream: str) -> str:
    return {
        "spans": settings.topics.sampled_spans,
        "red": settings.topics.red_metrics,
        "edges": settings.topics.graph_edges,
        "accounting": settings.topics.accounting,
    }[stream]


def writers_by_topic(settings: Settings) -> dict[str, TopicTable]:
    """The topics this worker sinks (``settings.sink_streams``) and their writers."""
    streams = [s.strip() for s in settings.sink_streams.split(",") if s.strip()]
    unknown = [s for s in streams if s not in WRITERS]
    if unknown or not streams:
        raise ValueError(f"sink_streams: unknown {unknown}; choose from {sorted(WRITERS)}")
    return {topic_of(settings, s): WRITERS[s] for s in streams}

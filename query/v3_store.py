"""ClickHouse reads of the api_v3 endpoints (HTTP and gRPC share them).

SQL lives in query/sql/v3_*.sql, except the search statement, which query/v3_search.py
assembles from the filters present. Span reads are capped exactly like the v1 API's (the same
per-trace and per-response limits and the same water-filling of the budget), and a trace's
time range comes from the otel_traces_trace_id_ts lookup table, so a read by id scans only the
partitions the trace lives in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from query.params import MAX_TIME_NS
from query.store import (
    LOOKBACK_DAYS,
    MAX_SPANS_PER_RESPONSE,
    MAX_SPANS_PER_TRACE,
    RANGE_SLACK_NS,
    SPAN_BLOCK_ROWS,
    per_trace_limit,
    sql,
)
from query.v3_params import V3Query
from query.v3_search import trace_ids_query


@dataclass(frozen=True)
class SpanRead:
    """Span rows of some traces (streamed; iterate once) and the spans stored per trace."""

    rows: Iterator[Sequence[Any]] = field(default_factory=lambda: iter(()))
    stored: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TraceRange:
    trace_ids: list[str]
    start_ns: int
    end_ns: int


def summary_json(row: Sequence[Any], orphans: int) -> dict[str, Any]:
    """A v3_trace_summaries.sql row -> TraceSummary in the proto3 JSON mapping."""
    trace_id, spans, errors, start_ns, end_ns, root, has_root, services = row
    root_service, root_op = root if has_root else ("", "")
    return {
        "traceId": trace_id,
        "rootServiceName": root_service,
        "rootOperationName": root_op,
        "minStartTimeUnixNano": str(int(start_ns)),
        "maxEndTimeUnixNano": str(int(end_ns)),
        "spanCount": int(spans),
        "errorSpanCount": int(errors),
        "orphanSpanCount": int(orphans),
        "services": [
            {"name": name, "spanCount": int(n), "errorSpanCount": int(e)} for name, n, e in services
        ],
    }


class V3Store:
    def __init__(self, client: Any) -> None:
        self._client = client

    def _rows(self, text: str, params: dict[str, Any]) -> list[Any]:
        return list(self._client.query(text, parameters=params).result_rows)

    def _stream(self, text: str, params: dict[str, Any]) -> Iterator[Sequence[Any]]:
        with self._client.query_rows_stream(
            text, parameters=params, settings={"max_block_size": SPAN_BLOCK_ROWS}
        ) as stream:
            yield from stream

    def services(self, tenant: str) -> list[str]:
        rows = self._rows(sql("v3_services"), {"tenant": tenant, "days": LOOKBACK_DAYS})
        return [str(r[0]) for r in rows]

    def operations(self, tenant: str, service: str, kind: str) -> list[tuple[str, str]]:
        rows = self._rows(
            sql("v3_operations"),
            {"tenant": tenant, "service": service, "kind": kind, "days": LOOKBACK_DAYS},
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def find_trace_ids(self, tenant: str, q: V3Query) -> list[str]:
        query = trace_ids_query(q, tenant)
        return [str(r[0]) for r in self._rows(query.text, query.params)]

    def trace_range(
        self, trace_ids: list[str], start_ns: int | None = None, end_ns: int | None = None
    ) -> TraceRange | None:
        """Where the traces' spans are stored, optionally narrowed to [start_ns, end_ns]."""
        if not trace_ids:
            return None
        ranges = self._rows(sql("v3_trace_range"), {"trace_ids": trace_ids})
        if not ranges:
            return None
        lo = max(0, min(int(r[1]) for r in ranges) - RANGE_SLACK_NS)
        hi = min(MAX_TIME_NS, max(int(r[2]) for r in ranges) + RANGE_SLACK_NS)
        if start_ns is not None:
            lo = max(lo, start_ns)
        if end_ns is not None:
            hi = min(hi, end_ns)
        if lo > hi:
            return None
        return TraceRange([str(r[0]) for r in ranges], lo, hi)

    def spans(
        self,
        tenant: str,
        where: TraceRange | None,
        max_per_trace: int = MAX_SPANS_PER_TRACE,
        max_total: int = MAX_SPANS_PER_RESPONSE,
    ) -> SpanRead:
        if where is None:
            return SpanRead()
        params = {
            "trace_ids": where.trace_ids,
            "start_ns": where.start_ns,
            "end_ns": where.end_ns,
            "tenant": tenant,
        }
        stored = {str(r[0]): int(r[1]) for r in self._rows(sql("v3_trace_span_counts"), params)}
        if not stored:
            return SpanRead()
        limit = per_trace_limit(list(stored.values()), max_total, max_per_trace)
        rows = self._stream(
            sql("v3_trace_spans"), {**params, "per_trace": limit, "max_rows": max_total}
        )
        return SpanRead(rows, stored)

    def dependencies(self, tenant: str, start_ns: int, end_ns: int) -> list[tuple[str, str, int]]:
        """Service-graph edges (streams joined them on all spans); from stored spans if none."""
        params = {"tenant": tenant, "start_ns": start_ns, "end_ns": end_ns}
        rows = self._rows(sql("graph_edges"), params)
        if not rows:
            rows = self._rows(sql("dependencies"), params)
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def summaries(self, tenant: str, trace_ids: list[str]) -> list[dict[str, Any]]:
        """TraceSummary JSON objects in the order of ``trace_ids`` (over all stored spans)."""
        where = self.trace_range(trace_ids)
        if where is None:
            return []
        params = {
            "trace_ids": where.trace_ids,
            "start_ns": where.start_ns,
            "end_ns": where.end_ns,
            "tenant": tenant,
        }
        rows = {str(r[0]): r for r in self._rows(sql("v3_trace_summaries"), params)}
        orphans = {str(r[0]): int(r[1]) for r in self._rows(sql("v3_orphan_counts"), params)}
        return [summary_json(rows[t], orphans.get(t, 0)) for t in trace_ids if t in rows]

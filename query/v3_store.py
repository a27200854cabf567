"""ClickHouse reads of the api_v3 endpoints (HTTP and gRPC share them).

SQL lives in query/sql/v3_*.sql, except the search statement, which query/v3_search.py
assembles from the filters present. Span reads are capped exactly like the v1 API's (the same
per-trace and per-response limits and the same water-filling of the budget), and a trace's
time range comes from the otel_traces_trace_id_ts lookup table, so a read by id scans only the
partitions the trace lives in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from query.attribute_indexes import ItemIndexes
from query.params import MAX_TIME_NS
from query.search_windows import newest_traces
from query.span_reads import RANGE_SLACK_NS, SpanRead, SpanReads
from query.store import (
    LOOKBACK_DAYS,
    MAX_SPANS_PER_RESPONSE,
    MAX_SPANS_PER_TRACE,
    bounded_sql,
    span_sql,
    sql,
)
from query.v3_params import V3Query
from query.v3_search import trace_ids_query

__all__ = ["SpanRead", "V3Store", "summary_json"]


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
        self._reads = SpanReads(client)
        self._rows = self._reads.rows
        self._item_indexes = ItemIndexes(client)

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
        def run(after_ns: int | None, before_ns: int | None) -> list[str]:
            query = trace_ids_query(q, tenant, after_ns, before_ns, self._item_indexes())
            return [str(r[0]) for r in self._rows(query.text, query.params)]

        # start_max is exclusive: the newest instant searched is start_max - 1.
        return newest_traces(run, q.start_min_ns, q.start_max_ns - 1, q.search_depth)

    def spans(
        self,
        tenant: str,
        trace_ids: list[str],
        start_ns: int | None = None,
        end_ns: int | None = None,
        max_per_trace: int = MAX_SPANS_PER_TRACE,
        max_total: int = MAX_SPANS_PER_RESPONSE,
    ) -> SpanRead:
        """Spans of the traces (the lookup table's range, narrowed to [start_ns, end_ns]).

        One statement for any number of traces (query.span_reads).
        """
        read = self._reads.capped(
            span_sql("v3_trace_spans"),
            tenant,
            trace_ids,
            max_per_trace,
            max_total,
            0 if start_ns is None else start_ns,
            MAX_TIME_NS if end_ns is None else end_ns,
        )
        return SpanRead() if read is None else read

    def dependencies(self, tenant: str, start_ns: int, end_ns: int) -> list[tuple[str, str, int]]:
        """Service-graph edges (streams joined them on all spans); from stored spans if none."""
        params = {"tenant": tenant, "start_ns": start_ns, "end_ns": end_ns}
        rows = self._rows(sql("graph_edges"), params)
        if not rows:
            rows = self._rows(sql("dependencies"), params)
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def summaries(self, tenant: str, trace_ids: list[str]) -> list[dict[str, Any]]:
        """TraceSummary JSON objects in the order of ``trace_ids`` (over all stored spans)."""
        if not trace_ids:
            return []
        params = {
            "trace_ids": trace_ids,
            "range_ids": trace_ids,
            "tenant": tenant,
            "slack_ns": RANGE_SLACK_NS,
        }
        rows = {str(r[0]): r for r in self._rows(bounded_sql("v3_trace_summaries"), params)}
        if not rows:
            return []
        # Every span of these traces starts within [first start, last end] of the summaries.
        bounds = {
            "start_ns": min(int(r[3]) for r in rows.values()),
            "end_ns": min(MAX_TIME_NS, max(int(r[4]) for r in rows.values())),
        }
        orphan_rows = self._rows(
            sql("v3_orphan_counts"), {"trace_ids": list(rows), "tenant": tenant, **bounds}
        )
        orphans = {str(r[0]): int(r[1]) for r in orphan_rows}
        return [summary_json(rows[t], orphans.get(t, 0)) for t in trace_ids if t in rows]

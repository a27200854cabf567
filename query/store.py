"""The query API's narrow read interface to ClickHouse; SQL lives in query/sql/*.sql.

Reads of whole traces are bounded: a trace can hold any number of spans (a batch job with
100k spans is 34 MB of Jaeger JSON and ~280 MB of query-process memory), so span rows are
capped in the SQL itself (``LIMIT n BY TraceId``) and the API marks capped traces with a
warning. ClickHouse never ships more rows than one response may hold.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from core.clickhouse import connect
from core.settings import Settings
from query.attribute_indexes import ItemIndexes
from query.params import MAX_TIME_NS, TraceQuery
from query.search_sql import search_query
from query.search_windows import newest_traces
from query.span_reads import (
    RANGE_SLACK_NS,
    SPAN_BLOCK_ROWS,
    SpanRead,
    SpanReads,
    TraceCounts,
    counted,
    level_sql,
    per_trace_limit,
    water_filled_sql,
)

__all__ = ["RANGE_SLACK_NS", "SPAN_BLOCK_ROWS", "TraceSpans", "TraceStore", "per_trace_limit"]

LOOKBACK_DAYS = 7
# Most spans of one trace returned by /api/traces/{id}: the first ones by start time. 20,000
# spans are ~7 MB of JSON and a bounded, measured slice of memory (see query/README.md).
MAX_SPANS_PER_TRACE = 20_000
# Most spans in one response of any kind (a search returns up to 1500 whole traces): shared
# fairly, small traces whole and the largest cut to a common level (see per_trace_limit).
MAX_SPANS_PER_RESPONSE = 20_000


@dataclass(frozen=True)
class TraceSpans:
    """Span rows of some traces plus what the API needs to order them and flag capped ones."""

    # Ordered by trace then start time; lazy (streamed from ClickHouse), iterate once.
    rows: Iterable[Sequence[Any]] = ()
    # Spans stored per trace; complete once ``rows`` has been consumed (query.span_reads).
    stored: dict[str, int] = field(default_factory=dict)
    # Trace ids in the order the response lists them (search: newest first).
    order: list[str] = field(default_factory=list)


def connect_for_queries(settings: Settings) -> Any:
    """A client safe for concurrent queries from the API's thread pool.

    clickhouse-connect ties a client to one server session by default and refuses concurrent
    queries in a session; the read side needs no session state, so it runs without one.
    """
    return connect(settings.clickhouse, settings.clickhouse_database, session=False)


@cache
def sql(name: str) -> str:
    return resources.files("query").joinpath(f"sql/{name}.sql").read_text()


@cache
def span_sql(name: str) -> tuple[str, str]:
    """A span statement (``trace_spans``, ``v3_trace_spans``) with the lookup-table bounds,
    completed with the caps: (cut at a given level, water-filled), query.span_reads."""
    return level_sql(sql("trace_bounds"), sql(name)), water_filled_sql(
        sql("trace_bounds"), sql(name)
    )


@cache
def bounded_sql(name: str) -> str:
    """A statement over whole traces, prefixed with trace_bounds.sql: the scalar ``bounds``,
    the time range of the traces in ``range_ids`` from the lookup table (one copy of it for
    every such statement; a prefix, never a marker substituted inside the text)."""
    return sql("trace_bounds") + sql(name)


class TraceStore:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._reads = SpanReads(client)
        self._rows = self._reads.rows
        self._item_indexes = ItemIndexes(client)

    def services(self, tenant: str) -> list[str]:
        rows = self._rows(sql("services"), {"tenant": tenant, "days": LOOKBACK_DAYS})
        return [r[0] for r in rows]

    def operations(self, tenant: str, service: str, kind: str = "") -> list[tuple[str, str]]:
        rows = self._rows(
            sql("operations"),
            {"tenant": tenant, "service": service, "days": LOOKBACK_DAYS, "kind": kind},
        )
        return [(r[0], r[1]) for r in rows]

    def spans_of(
        self,
        tenant: str,
        trace_ids: list[str],
        max_per_trace: int = MAX_SPANS_PER_TRACE,
        max_total: int = MAX_SPANS_PER_RESPONSE,
        *,
        archive: bool = True,
    ) -> TraceSpans:
        """Spans of the traces, ordered by trace then start time, at most the given caps.

        Ids not found in otel_traces are looked up in otel_traces_archive (unless ``archive``
        is off, as for search results, which come from otel_traces by definition). One id, and
        any number without the archive (search), is one statement (query.span_reads); several
        ids with the archive are counts of both tables first, since they share one budget.
        """
        if not trace_ids:
            return TraceSpans()
        if len(trace_ids) == 1 or not archive:
            read = self._reads.capped(
                span_sql("trace_spans"),
                tenant,
                trace_ids,
                max_per_trace,
                max_total,
            )
            if read is None and archive:  # one id, not in otel_traces: the archive, one read
                limit = max(1, min(max_per_trace, max_total))
                params = {"trace_ids": trace_ids, "tenant": tenant, "per_trace": limit}
                read = self._reads.first_or_none(
                    sql("archive_spans"), {**params, "max_rows": max_total}
                )
            return self._spans(read, trace_ids)
        # Several ids, some perhaps only archived: both sets share the response's budget.
        live = TraceCounts.of(
            self._rows(bounded_sql("trace_span_counts"), self._count_params(tenant, trace_ids))
        )
        missing = [t for t in trace_ids if t not in live.spans]
        archived: dict[str, int] = {}
        if missing:
            archived = {
                str(r[0]): int(r[1])
                for r in self._rows(
                    sql("archive_span_counts"), {"trace_ids": missing, "tenant": tenant}
                )
            }
        if not live.spans and not archived:
            return TraceSpans()
        limit = per_trace_limit(
            [*live.spans.values(), *archived.values()], max_total, max_per_trace
        )
        seen: dict[str, int] = {}
        rows: Iterable[Sequence[Any]] = ()
        if live.spans:
            params = live.span_params(tenant, limit, max_total)
            rows = counted(self._reads.stream(span_sql("trace_spans")[0], params), seen)
        if archived:
            params = {"trace_ids": list(archived), "tenant": tenant, "per_trace": limit}
            archive_rows = self._reads.stream(
                sql("archive_spans"), {**params, "max_rows": max_total}
            )
            rows = itertools.chain(rows, counted(archive_rows, seen))
        return TraceSpans(rows, seen, list(trace_ids))

    @staticmethod
    def _count_params(tenant: str, trace_ids: list[str]) -> dict[str, Any]:
        return {
            "trace_ids": trace_ids,
            "range_ids": trace_ids,
            "tenant": tenant,
            "slack_ns": RANGE_SLACK_NS,
            "start_ns": 0,
            "end_ns": MAX_TIME_NS,
        }

    @staticmethod
    def _spans(read: SpanRead | None, order: list[str]) -> TraceSpans:
        if read is None:
            return TraceSpans()
        return TraceSpans(read.rows, read.stored, list(order))

    def archive(self, tenant: str, trace_id: str) -> int:
        """Copy a stored trace into otel_traces_archive; the number of its spans (0: none)."""
        # One read of the lookup table (inside the count): the copy is bounded by the first and
        # last start the count found, which hold exactly the spans it counted.
        counts = self._rows(
            bounded_sql("trace_span_counts"), self._count_params(tenant, [trace_id])
        )
        if not counts:
            return 0
        params = {
            "trace_id": trace_id,
            "tenant": tenant,
            "start_ns": int(counts[0][2]),
            "end_ns": int(counts[0][3]),
        }
        self._client.command(sql("archive_trace"), parameters=params)
        return int(counts[0][1])

    def search(
        self,
        tenant: str,
        q: TraceQuery,
        max_per_trace: int = MAX_SPANS_PER_TRACE,
        max_total: int = MAX_SPANS_PER_RESPONSE,
    ) -> TraceSpans:
        """The newest matching traces, whole up to the span caps; ``order`` is newest first."""

        def run(after_ns: int | None, before_ns: int | None) -> list[str]:
            statement = search_query(tenant, q, after_ns, before_ns, self._item_indexes())
            return [str(r[0]) for r in self._rows(*statement)]

        found = newest_traces(run, q.start_ns, q.end_ns, q.limit)
        return self.spans_of(tenant, found, max_per_trace, max_total, archive=False)

    def dependencies(self, tenant: str, start_ns: int, end_ns: int) -> list[tuple[str, str, int]]:
        """Edges the streams workers joined on all spans; derived from stored spans if none.

        The service-graph table sees every span (before sampling), so its counts are the true
        call counts; stored spans are a fallback for data written without the streams stage.
        """
        params = {"tenant": tenant, "start_ns": start_ns, "end_ns": end_ns}
        rows = self._rows(sql("graph_edges"), params)
        if not rows:
            rows = self._rows(sql("dependencies"), params)
        return [(r[0], r[1], int(r[2])) for r in rows]

    def red_timeseries(
        self,
        tenant: str,
        service: str,
        operation: str,
        by_operation: bool,
        start_ns: int,
        end_ns: int,
        step: int,
    ) -> list[Any]:
        hourly = step >= 3600 and step % 3600 == 0
        text = (
            sql("red_timeseries")
            .replace("{table}", "red_metrics_1h" if hourly else "red_metrics")
            .replace("{sum_counts}", "sumForEachMerge" if hourly else "sumForEach")
        )
        return self._rows(
            text,
            {
                "tenant": tenant,
                "service": service,
                "operation": operation,
                "by_operation": int(by_operation),
                "start_ns": start_ns,
                "end_ns": end_ns,
                "step": step,
            },
        )

    def red_summary(self, tenant: str, service: str, start_ns: int, end_ns: int) -> list[Any]:
        return self._rows(
            sql("red_summary"),
            {"tenant": tenant, "service": service, "start_ns": start_ns, "end_ns": end_ns},
        )

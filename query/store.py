"""The query API's narrow read interface to ClickHouse; SQL lives in query/sql/*.sql."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import clickhouse_connect

from query.params import TraceQuery
from tracehouse.settings import Settings

LOOKBACK_DAYS = 7
# A trace's spans may start a little before the lookup table's Start (clock skew between
# services); widen the range scanned by this much.
RANGE_SLACK_NS = 60_000_000_000


def connect_for_queries(settings: Settings) -> Any:
    """A client safe for concurrent queries from the API's thread pool.

    clickhouse-connect ties a client to one server session by default and refuses concurrent
    queries in a session; the read side needs no session state, so it runs without one.
    """
    host, port = settings.clickhouse_host_port
    return clickhouse_connect.get_client(
        host=host,
        port=port,
        database=settings.clickhouse_database,
        compress="lz4",
        autogenerate_session_id=False,
        send_receive_timeout=60,
    )


@cache
def sql(name: str) -> str:
    return resources.files("query").joinpath(f"sql/{name}.sql").read_text()


def search_filters(q: TraceQuery) -> tuple[str, dict[str, Any]]:
    """AND-ed conditions and their parameters for the optional search fields."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    if q.operation:
        parts.append("AND SpanName = {operation:String}")
        params["operation"] = q.operation
    if q.min_duration_ns is not None:
        parts.append("AND Duration >= {min_ns:UInt64}")
        params["min_ns"] = q.min_duration_ns
    if q.max_duration_ns is not None:
        parts.append("AND Duration <= {max_ns:UInt64}")
        params["max_ns"] = q.max_duration_ns
    for i, (key, value) in enumerate(sorted(q.tags.items())):
        k, v = f"tk{i}", f"tv{i}"
        params[k], params[v] = key, value
        if key == "error":
            parts.append(f"AND ((StatusCode = 'Error') = ({{{v}:String}} = 'true'))")
        elif key == "span.kind":
            parts.append(f"AND lower(SpanKind) = lower({{{v}:String}})")
        elif key == "otel.status_code":
            parts.append(f"AND upper(StatusCode) = upper({{{v}:String}})")
        else:
            parts.append(
                f"AND (SpanAttributes[{{{k}:String}}] = {{{v}:String}} "
                f"OR ResourceAttributes[{{{k}:String}}] = {{{v}:String}})"
            )
    return "\n  ".join(parts), params


class TraceStore:
    def __init__(self, client: Any) -> None:
        self._client = client

    def _rows(self, text: str, params: dict[str, Any]) -> list[Any]:
        return list(self._client.query(text, parameters=params).result_rows)

    def services(self, tenant: str) -> list[str]:
        rows = self._rows(sql("services"), {"tenant": tenant, "days": LOOKBACK_DAYS})
        return [r[0] for r in rows]

    def operations(self, tenant: str, service: str, kind: str = "") -> list[tuple[str, str]]:
        rows = self._rows(
            sql("operations"),
            {"tenant": tenant, "service": service, "days": LOOKBACK_DAYS, "kind": kind},
        )
        return [(r[0], r[1]) for r in rows]

    def spans_of(self, tenant: str, trace_ids: list[str]) -> list[Any]:
        if not trace_ids:
            return []
        ranges = self._rows(sql("trace_range"), {"trace_ids": trace_ids})
        if not ranges:
            return []
        start = min(r[3] for r in ranges) - RANGE_SLACK_NS
        end = max(r[4] for r in ranges) + RANGE_SLACK_NS
        return self._rows(
            sql("trace_spans"),
            {
                "trace_ids": [r[0] for r in ranges],
                "start_ns": start,
                "end_ns": end,
                "tenant": tenant,
            },
        )

    def search(self, tenant: str, q: TraceQuery) -> list[Any]:
        filters, params = search_filters(q)
        text = sql("search_trace_ids").replace("{filters}", filters)
        found = self._rows(
            text,
            {
                **params,
                "tenant": tenant,
                "service": q.service,
                "start_ns": q.start_ns,
                "end_ns": q.end_ns,
                "limit": q.limit,
            },
        )
        order = [r[0] for r in found]
        rows = self.spans_of(tenant, order)
        rank = {t: i for i, t in enumerate(order)}
        rows.sort(key=lambda r: (rank.get(r[0], len(rank)), r[10]))
        return rows

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

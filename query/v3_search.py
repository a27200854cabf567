"""FindTraces conditions -> one parameterised ClickHouse query for matching trace ids (pure).

The IDL defines the semantics: every field is AND-ed and matched against *one span* (a trace
matches when at least one of its spans matches all of them); attributes match span or resource
attributes. The SQL is assembled from a fixed list of clauses here, each value a bound
parameter, so any combination of filters is one well-formed statement (no text template with
placeholders that a comment could also contain).

Attribute keys with a meaning beyond the attribute maps, as Jaeger's storages treat them:
``error`` (``true`` = status Error, anything else = not Error), ``span.kind`` (the span's kind,
any case) and ``otel.status_code`` (OK / ERROR / UNSET, any case).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from query.search_sql import item_parameter, map_match
from query.search_windows import window_conditions
from query.v3_params import V3Query


@dataclass(frozen=True)
class SqlQuery:
    text: str
    params: dict[str, Any]


def span_conditions(
    q: V3Query, tenant: str, item_index: bool = False
) -> tuple[list[str], dict[str, Any]]:
    """WHERE clauses (AND-ed) and their parameters for one matching span; ``item_index``: the
    attribute item arrays have their text indexes (query.search_sql.map_match)."""
    where = [
        "TenantId = {tenant:String}",
        "Timestamp >= fromUnixTimestamp64Nano({start_min_ns:Int64})",
        "Timestamp < fromUnixTimestamp64Nano({start_max_ns:Int64})",
    ]
    params: dict[str, Any] = {
        "tenant": tenant,
        "start_min_ns": q.start_min_ns,
        "start_max_ns": q.start_max_ns,
    }
    if q.service:
        where.append("ServiceName = {service:String}")
        params["service"] = q.service
    if q.operation:
        where.append("SpanName = {operation:String}")
        params["operation"] = q.operation
    if q.duration_min_ns is not None:
        where.append("Duration >= {duration_min_ns:UInt64}")
        params["duration_min_ns"] = q.duration_min_ns
    if q.duration_max_ns is not None:
        where.append("Duration <= {duration_max_ns:UInt64}")
        params["duration_max_ns"] = q.duration_max_ns
    for i, (key, value) in enumerate(sorted(q.attributes.items())):
        k, v = f"attr_key_{i}", f"attr_value_{i}"
        params[v] = value
        if key == "error":
            where.append(f"((StatusCode = 'Error') = ({{{v}:String}} = 'true'))")
        elif key == "span.kind":
            where.append(f"lower(SpanKind) = lower({{{v}:String}})")
        elif key == "otel.status_code":
            where.append(f"upper(StatusCode) = upper({{{v}:String}})")
        else:
            params[k] = key  # bound only where a map is read: the derived keys above are not
            item = item_parameter(params, f"attr_item_{i}", key, value, item_index)
            # Both maps are indexed, so the OR of the two still prunes granules.
            where.append(
                f"({map_match('SpanAttributes', k, v, item)}"
                f" OR {map_match('ResourceAttributes', k, v, item)})"
            )
    return where, params


def trace_ids_query(
    q: V3Query,
    tenant: str,
    after_ns: int | None = None,
    before_ns: int | None = None,
    item_index: bool = False,
) -> SqlQuery:
    """Newest matching traces first (by their latest matching span), at most search_depth.

    ``after_ns``/``before_ns`` further restrict the matching spans to start at or after /
    strictly before them (query.search_windows).
    """
    where, params = span_conditions(q, tenant, item_index)
    window, window_params = window_conditions(after_ns, before_ns)
    where += window
    params.update(window_params)
    text = (
        "SELECT TraceId, max(Timestamp) AS last_seen\n"
        "FROM otel_traces\n"
        "WHERE " + "\n  AND ".join(where) + "\n"
        "GROUP BY TraceId\n"
        "ORDER BY last_seen DESC, TraceId\n"
        "LIMIT {search_depth:UInt32}"
    )
    return SqlQuery(text, {**params, "search_depth": q.search_depth})

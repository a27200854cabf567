"""A trace search (query.params.TraceQuery) -> one parameterised ClickHouse query (pure).

The statement is assembled from a list of conditions, never by substituting a marker in a
template: the old ``{filters}`` marker also appeared in a comment of the .sql file, so every
search with two or more filters put conditions above ``SELECT`` (ClickHouse code 62). Values
travel only as ClickHouse query parameters; the SQL text holds nothing a client typed.

Matching follows Jaeger's storage backends: one span of the trace must satisfy the service,
operation, duration range and every tag at once, and the trace's rank is the start time of its
newest matching span. A tag ``k=v`` matches when any of the span's tags, as the API renders
them (query/jaeger_model.py), has key ``k`` and a value whose text is ``v``: a span attribute,
a resource (process) attribute other than ``service.name``, an event (log) attribute or event
name (log field ``event``), or a tag the API derives from a column (``span.kind``, ``error``,
``otel.status_code`` ...). ClickHouse stores every attribute as text, so ``200`` matches an
int attribute 200 and the string "200" alike, as Jaeger's tag search does.
"""

from __future__ import annotations

from typing import Any

from query.params import TraceQuery
from query.search_windows import window_conditions

# Span kinds as the API renders them in the span.kind tag -> the SpanKind column's spelling.
KIND_COLUMN = {
    "server": "Server",
    "client": "Client",
    "producer": "Producer",
    "consumer": "Consumer",
    "internal": "Internal",
}
# Status as the API renders the otel.status_code tag -> the StatusCode column's spelling.
STATUS_COLUMN = {"ERROR": "Error", "OK": "Ok"}
# Tags the API renders from a plain text column when that column is not empty.
COLUMN_TAGS = {
    "otel.status_description": "StatusMessage",
    "otel.scope.name": "ScopeName",
    "otel.scope.version": "ScopeVersion",
    "w3c.tracestate": "TraceState",
}


def _derived_tag(key: str, value: str, v: str) -> str | None:
    """The condition for a tag the API derives from a column, or None if none can match."""
    if key == "span.kind":
        kind = KIND_COLUMN.get(value)
        return None if kind is None else f"SpanKind = '{kind}'"
    if key == "error":
        return "StatusCode = 'Error'" if value == "true" else None
    if key == "otel.status_code":
        status = STATUS_COLUMN.get(value)
        return None if status is None else f"StatusCode = '{status}'"
    if key == "event":
        return f"has(Events.Name, {{{v}:String}})"
    column = COLUMN_TAGS.get(key)
    if column is not None and value:
        return f"{column} = {{{v}:String}}"
    return None


def item_parameter(
    params: dict[str, Any], name: str, key: str, value: str, item_index: bool
) -> str | None:
    """With ``item_index``, puts the tag's ``'key=value'`` item (the text the ALIAS item columns
    hold) into ``params`` under ``name`` and returns that name for :func:`map_match`."""
    if not item_index:
        return None
    params[name] = f"{key}={value}"
    return name


def map_match(column: str, k: str, v: str, item: str | None) -> str:
    """The span's map ``column`` (SpanAttributes, ResourceAttributes) holds key k with value v;
    ``k``/``v`` name the query parameters. The lookup comes first (``m[k] = v``) and the key's
    presence second, which matters only for an empty value (a missing key reads as ''). With
    ``item`` (the parameter holding ``'k=v'``) the pair must also be among the map's items, a
    necessary condition its text index answers without reading the map
    (query/attribute_indexes.py)."""
    items = column.removesuffix("s") + "Items"
    lookup = f"{column}[{{{k}:String}}] = {{{v}:String}} AND mapContains({column}, {{{k}:String}})"
    if item is None:
        return f"({lookup})"
    return f"(has({items}, {{{item}:String}}) AND {lookup})"


def tag_options(key: str, value: str, k: str, v: str, item: str | None = None) -> list[str]:
    """The ways a span can match tag key=value, any one suffices; ``k``/``v`` (and ``item``,
    see :func:`map_match`) name the query parameters holding them."""
    options = [
        map_match("SpanAttributes", k, v, item),
        f"arrayExists(a -> a[{{{k}:String}}] = {{{v}:String}} AND mapContains(a, {{{k}:String}}), "
        "Events.Attributes)",
    ]
    if key != "service.name":  # the process's serviceName, not one of its tags
        options.insert(1, map_match("ResourceAttributes", k, v, item))
    derived = _derived_tag(key, value, v)
    if derived is not None:
        options.append(derived)
    return options


def tag_condition(key: str, value: str, k: str, v: str, item: str | None = None) -> str:
    """Span matches tag key=value (any of :func:`tag_options`)."""
    return "(" + " OR ".join(tag_options(key, value, k, v, item)) + ")"


def search_query(
    tenant: str,
    q: TraceQuery,
    after_ns: int | None = None,
    before_ns: int | None = None,
    item_index: bool = False,
) -> tuple[str, dict[str, Any]]:
    """SQL text and parameters returning (TraceId, last_seen) of the newest matching traces.

    Ties on last_seen are broken by TraceId so a LIMIT cut is deterministic (the property
    test compares the cut with a reference). ``after_ns``/``before_ns`` further restrict the
    matching spans to start at or after / strictly before them (query.search_windows).
    ``item_index``: the attribute item arrays have their text indexes (map_match).
    """
    conditions = [
        "TenantId = {tenant:String}",
        "ServiceName = {service:String}",
        "Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})",
        "Timestamp <= fromUnixTimestamp64Nano({end_ns:Int64})",
    ]
    params: dict[str, Any] = {
        "tenant": tenant,
        "service": q.service,
        "start_ns": q.start_ns,
        "end_ns": q.end_ns,
        "limit": q.limit,
    }
    if q.operation:
        conditions.append("SpanName = {operation:String}")
        params["operation"] = q.operation
    if q.min_duration_ns is not None:
        conditions.append("Duration >= {min_ns:UInt64}")
        params["min_ns"] = q.min_duration_ns
    if q.max_duration_ns is not None:
        conditions.append("Duration <= {max_ns:UInt64}")
        params["max_ns"] = q.max_duration_ns
    window, window_params = window_conditions(after_ns, before_ns)
    conditions += window
    params.update(window_params)
    branches = [""]
    for i, (key, value) in enumerate(sorted(q.tags.items())):
        k, v = f"tk{i}", f"tv{i}"
        params[k], params[v] = key, value
        item = item_parameter(params, f"tkv{i}", key, value, item_index)
        if i == 0:
            options = tag_options(key, value, k, v, item)
            branches = [f"\n  AND {option}" for option in options]
        else:
            conditions.append(tag_condition(key, value, k, v, item))
    where = "\n  AND ".join(conditions)
    order = "ORDER BY last_seen DESC, TraceId DESC\nLIMIT {limit:UInt32}"
    if len(branches) == 1:
        return (
            f"SELECT TraceId, max(Timestamp) AS last_seen\nFROM otel_traces\nWHERE {where}"
            f"{branches[0]}\nGROUP BY TraceId\n{order}",
            params,
        )
    # One scan per way the first tag can match: each scan's tag test is a plain AND that the
    # attribute indexes prune granules with, where the OR of all ways in one scan (event
    # attributes have no index) reads every attribute map of the window (10M spans: 0.38 s
    # for a tag no span has, against 0.05 s for the branches). Each scan ranks its own traces
    # and keeps the first ``limit``; that loses nothing, since a trace's rank is the best of
    # its ranks in the scans, so a trace below ``limit`` others in its best scan is below them
    # overall. The outer query merges those few rows (on a sharded layout each shard sends
    # ``limit`` rows per scan, not its matching spans).
    scans = "\nUNION ALL\n".join(
        f"(SELECT TraceId, max(Timestamp) AS seen\nFROM otel_traces\nWHERE {where}{branch}"
        "\nGROUP BY TraceId\nORDER BY seen DESC, TraceId DESC\nLIMIT {limit:UInt32})"
        for branch in branches
    )
    text = f"SELECT TraceId, max(seen) AS last_seen\nFROM (\n{scans}\n)\nGROUP BY TraceId\n{order}"
    return text, params

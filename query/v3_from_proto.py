"""api_v3 request messages (gRPC, or HTTP POST bodies in the proto3 JSON mapping) -> V3Query.

The same bounds as the HTTP GET parameters apply (query.v3_params), so every binding refuses
the same requests with the same messages.
"""

from __future__ import annotations

from typing import Any

from query.api_v3_proto import has_structured_filter
from query.params import MAX_DURATION_NS, MAX_TIME_NS, BadRequestError
from query.v3_params import V3Query, check_query, clamp_depth


def timestamp_ns(ts: Any, name: str) -> int:
    ns = int(ts.seconds) * 1_000_000_000 + int(ts.nanos)
    if not 0 <= ns <= MAX_TIME_NS or not 0 <= ts.nanos < 1_000_000_000:
        raise BadRequestError(f"{name} is outside 1970-01-01 .. 2262-04-11")
    return ns


def duration_ns(d: Any, name: str) -> int:
    ns = int(d.seconds) * 1_000_000_000 + int(d.nanos)
    if not 0 <= ns <= MAX_DURATION_NS:
        raise BadRequestError(f"{name} must be between 0 and 2562047h47m16.854775807s")
    return ns


def query_from_proto(q: Any) -> V3Query:
    """A TraceQueryParameters message -> V3Query; start_time_min and max are required."""
    if has_structured_filter(q):
        raise BadRequestError("query.filter (structured filters) is not supported")
    if not q.HasField("start_time_min") or not q.HasField("start_time_max"):
        raise BadRequestError("query.startTimeMin and query.startTimeMax are required")
    return check_query(
        V3Query(
            start_min_ns=timestamp_ns(q.start_time_min, "query.startTimeMin"),
            start_max_ns=timestamp_ns(q.start_time_max, "query.startTimeMax"),
            service=q.service_name,
            operation=q.operation_name,
            attributes=dict(q.attributes),
            duration_min_ns=(
                duration_ns(q.duration_min, "query.durationMin")
                if q.HasField("duration_min")
                else None
            ),
            duration_max_ns=(
                duration_ns(q.duration_max, "query.durationMax")
                if q.HasField("duration_max")
                else None
            ),
            search_depth=clamp_depth(q.search_depth),
            raw_traces=q.raw_traces,
        )
    )

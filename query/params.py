"""Jaeger query-string parameters -> a typed search request (pure, so it is unit-tested).

Grafana's Jaeger data source and Jaeger UI send durations as Go duration strings ("1.5s",
"200ms"), times as Unix microseconds, and tags either as a JSON object (`tags={"k":"v"}`) or as
repeated `tag=k:v`. Anything unparseable is a 400 with a message, never a 500.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
DEFAULT_LOOKBACK_NS = 3_600_000_000_000
DEFAULT_LIMIT = 20
MAX_LIMIT = 1500


class BadRequestError(ValueError):
    """A parameter the client must fix (HTTP 400)."""


def parse_duration_ns(text: str) -> int:
    """Go's time.ParseDuration subset Jaeger uses: a sequence of number+unit, e.g. 1h30m."""
    text = text.strip()
    if not text:
        raise BadRequestError("empty duration")
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS_NS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise BadRequestError(f"invalid duration {text!r} (use e.g. 250ms, 1.5s, 2m)")
    return int(total)


def parse_tags(tags_json: Sequence[str], tag_pairs: Sequence[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for raw in tags_json:
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BadRequestError(f"tags must be a JSON object: {exc}") from exc
        if not isinstance(doc, dict):
            raise BadRequestError("tags must be a JSON object")
        tags.update({str(k): _tag_value(v) for k, v in doc.items()})
    for pair in tag_pairs:
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise BadRequestError(f"tag must be key:value, got {pair!r}")
        tags[key] = value
    return tags


def _tag_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@dataclass(frozen=True)
class TraceQuery:
    service: str
    operation: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    start_ns: int = 0
    end_ns: int = 0
    limit: int = DEFAULT_LIMIT


def _int(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise BadRequestError(f"{name} must be an integer, got {raw!r}") from exc


def parse_trace_query(
    params: Mapping[str, str],
    tags_json: Sequence[str],
    tag_pairs: Sequence[str],
    now_ns: int | None = None,
) -> TraceQuery:
    service = params.get("service", "")
    if not service:
        raise BadRequestError("parameter 'service' is required")
    now_ns = time.time_ns() if now_ns is None else now_ns
    end_us = _int(params, "end")
    end_ns = end_us * 1000 if end_us is not None else now_ns
    start_us = _int(params, "start")
    if start_us is not None:
        start_ns = start_us * 1000
    else:
        lookback = params.get("lookback", "")
        lookback_ns = (
            parse_duration_ns(lookback)
            if lookback and lookback != "custom"
            else DEFAULT_LOOKBACK_NS
        )
        start_ns = end_ns - lookback_ns
    if start_ns > end_ns:
        raise BadRequestError("start must not be after end")
    limit = _int(params, "limit") or DEFAULT_LIMIT
    if limit < 1:
        raise BadRequestError("limit must be positive")
    min_d = params.get("minDuration", "")
    max_d = params.get("maxDuration", "")
    query = TraceQuery(
        service=service,
        operation=params.get("operation", "") if params.get("operation") != "all" else "",
        tags=parse_tags(tags_json, tag_pairs),
        min_duration_ns=parse_duration_ns(min_d) if min_d else None,
        max_duration_ns=parse_duration_ns(max_d) if max_d else None,
        start_ns=start_ns,
        end_ns=end_ns,
        limit=min(limit, MAX_LIMIT),
    )
    if (
        query.min_duration_ns is not None
        and query.max_duration_ns is not None
        and query.min_duration_ns > query.max_duration_ns
    ):
        raise BadRequestError("minDuration must not exceed maxDuration")
    return query

"""api_v3 HTTP parameters -> typed, bounded values (pure).

Jaeger's api_v3 HTTP binding (jaeger-idl proto/api_v3/query_service.proto plus Jaeger's HTTP
gateway) names FindTraces fields ``query.<field>``, accepting both the proto3 JSON camelCase
names (``query.serviceName``, what Jaeger UI >= 2.19 sends) and the older snake_case ones
(``query.service_name``); the camelCase name wins when both are present. Times are RFC 3339
with nanoseconds, durations Go duration strings (which also covers the proto3 JSON "1.5s"
form), attributes a JSON object of strings. Every value is bounded like the v1 parameters
(query.params), so a bad one is a 400 naming the parameter, never a ClickHouse error.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from query.params import (
    MAX_LIMIT,
    MAX_NAME_LENGTH,
    MAX_TAGS,
    MAX_TAGS_JSON_LENGTH,
    MAX_TIME_NS,
    BadRequestError,
    parse_duration_ns,
    parse_int,
)

# Jaeger's default when query.search_depth is absent (its HTTP gateway uses 100).
DEFAULT_SEARCH_DEPTH = 100
# RFC 3339: date, 'T' (or space), time with up to 9 fractional digits, 'Z' or an offset.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_HEX = re.compile(r"[0-9a-fA-F]{1,32}")
# Go's strconv.ParseBool spellings (Jaeger parses raw_traces and groupByOperation with it).
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_ECHO = 40


def _echo(raw: str) -> str:
    return repr(raw if len(raw) <= _ECHO else raw[:_ECHO] + "…")


def pick(params: Mapping[str, str], canonical: str, legacy: str) -> tuple[str, str]:
    """(value, name used): the camelCase name if non-empty, else the snake_case alias."""
    value = params.get(canonical, "")
    if value:
        return value, canonical
    return params.get(legacy, ""), legacy


def parse_bool(raw: str, name: str) -> bool:
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise BadRequestError(f"parameter {name!r} must be true or false, got {_echo(raw)}")


def parse_rfc3339_ns(raw: str, name: str) -> int:
    """An RFC 3339 time -> Unix ns, exact to the nanosecond, within [0, 2^63-1] ns."""
    m = _RFC3339.fullmatch(raw.strip()) if len(raw) <= 64 else None
    if m is None:
        raise BadRequestError(
            f"parameter {name!r} must be an RFC 3339 time such as "
            f"2026-01-02T03:04:05.123456789Z, got {_echo(raw)}"
        )
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = (m.group(7) or "").ljust(9, "0")
    zone = m.group(8)
    try:
        base = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise BadRequestError(f"parameter {name!r}: {exc} in {_echo(raw)}") from exc
    offset_s = 0
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        hh, mm = int(zone[1:3]), int(zone[4:6])
        if hh > 23 or mm > 59:
            raise BadRequestError(f"parameter {name!r}: bad time zone offset in {_echo(raw)}")
        offset_s = sign * (hh * 3600 + mm * 60)
    # Whole seconds via the epoch difference (exact integers; no float timestamp()).
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    seconds = (base - epoch).days * 86_400 + (base - epoch).seconds - offset_s
    ns = seconds * 1_000_000_000 + int(frac)
    if not 0 <= ns <= MAX_TIME_NS:
        raise BadRequestError(
            f"parameter {name!r} must be between 1970-01-01T00:00:00Z and "
            f"2262-04-11T23:47:16.854775807Z, got {_echo(raw)}"
        )
    return ns


def format_rfc3339_ns(ns: int) -> str:
    """Unix ns -> RFC 3339 with 'Z' and only the fractional digits needed (proto3 JSON style)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        digits = f"{frac:09d}"
        if digits[3:] == "000000":
            digits = digits[:3]
        elif digits[6:] == "000":
            digits = digits[:6]
        text += "." + digits
    return text + "Z"


def parse_trace_id(raw: str) -> str:
    """A trace id as Jaeger's v3 gateway accepts it: 1-32 hex digits or base64 of 8/16 bytes.

    Returned as 32 lowercase hex digits, the form otel_traces stores.
    """
    if _HEX.fullmatch(raw):
        return raw.lower().rjust(32, "0")
    if 0 < len(raw) <= 24:
        padded = raw + "=" * (-len(raw) % 4)
        for alphabet in (b"+/", b"-_"):
            try:
                data = base64.b64decode(padded, altchars=alphabet, validate=True)
            except (binascii.Error, ValueError):
                continue
            if len(data) in (8, 16):
                return data.hex().rjust(32, "0")
    raise BadRequestError(
        f"malformed parameter trace_id: {_echo(raw)} is not a 64- or 128-bit hex or base64 id"
    )


def parse_attributes(raw: str) -> dict[str, str]:
    """``query.attributes``: a JSON object of string values (Jaeger's map<string,string>)."""
    if len(raw) > MAX_TAGS_JSON_LENGTH:
        raise BadRequestError(
            f"parameter 'query.attributes' is longer than {MAX_TAGS_JSON_LENGTH} characters"
        )
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadRequestError(f"malformed parameter query.attributes: {exc}") from exc
    if not isinstance(doc, dict):
        raise BadRequestError("malformed parameter query.attributes: must be a JSON object")
    return check_attributes(doc)


def check_attributes(doc: Mapping[Any, Any]) -> dict[str, str]:
    """Keys non-empty strings, values strings, sizes bounded (shared by HTTP and gRPC)."""
    out: dict[str, str] = {}
    for key, value in doc.items():
        if not isinstance(key, str) or not key:
            raise BadRequestError("malformed parameter query.attributes: empty key")
        if not isinstance(value, str):
            raise BadRequestError(
                f"malformed parameter query.attributes: the value of {_echo(key)} must be a string"
            )
        if len(key) > MAX_NAME_LENGTH or len(value) > MAX_NAME_LENGTH:
            raise BadRequestError(
                f"parameter 'query.attributes': keys and values are at most "
                f"{MAX_NAME_LENGTH} characters"
            )
        out[key] = value
    if len(out) > MAX_TAGS:
        raise BadRequestError(f"at most {MAX_TAGS} attributes can be searched at once")
    return out


def check_name(value: str, name: str) -> str:
    if len(value) > MAX_NAME_LENGTH:
        raise BadRequestError(f"parameter {name!r} is longer than {MAX_NAME_LENGTH} characters")
    return value


@dataclass(frozen=True)
class V3Query:
    """TraceQueryParameters after validation; every field of it is AND-ed on one span."""

    start_min_ns: int
    start_max_ns: int  # exclusive
    service: str = ""
    operation: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    duration_min_ns: int | None = None
    duration_max_ns: int | None = None
    search_depth: int = DEFAULT_SEARCH_DEPTH
    raw_traces: bool = False


def check_query(q: V3Query) -> V3Query:
    """The cross-field rules, shared by the HTTP and gRPC bindings."""
    if not q.start_min_ns < q.start_max_ns:
        raise BadRequestError("query.startTimeMin must be before query.startTimeMax")
    if (
        q.duration_min_ns is not None
        and q.duration_max_ns is not None
        and q.duration_min_ns > q.duration_max_ns
    ):
        raise BadRequestError("query.durationMin must not exceed query.durationMax")
    check_name(q.service, "query.serviceName")
    check_name(q.operation, "query.operationName")
    check_attributes(q.attributes)
    return q


def clamp_depth(depth: int) -> int:
    """search_depth: <= 0 means the default; above MAX_LIMIT is clamped like v1's limit."""
    return DEFAULT_SEARCH_DEPTH if depth <= 0 else min(depth, MAX_LIMIT)


def parse_find_query(params: Mapping[str, str]) -> V3Query:
    """GET /api/v3/traces and /api/v3/trace-summaries query parameters."""
    if params.get("query.filter"):
        # Jaeger refuses the structured filter unless a feature gate is on; ignoring it would
        # answer with more traces than were asked for.
        raise BadRequestError("parameter 'query.filter' (structured filters) is not supported")
    service, service_name = pick(params, "query.serviceName", "query.service_name")
    operation, operation_name = pick(params, "query.operationName", "query.operation_name")
    tmin, tmin_name = pick(params, "query.startTimeMin", "query.start_time_min")
    tmax, tmax_name = pick(params, "query.startTimeMax", "query.start_time_max")
    if not tmin or not tmax:
        raise BadRequestError("query.startTimeMin and query.startTimeMax are required")
    depth_raw, depth_name = pick(params, "query.searchDepth", "query.search_depth")
    if not depth_raw:
        depth_raw, depth_name = params.get("query.num_traces", ""), "query.num_traces"
    depth = (
        parse_int(depth_raw, depth_name, -(2**31), 2**31 - 1, "a 32-bit integer")
        if depth_raw
        else 0
    )
    dmin, dmin_name = pick(params, "query.durationMin", "query.duration_min")
    dmax, dmax_name = pick(params, "query.durationMax", "query.duration_max")
    raw, raw_name = pick(params, "query.rawTraces", "query.raw_traces")
    attrs = params.get("query.attributes", "")
    return check_query(
        V3Query(
            start_min_ns=parse_rfc3339_ns(tmin, tmin_name),
            start_max_ns=parse_rfc3339_ns(tmax, tmax_name),
            service=check_name(service, service_name),
            operation=check_name(operation, operation_name),
            attributes=parse_attributes(attrs) if attrs else {},
            duration_min_ns=parse_duration_ns(dmin, dmin_name) if dmin else None,
            duration_max_ns=parse_duration_ns(dmax, dmax_name) if dmax else None,
            search_depth=clamp_depth(depth),
            raw_traces=parse_bool(raw, raw_name) if raw else False,
        )
    )


@dataclass(frozen=True)
class GetTraceParams:
    trace_id: str
    start_ns: int | None = None
    end_ns: int | None = None
    raw_traces: bool = False


def parse_get_trace(trace_id: str, params: Mapping[str, str]) -> GetTraceParams:
    start, start_name = pick(params, "startTime", "start_time")
    end, end_name = pick(params, "endTime", "end_time")
    raw, raw_name = pick(params, "rawTraces", "raw_traces")
    out = GetTraceParams(
        trace_id=parse_trace_id(trace_id),
        start_ns=parse_rfc3339_ns(start, start_name) if start else None,
        end_ns=parse_rfc3339_ns(end, end_name) if end else None,
        raw_traces=parse_bool(raw, raw_name) if raw else False,
    )
    if out.start_ns is not None and out.end_ns is not None and out.start_ns > out.end_ns:
        raise BadRequestError("startTime must not be after endTime")
    return out


def parse_dependencies_range(params: Mapping[str, str]) -> tuple[int, int]:
    """GetDependencies: startTime and endTime (RFC 3339) are both required, start <= end."""
    start, start_name = pick(params, "startTime", "start_time")
    end, end_name = pick(params, "endTime", "end_time")
    if not start or not end:
        raise BadRequestError("startTime and endTime are required")
    start_ns, end_ns = parse_rfc3339_ns(start, start_name), parse_rfc3339_ns(end, end_name)
    if start_ns > end_ns:
        raise BadRequestError("startTime must not be after endTime")
    return start_ns, end_ns


def dependencies_json(edges: list[tuple[str, str, int]]) -> dict[str, Any]:
    """DependenciesResponse in proto3 JSON (call_count is uint64: a decimal string)."""
    return {"dependencies": [{"parent": p, "child": c, "callCount": str(n)} for p, c, n in edges]}


SPAN_KIND_NAMES = {
    "server": "Server",
    "client": "Client",
    "producer": "Producer",
    "consumer": "Consumer",
    "internal": "Internal",
    "unspecified": "Unspecified",
}


def parse_operations_kind(raw: str) -> str:
    """spanKind of /api/v3/operations as stored (``Server``), "" for any."""
    if not raw:
        return ""
    stored = SPAN_KIND_NAMES.get(raw.lower())
    if stored is None:
        raise BadRequestError(
            f"parameter 'spanKind' must be one of {', '.join(SPAN_KIND_NAMES)}, got {_echo(raw)}"
        )
    return stored

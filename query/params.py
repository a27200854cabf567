"""Query-string parameters -> typed, bounded values (pure, so it is unit- and property-tested).

Grafana's Jaeger data source and Jaeger UI send durations as Go duration strings ("1.5s",
"200ms"), times as Unix microseconds (milliseconds for /api/dependencies), and tags either as a
JSON object (`tags={"k":"v"}`) or as repeated `tag=k:v`.

Every value is checked against a bound *before* it reaches Python arithmetic or a ClickHouse
parameter: Python integers never overflow, so an unchecked 400-digit value would only fail
later as an Int64/UInt32 conversion error in ClickHouse (a 500), and a time beyond
DateTime64(9) would wrap silently. Anything out of bounds or unparseable raises
:class:`BadRequestError` naming the parameter; the API turns it into a 400 Jaeger envelope.
README.md in this package lists the bounds.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from schemas.attribute_text import double_text
from schemas.span_limits import MAX_TIME_UNIX_NANO

# -- bounds -------------------------------------------------------------------------------------
# Times: DateTime64(9) stores Int64 nanoseconds, so the latest storable instant is 2^63-1 ns
# (2262-04-11). A time parameter in a coarser unit is bounded so that, scaled to ns, it still fits.
MAX_TIME_NS = MAX_TIME_UNIX_NANO
MAX_TIME_US = MAX_TIME_NS // 1_000
MAX_TIME_MS = MAX_TIME_NS // 1_000_000
# Durations are compared with the UInt64 Duration column and subtracted from Int64 times;
# Go's time.Duration (what Jaeger parses them into) has the same int64 ns ceiling.
MAX_DURATION_NS = MAX_TIME_NS
# Longest accepted text of a number or duration: int64 needs 19 digits; Go durations like
# "1h2m3.000000001s" are far shorter than this. Longer input is refused before any parsing.
MAX_NUMBER_TEXT = 64
# Service, operation and span-kind strings: far above real names, low enough to echo safely.
MAX_NAME_LENGTH = 1024
# Tags: each becomes one SQL condition; the JSON form is size-capped before json.loads, and
# nesting is refused (values must be scalars), so no recursion limit is reachable.
MAX_TAGS = 32
MAX_TAGS_JSON_LENGTH = 4096
DEFAULT_LOOKBACK_NS = 3_600_000_000_000
DEFAULT_LIMIT = 20
# Traces per search: larger values are clamped (Jaeger UI offers at most 1500).
MAX_LIMIT = 1500
MAX_LIMIT_TEXT_VALUE = 2**63 - 1  # a limit that does not fit int64 is a 400, not a clamp
SPAN_KINDS = ("server", "client", "producer", "consumer", "internal")
# Shown in messages instead of a whole oversized value.
_ECHO = 40

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu (Go accepts both)
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
# ASCII digits only: Python's \d and int() also accept other scripts' digits, Go does not.
_DURATION = re.compile(
    r"([0-9]+)(?:\.([0-9]*))?(ns|us|µs|μs|ms|s|m|h)|\.([0-9]+)(ns|us|µs|μs|ms|s|m|h)"
)
_INTEGER = re.compile(r"-?[0-9]+")


class BadRequestError(ValueError):
    """A parameter the client must fix (HTTP 400); the message names the parameter."""


def _echo(raw: str) -> str:
    """The value as quoted in an error message, shortened so a huge input is not sent back."""
    return repr(raw if len(raw) <= _ECHO else raw[:_ECHO] + "…")


def format_duration_ns(ns: int) -> str:
    """Go-style text of a duration in ns, exact (used in messages and by round-trip tests)."""
    if ns == 0:
        return "0s"
    parts = []
    for unit in ("h", "m", "s", "ms", "us", "ns"):
        size = _UNITS_NS[unit]
        if ns >= size:
            parts.append(f"{ns // size}{unit}")
            ns %= size
    return "".join(parts)


def parse_duration_ns(text: str, name: str = "duration") -> int:
    """Go's time.ParseDuration as Jaeger uses it: number+unit pairs, e.g. 1h30m, 1.5ms.

    Arithmetic is exact on integers (no float rounding of 2.000000001s), fractions below 1 ns
    truncate as in Go, and the result must fit int64 nanoseconds like a Go time.Duration.
    """
    text = text.strip()
    if not text:
        raise BadRequestError(f"parameter {name!r}: empty duration")
    if len(text) > MAX_NUMBER_TEXT:
        raise BadRequestError(
            f"parameter {name!r}: invalid duration {_echo(text)} "
            f"(longer than {MAX_NUMBER_TEXT} characters)"
        )
    if text == "0":  # Go accepts a bare zero
        return 0
    pos, total = 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        if m.group(1) is not None:
            whole, frac, unit = m.group(1), m.group(2) or "", m.group(3)
        else:
            whole, frac, unit = "0", m.group(4), m.group(5)
        size = _UNITS_NS[unit]
        total += int(whole) * size + (int(frac) * size // 10 ** len(frac) if frac else 0)
        pos = m.end()
    if pos != len(text):
        raise BadRequestError(
            f"parameter {name!r}: invalid duration {_echo(text)} (use e.g. 250ms, 1.5s, 2m)"
        )
    if total > MAX_DURATION_NS:
        raise BadRequestError(
            f"parameter {name!r}: duration {_echo(text)} is out of range "
            f"(at most {format_duration_ns(MAX_DURATION_NS)})"
        )
    return total


def parse_int(raw: str, name: str, lo: int, hi: int, what: str = "an integer") -> int:
    """A decimal integer within [lo, hi]; anything else is a 400 naming the parameter.

    The text is length-checked and matched against ASCII digits before int(), so neither a
    4,000-digit value (int() refuses those with ValueError after quadratic work) nor
    "1_000"/Unicode digits (which int() accepts and Go does not) get through.
    """
    text = raw.strip()
    if len(text) > MAX_NUMBER_TEXT or not _INTEGER.fullmatch(text):
        raise BadRequestError(f"parameter {name!r} must be {what}, got {_echo(raw)}")
    value = int(text)
    if not lo <= value <= hi:
        raise BadRequestError(
            f"parameter {name!r} must be between {lo} and {hi} ({what}), got {_echo(raw)}"
        )
    return value


def optional_int(
    params: Mapping[str, str], name: str, lo: int, hi: int, what: str = "an integer"
) -> int | None:
    """parse_int for an optional parameter: absent or empty is None."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    return parse_int(raw, name, lo, hi, what)


def optional_time_ns(params: Mapping[str, str], name: str, unit_ns: int) -> int | None:
    """A Unix time in µs (unit_ns=1000) or ms (unit_ns=10^6), returned in ns.

    Bounded to [0, (2^63-1) // unit] so the ns value fits DateTime64(9): beyond that, ClickHouse
    would wrap the Int64 into a time centuries away and answer for the wrong window.
    """
    unit = {1_000: "Unix microseconds", 1_000_000: "Unix milliseconds"}[unit_ns]
    value = optional_int(params, name, 0, MAX_TIME_NS // unit_ns, unit)
    return None if value is None else value * unit_ns


def optional_name(params: Mapping[str, str], name: str) -> str:
    """A free-text name (service, operation) of bounded length; absent is ""."""
    value = params.get(name, "")
    return check_name(value, name)


def check_name(value: str, name: str) -> str:
    if len(value) > MAX_NAME_LENGTH:
        raise BadRequestError(f"parameter {name!r} is longer than {MAX_NAME_LENGTH} characters")
    return value


def required_name(params: Mapping[str, str], name: str) -> str:
    value = optional_name(params, name)
    if not value:
        raise BadRequestError(f"parameter {name!r} is required")
    return value


def parse_span_kind(params: Mapping[str, str]) -> str:
    """spanKind as the ClickHouse SpanKind spelling ("Server"), or "" for any kind."""
    raw = params.get("spanKind", "")
    if not raw:
        return ""
    if raw.lower() not in SPAN_KINDS:
        raise BadRequestError(
            f"parameter 'spanKind' must be one of {', '.join(SPAN_KINDS)}, got {_echo(raw)}"
        )
    return raw.lower().capitalize()


def parse_tags(tags_json: Sequence[str], tag_pairs: Sequence[str]) -> dict[str, str]:
    """Tags from `tags` (JSON objects of scalars) and `tag` (key:value), at most MAX_TAGS.

    Values must be strings, numbers or booleans, as Jaeger's tag search compares strings:
    nested objects or arrays would be matched as their Python repr, never what the user meant.
    """
    tags: dict[str, str] = {}
    for raw in tags_json:
        if len(raw) > MAX_TAGS_JSON_LENGTH:
            raise BadRequestError(
                f"parameter 'tags' is longer than {MAX_TAGS_JSON_LENGTH} characters"
            )
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise BadRequestError(f"parameter 'tags' must be a JSON object: {exc}") from exc
        if not isinstance(doc, dict):
            raise BadRequestError("parameter 'tags' must be a JSON object")
        for key, value in doc.items():
            if not isinstance(value, str | int | float | bool):
                raise BadRequestError(
                    f"parameter 'tags': the value of {_echo(key)} must be a string, number or "
                    "boolean"
                )
            tags[_tag_key(key, "tags")] = _tag_value(value)
            _check_tag_count(tags)
    for pair in tag_pairs:
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise BadRequestError(f"parameter 'tag' must be key:value, got {_echo(pair)}")
        tags[_tag_key(key, "tag")] = check_name(value, "tag")
        _check_tag_count(tags)
    return tags


def _tag_key(key: str, name: str) -> str:
    if not key:
        raise BadRequestError(f"parameter {name!r}: tag keys must not be empty")
    return check_name(key, name)


def _check_tag_count(tags: Mapping[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise BadRequestError(f"at most {MAX_TAGS} tags can be searched at once")


def _tag_value(v: str | int | float | bool) -> str:
    """A JSON tag value as the text storage keeps for an attribute of that type.

    Storage writes a double as the exporter does (schemas/attribute_text.py: "3", not "3.0";
    "1.5e-7"), so ``{"x": 3.0}`` finds a double attribute 3.0 and ``{"x": 1.5e-7}`` one of
    1.5e-7.
    """
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return double_text(v)
    return str(v)


# Trace ids: 1-32 hex digits, 64-bit ids (16 digits) as Jaeger's clients send them.
_HEX = re.compile(r"[0-9a-fA-F]{1,32}")
# Ids in one /api/traces?traceID=...: Jaeger UI's compare sends two, links a few.
MAX_TRACE_IDS = 1500


def parse_trace_id(raw: str) -> str:
    """A trace id as stored: 32 lower-case hex digits, left-padded with zeros."""
    if not _HEX.fullmatch(raw):
        raise BadRequestError(f"invalid trace id {_echo(raw)} (1 to 32 hex digits)")
    return raw.lower().rjust(32, "0")


def parse_trace_ids(values: Sequence[str]) -> list[str]:
    """Repeated (or comma-separated) ``traceID`` values, deduplicated in request order."""
    ids: list[str] = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                trace_id = parse_trace_id(part.strip())
                if trace_id not in ids:
                    ids.append(trace_id)
    if len(ids) > MAX_TRACE_IDS:
        raise BadRequestError(f"parameter 'traceID': at most {MAX_TRACE_IDS} ids at once")
    return ids


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


def parse_trace_query(
    params: Mapping[str, str],
    tags_json: Sequence[str],
    tag_pairs: Sequence[str],
    now_ns: int | None = None,
) -> TraceQuery:
    """GET /api/traces parameters: every field bounded, start <= end, both within DateTime64."""
    service = required_name(params, "service")
    operation = optional_name(params, "operation")
    now_ns = min(time.time_ns() if now_ns is None else now_ns, MAX_TIME_NS)
    end = optional_time_ns(params, "end", 1_000)
    end_ns = now_ns if end is None else end
    start = optional_time_ns(params, "start", 1_000)
    if start is not None:
        start_ns = start
    else:
        lookback = params.get("lookback", "")
        lookback_ns = (
            parse_duration_ns(lookback, "lookback")
            if lookback and lookback != "custom"
            else DEFAULT_LOOKBACK_NS
        )
        start_ns = max(0, end_ns - lookback_ns)  # "the last 300 years" means "everything"
    if start_ns > end_ns:
        raise BadRequestError("parameter 'start' must not be after 'end'")
    limit = optional_int(params, "limit", 0, MAX_LIMIT_TEXT_VALUE) or DEFAULT_LIMIT
    min_d = params.get("minDuration", "")
    max_d = params.get("maxDuration", "")
    query = TraceQuery(
        service=service,
        operation=operation if operation != "all" else "",
        tags=parse_tags(tags_json, tag_pairs),
        min_duration_ns=parse_duration_ns(min_d, "minDuration") if min_d else None,
        max_duration_ns=parse_duration_ns(max_d, "maxDuration") if max_d else None,
        start_ns=start_ns,
        end_ns=end_ns,
        limit=min(limit, MAX_LIMIT),
    )
    if (
        query.min_duration_ns is not None
        and query.max_duration_ns is not None
        and query.min_duration_ns > query.max_duration_ns
    ):
        raise BadRequestError("parameter 'minDuration' must not exceed 'maxDuration'")
    return query


def parse_us_range(
    params: Mapping[str, str], now_ns: int | None = None, default_lookback_ns: int = 3_600 * 10**9
) -> tuple[int, int]:
    """start/end in Unix µs (RED endpoints) -> (start_ns, end_ns) with start < end."""
    now_ns = min(time.time_ns() if now_ns is None else now_ns, MAX_TIME_NS)
    end = optional_time_ns(params, "end", 1_000)
    end_ns = now_ns if end is None else end
    start = optional_time_ns(params, "start", 1_000)
    start_ns = max(0, end_ns - default_lookback_ns) if start is None else start
    if start_ns >= end_ns:
        raise BadRequestError("parameter 'start' must be before 'end'")
    return start_ns, end_ns


DEFAULT_DEPENDENCIES_LOOKBACK_MS = 86_400_000


def parse_dependencies_range(
    params: Mapping[str, str], now_ns: int | None = None
) -> tuple[int, int]:
    """endTs and lookback in milliseconds (Jaeger's /api/dependencies) -> (start_ns, end_ns)."""
    now_ns = min(time.time_ns() if now_ns is None else now_ns, MAX_TIME_NS)
    end = optional_time_ns(params, "endTs", 1_000_000)
    end_ns = (now_ns // 1_000_000) * 1_000_000 if end is None else end
    lookback_ms = optional_int(params, "lookback", 0, MAX_TIME_MS, "milliseconds")
    if lookback_ms is None:
        lookback_ms = DEFAULT_DEPENDENCIES_LOOKBACK_MS
    return max(0, end_ns - lookback_ms * 1_000_000), end_ns


def pretty_print(params: Mapping[str, str]) -> bool:
    """Jaeger's prettyPrint: any value but empty or "false" asks for indented JSON."""
    value = params.get("prettyPrint", "")
    return value not in ("", "false")


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def optional_bool(params: Mapping[str, str], name: str) -> bool:
    """A flag as Go's strconv.ParseBool reads it (Jaeger's ``raw``); absent is False."""
    raw = params.get(name)
    if raw is None or raw == "":
        return False
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise BadRequestError(f"parameter {name!r} must be true or false, got {_echo(raw)}")

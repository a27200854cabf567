"""OTLP/JSON (``TracesData``) -> span rows of query/sql/trace_spans.sql's shape (pure).

``POST /api/transform`` is what Jaeger UI's "Upload" calls with an OTLP JSON file; turning the
file into the same rows ClickHouse returns lets the one renderer (query/jaeger_model.py) produce
the Jaeger JSON, so an uploaded trace looks exactly like a stored one.

Follows the OTLP/JSON encoding (opentelemetry-proto's JSON mapping): ids are hex strings,
64-bit numbers may be JSON strings or numbers, enums may be numbers or their names, and field
names are lowerCamelCase (snake_case is accepted too, as protobuf JSON parsers do). Attribute
values keep their OTLP type where the renderer can show it (bool, int, double); bytes become
base64 and arrays/maps compact JSON text, as storage writes them. Anything malformed raises
:class:`TransformError` with the path of the offending field.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

KINDS = {0: "Unspecified", 1: "Internal", 2: "Server", 3: "Client", 4: "Producer", 5: "Consumer"}
KIND_NAMES = {f"SPAN_KIND_{v.upper()}": v for v in KINDS.values()}
STATUSES = {0: "Unset", 1: "Ok", 2: "Error"}
STATUS_NAMES = {"STATUS_CODE_UNSET": "Unset", "STATUS_CODE_OK": "Ok", "STATUS_CODE_ERROR": "Error"}
MAX_UINT64 = 2**64 - 1
MAX_TIME_NS = 2**63 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Nesting of array/kvlist values followed before the value is refused (a 1 MiB body could
# otherwise nest deeper than Python's recursion limit).
MAX_VALUE_DEPTH = 64
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")


class TransformError(ValueError):
    """The upload is not valid OTLP/JSON; the message names the field."""


def _field(obj: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    if camel in obj:
        return obj[camel]
    return obj.get(snake, default)


def _obj(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TransformError(f"{where}: expected an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TransformError(f"{where}: expected an array")
    return value


def _uint(value: Any, where: str, hi: int) -> int:
    """A protobuf 64-bit number: a JSON number or a decimal string."""
    if isinstance(value, bool):
        raise TransformError(f"{where}: expected a number")
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,20}", value):
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise TransformError(f"{where}: expected a non-negative integer, got {str(value)[:40]!r}")
    if not 0 <= number <= hi:
        raise TransformError(f"{where}: {number} is out of range")
    return number


def _id(value: Any, where: str, pattern: re.Pattern[str], required: bool) -> str:
    if value in (None, ""):
        if required:
            raise TransformError(f"{where}: missing")
        return ""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise TransformError(f"{where}: expected {pattern.pattern} hex digits")
    return value.lower()


def _enum(value: Any, numbers: dict[int, str], names: dict[str, str], where: str) -> str:
    if value is None:
        return numbers[0]
    if isinstance(value, str) and value in names:
        return names[value]
    if isinstance(value, int) and not isinstance(value, bool) and value in numbers:
        return numbers[value]
    raise TransformError(f"{where}: unknown value {str(value)[:40]!r}")


def _plain(value: dict[str, Any], where: str, depth: int) -> Any:
    """An AnyValue as plain JSON (for arrays and maps, which are shown as JSON text)."""
    if depth > MAX_VALUE_DEPTH:
        raise TransformError(f"{where}: values nested deeper than {MAX_VALUE_DEPTH} levels")
    if "arrayValue" in value or "array_value" in value:
        arr = _obj(_field(value, "arrayValue", "array_value"), where)
        return [
            _plain(_obj(v, f"{where}[{i}]"), f"{where}[{i}]", depth + 1)
            for i, v in enumerate(_list(arr.get("values"), where))
        ]
    if "kvlistValue" in value or "kvlist_value" in value:
        kvs = _obj(_field(value, "kvlistValue", "kvlist_value"), where)
        out = {}
        for i, kv in enumerate(_list(kvs.get("values"), where)):
            kv = _obj(kv, f"{where}[{i}]")
            key = kv.get("key")
            if not isinstance(key, str):
                raise TransformError(f"{where}[{i}].key: expected a string")
            out[key] = _plain(_obj(kv.get("value"), where), f"{where}.{key}", depth + 1)
        return out
    scalar = _scalar(value, where)
    return scalar


def _scalar(value: dict[str, Any], where: str) -> Any:
    if "stringValue" in value or "string_value" in value:
        text = _field(value, "stringValue", "string_value")
        if not isinstance(text, str):
            raise TransformError(f"{where}: stringValue must be a string")
        return text
    if "boolValue" in value or "bool_value" in value:
        flag = _field(value, "boolValue", "bool_value")
        if not isinstance(flag, bool):
            raise TransformError(f"{where}: boolValue must be true or false")
        return flag
    if "intValue" in value or "int_value" in value:
        raw = _field(value, "intValue", "int_value")
        if isinstance(raw, str) and re.fullmatch(r"-?[0-9]{1,19}", raw):
            number = int(raw)
        elif isinstance(raw, int) and not isinstance(raw, bool):
            number = raw
        else:
            raise TransformError(f"{where}: intValue must be an integer")
        if not INT64_MIN <= number <= INT64_MAX:
            raise TransformError(f"{where}: intValue out of int64 range")
        return number
    if "doubleValue" in value or "double_value" in value:
        raw = _field(value, "doubleValue", "double_value")
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise TransformError(f"{where}: doubleValue must be a number")
        try:
            return float(raw)  # protobuf JSON also allows "NaN", "Infinity" strings
        except ValueError as exc:
            raise TransformError(f"{where}: doubleValue must be a number") from exc
    if "bytesValue" in value or "bytes_value" in value:
        raw = _field(value, "bytesValue", "bytes_value")
        try:
            return base64.b64encode(base64.b64decode(str(raw), validate=True)).decode()
        except ValueError as exc:
            raise TransformError(f"{where}: bytesValue must be base64") from exc
    return ""  # an empty AnyValue


def _value(value: Any, where: str) -> Any:
    """An attribute value for the renderer: bool/int/float stay typed, the rest is text."""
    value = _obj(value, where)
    if any(k in value for k in ("arrayValue", "array_value", "kvlistValue", "kvlist_value")):
        return json.dumps(_plain(value, where, 0), separators=(",", ":"))
    scalar = _scalar(value, where)
    if isinstance(scalar, float):
        return scalar if scalar == scalar and abs(scalar) != float("inf") else repr(scalar)
    return scalar


def _attributes(items: Any, where: str, as_text: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, kv in enumerate(_list(items, where)):
        kv = _obj(kv, f"{where}[{i}]")
        key = kv.get("key")
        if not isinstance(key, str):
            raise TransformError(f"{where}[{i}].key: expected a string")
        value = _value(kv.get("value"), f"{where}[{i}].value")
        if as_text:
            value = ("true" if value else "false") if isinstance(value, bool) else str(value)
        out[key] = value
    return out


def rows_from_otlp(doc: Any, max_spans: int) -> list[list[Any]]:
    """Span rows of every span in an OTLP/JSON ``TracesData`` document, by trace and start."""
    rows = list(_rows(_obj(doc, "body"), max_spans))
    rows.sort(key=lambda r: (r[0], r[10], r[1]))
    return rows


def _rows(doc: dict[str, Any], max_spans: int) -> Iterator[list[Any]]:
    count = 0
    for r, rs in enumerate(_list(_field(doc, "resourceSpans", "resource_spans"), "resourceSpans")):
        where_r = f"resourceSpans[{r}]"
        rs = _obj(rs, where_r)
        resource = _obj(rs.get("resource"), f"{where_r}.resource")
        # Resource attributes as text: the process tags and the clock-skew host key read them
        # as storage keeps them.
        res_attrs = _attributes(resource.get("attributes"), f"{where_r}.resource.attributes", True)
        service = str(res_attrs.get("service.name", ""))
        scopes = _list(_field(rs, "scopeSpans", "scope_spans"), f"{where_r}.scopeSpans")
        for s, ss in enumerate(scopes):
            where_s = f"{where_r}.scopeSpans[{s}]"
            ss = _obj(ss, where_s)
            scope = _obj(ss.get("scope"), f"{where_s}.scope")
            for i, span in enumerate(_list(ss.get("spans"), f"{where_s}.spans")):
                count += 1
                if count > max_spans:
                    raise TransformError(f"more than {max_spans} spans in one upload")
                yield _row(
                    _obj(span, f"{where_s}.spans[{i}]"),
                    f"{where_s}.spans[{i}]",
                    service,
                    res_attrs,
                    scope,
                )


def _row(
    span: dict[str, Any],
    where: str,
    service: str,
    res_attrs: dict[str, Any],
    scope: dict[str, Any],
) -> list[Any]:
    start = _uint(
        _field(span, "startTimeUnixNano", "start_time_unix_nano", 0),
        f"{where}.startTimeUnixNano",
        MAX_TIME_NS,
    )
    end = _uint(
        _field(span, "endTimeUnixNano", "end_time_unix_nano", 0),
        f"{where}.endTimeUnixNano",
        MAX_TIME_NS,
    )
    status = _obj(span.get("status"), f"{where}.status")
    events = _list(span.get("events"), f"{where}.events")
    links = _list(span.get("links"), f"{where}.links")
    ev_times, ev_names, ev_attrs = [], [], []
    for e, event in enumerate(events):
        event = _obj(event, f"{where}.events[{e}]")
        ev_times.append(
            _uint(
                _field(event, "timeUnixNano", "time_unix_nano", 0),
                f"{where}.events[{e}].timeUnixNano",
                MAX_TIME_NS,
            )
        )
        name = event.get("name", "")
        ev_names.append(name if isinstance(name, str) else str(name))
        ev_attrs.append(_attributes(event.get("attributes"), f"{where}.events[{e}].attributes"))
    link_traces, link_spans = [], []
    for k, link in enumerate(links):
        link = _obj(link, f"{where}.links[{k}]")
        link_traces.append(
            _id(
                _field(link, "traceId", "trace_id"), f"{where}.links[{k}].traceId", _TRACE_ID, False
            )
        )
        link_spans.append(
            _id(_field(link, "spanId", "span_id"), f"{where}.links[{k}].spanId", _SPAN_ID, False)
        )
    name = span.get("name", "")
    message = status.get("message", "")
    trace_state = _field(span, "traceState", "trace_state", "")
    return [
        _id(_field(span, "traceId", "trace_id"), f"{where}.traceId", _TRACE_ID, True),
        _id(_field(span, "spanId", "span_id"), f"{where}.spanId", _SPAN_ID, True),
        _id(
            _field(span, "parentSpanId", "parent_span_id"), f"{where}.parentSpanId", _SPAN_ID, False
        ),
        name if isinstance(name, str) else str(name),
        _enum(span.get("kind"), KINDS, KIND_NAMES, f"{where}.kind"),
        service,
        res_attrs,
        str(scope.get("name", "")),
        str(scope.get("version", "")),
        _attributes(span.get("attributes"), f"{where}.attributes"),
        start,
        max(0, end - start),
        _enum(status.get("code"), STATUSES, STATUS_NAMES, f"{where}.status.code"),
        message if isinstance(message, str) else str(message),
        ev_times,
        ev_names,
        ev_attrs,
        link_traces,
        link_spans,
        trace_state if isinstance(trace_state, str) else str(trace_state),
    ]

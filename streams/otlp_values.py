"""OTLP ``AnyValue`` -> string, exactly as the OTel Collector's ClickHouse exporter stores it.

The exporter fills its ``Map(LowCardinality(String), String)`` columns with pdata's
``Value.AsString()``. Equality filters written against upstream data (``SpanAttributes['x'] =
'1.5e-7'``) only find our rows if every value renders byte for byte the same, so this module
follows that documented behaviour rather than Python's own conventions:

- strings as they are; bools ``true``/``false``; ints in decimal; bytes standard base64;
- doubles as ECMAScript's Number-to-String: plain decimal for 1e-6 <= |x| < 1e21, otherwise
  shortest exponent form without padding (``1.5e-7``, ``1e+21``), ``NaN``, ``Infinity``,
  ``-Infinity``, ``-0``;
- arrays and maps as Go ``encoding/json`` without HTML escaping: keys sorted, the same number
  format, nested bytes as base64 strings (empty nested bytes and empty values as ``null``),
  U+2028/U+2029 escaped; a non-finite double anywhere inside makes the encoding fail, which
  the exporter turns into ``""``.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from opentelemetry.proto.common.v1 import common_pb2

from schemas.attribute_text import double_text


class _NotJsonable(ValueError):
    """A NaN or infinity inside an array or map: Go's JSON encoder refuses the whole value."""


def any_value_to_str(value: common_pb2.AnyValue) -> str:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which is None:
        return ""
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        return double_text(value.double_value)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    try:
        return _json(value)
    except _NotJsonable:
        return ""


def attributes_to_dict(attrs: Any) -> dict[str, str]:
    """Every attribute as its stored text (a later duplicate key wins, as in a Go map).

    Hot path: every attribute of every kept span. A non-empty ``string_value`` can only come
    from a string (any other member of the oneof leaves it empty), so the common case costs one
    field read and skips ``WhichOneof`` (13 % of this function, ``bench/streams.py``); an empty
    one may be an empty string, another type or no value, which the full rendering sorts out.
    """
    out: dict[str, str] = {}
    for kv in attrs:
        v = kv.value
        text = v.string_value
        if text:
            out[kv.key] = text
        elif v.WhichOneof("value") == "int_value":
            out[kv.key] = str(v.int_value)
        else:
            out[kv.key] = any_value_to_str(v)
    return out


def _json(value: common_pb2.AnyValue) -> str:
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def _string(text: str) -> str:
    # json.dumps escapes exactly as Go does (quote, backslash, control characters, \b \f \n \r
    # \t short), except that Go also escapes the two JavaScript line terminators.
    return (
        json.dumps(text, ensure_ascii=False)
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _encode(value: common_pb2.AnyValue, out: list[str]) -> None:
    which = value.WhichOneof("value")
    if which is None:
        out.append("null")
    elif which == "string_value":
        out.append(_string(value.string_value))
    elif which == "bool_value":
        out.append("true" if value.bool_value else "false")
    elif which == "int_value":
        out.append(str(value.int_value))
    elif which == "double_value":
        if not math.isfinite(value.double_value):
            raise _NotJsonable(which)
        out.append(double_text(value.double_value))
    elif which == "bytes_value":
        # pdata copies nested bytes with append(nil, b...): empty stays a nil slice -> null.
        raw = value.bytes_value
        out.append(_string(base64.b64encode(raw).decode()) if raw else "null")
    elif which == "array_value":
        out.append("[")
        for i, item in enumerate(value.array_value.values):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        # A Go map: the last duplicate key wins, keys come out sorted.
        entries = {kv.key: kv.value for kv in value.kvlist_value.values}
        out.append("{")
        for i, key in enumerate(sorted(entries)):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _encode(entries[key], out)
        out.append("}")

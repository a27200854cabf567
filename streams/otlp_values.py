"""OTLP ``AnyValue`` -> string, the way the OTel Collector's ClickHouse exporter flattens it.

The ClickHouse maps are ``Map(LowCardinality(String), String)``; strings stay as they are,
scalars use their canonical text, and arrays/maps become JSON so no information is lost.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from opentelemetry.proto.common.v1 import common_pb2


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
        return _double_text(value.double_value)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return json.dumps(_to_json(value), separators=(",", ":"))


def attributes_to_dict(attrs: Any) -> dict[str, str]:
    # Hot path (every attribute of every span): strings, the common case, skip the call.
    out: dict[str, str] = {}
    for kv in attrs:
        v = kv.value
        which = v.WhichOneof("value")
        if which == "string_value":
            out[kv.key] = v.string_value
        elif which == "int_value":
            out[kv.key] = str(v.int_value)
        else:
            out[kv.key] = any_value_to_str(v)
    return out


def _double_text(d: float) -> str:
    return str(int(d)) if d.is_integer() and abs(d) < 1e15 else repr(d)


def _to_json(value: common_pb2.AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_to_json(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _to_json(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if which is None:
        return None
    return getattr(value, which)

"""Stored attribute text -> a typed Jaeger tag (pure).

``otel_traces`` keeps every attribute as text (the OTel Collector ClickHouse exporter's
``Map(String, String)`` layout, which tracehouse keeps for Grafana and existing SQL). The
pipeline writes each OTLP type as the exporter's ``AsString()`` does (streams/otlp_values.py):
bools as ``true``/``false``, ints in decimal, doubles in ECMAScript's shortest form
(schemas/attribute_text.py: ``1.5e-7``, ``0.25``, ``3``), bytes as base64, arrays and maps as
JSON. This module reads those forms back into
Jaeger's value types: ``bool``, ``int64``, ``float64``, and ``string`` for everything else
(Jaeger's own OTLP translation also shows arrays and maps as JSON strings).

The mapping is by text, so it cannot tell a string attribute "42" from the int 42, and bytes
look like strings; docs in query/README.md ("Tag types") say so. Ints outside JavaScript's
safe range are sent as strings with type int64, as Jaeger does, so browsers do not round them.
"""

from __future__ import annotations

import math
import re
from typing import Any

from schemas.attribute_text import double_text

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
JS_MAX_SAFE_INTEGER = 2**53 - 1
# Canonical decimal ints only: no "+", no leading zeros ("007" is a string), no "_".
_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,18})")
# Doubles as the pipeline writes them (schemas/attribute_text.py) or as repr() does: whole
# doubles within int64 are written as ints and read back as int64 (the stored text cannot say
# otherwise); NaN and infinities stay strings (JSON has no such numbers).
_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:e[+-][0-9]+)?")


def typed_value(text: str) -> tuple[str, Any]:
    """(Jaeger type, JSON value) for a stored attribute text."""
    if text == "true":
        return "bool", True
    if text == "false":
        return "bool", False
    if _INT.fullmatch(text) and INT64_MIN <= int(text) <= INT64_MAX:
        value = int(text)
        if -JS_MAX_SAFE_INTEGER <= value <= JS_MAX_SAFE_INTEGER:
            return "int64", value
        return "int64", text
    if _FLOAT.fullmatch(text):
        number = float(text)
        if math.isfinite(number) and text in (double_text(number), repr(number)):
            return "float64", number
    return "string", text


def tag(key: str, value: Any) -> dict[str, Any]:
    """A Jaeger KeyValue for a value the API produces itself (bool/int/str) or stored text."""
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    # repr: a float 3.0 stays a double ("3.0"); stored text of that double would say "3".
    text = repr(value) if isinstance(value, float) else str(value)
    kind, typed = typed_value(text)
    return {"key": key, "type": kind, "value": typed}


def string_tag(key: str, value: str) -> dict[str, Any]:
    """A tag whose value is text by definition (names, messages), never re-typed."""
    return {"key": key, "type": "string", "value": value}

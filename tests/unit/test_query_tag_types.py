"""Stored attribute text -> Jaeger tag types (query/tag_types.py)."""

from __future__ import annotations

import base64
import json
import math

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.common.v1 import common_pb2

from query.tag_types import JS_MAX_SAFE_INTEGER, tag, typed_value
from schemas.attribute_text import double_text
from streams.otlp_values import any_value_to_str


def test_each_type_reads_back() -> None:
    assert typed_value("true") == ("bool", True)
    assert typed_value("false") == ("bool", False)
    assert typed_value("200") == ("int64", 200)
    assert typed_value("-7") == ("int64", -7)
    assert typed_value("2.5") == ("float64", 2.5)
    assert typed_value("1e+20") == ("float64", 1e20)
    assert typed_value("1.5e-7") == ("float64", 1.5e-7)  # the exporter's form
    assert typed_value("1e+21") == ("float64", 1e21)
    assert typed_value("100000000000000000000") == ("float64", 1e20)  # beyond int64
    assert typed_value("NaN")[0] == "string" and typed_value("Infinity")[0] == "string"
    assert typed_value("GET") == ("string", "GET")
    assert typed_value('["a",1]') == ("string", '["a",1]')  # arrays stay JSON text
    # Not the canonical text of a number: a string.
    for text in ("007", "+1", "1_000", "1.50", "True", "", " 1", "nan", "inf", "٣"):
        assert typed_value(text)[0] == "string", text


def test_int64_edges_and_javascript_safety() -> None:
    assert typed_value(str(2**63 - 1)) == ("int64", str(2**63 - 1))  # a string, as Jaeger
    assert typed_value(str(-(2**63))) == ("int64", str(-(2**63)))
    assert typed_value(str(2**63))[0] == "string"  # beyond int64
    assert typed_value(str(JS_MAX_SAFE_INTEGER)) == ("int64", JS_MAX_SAFE_INTEGER)
    assert typed_value(str(JS_MAX_SAFE_INTEGER + 1)) == ("int64", str(JS_MAX_SAFE_INTEGER + 1))


def test_values_the_api_makes_itself() -> None:
    assert tag("error", True) == {"key": "error", "type": "bool", "value": True}
    assert tag("n", 3) == {"key": "n", "type": "int64", "value": 3}
    assert tag("x", 3.0) == {"key": "x", "type": "float64", "value": 3.0}
    assert tag("x", float("nan"))["type"] == "string"  # JSON has no NaN


def stored(value: common_pb2.AnyValue) -> str:
    return any_value_to_str(value)


@given(st.integers(-(2**63), 2**63 - 1))
def test_every_stored_int_is_int64(n: int) -> None:
    kind, value = typed_value(stored(common_pb2.AnyValue(int_value=n)))
    assert kind == "int64" and int(value) == n
    assert isinstance(value, int) == (abs(n) <= JS_MAX_SAFE_INTEGER)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_stored_double_is_a_number_of_the_same_value(d: float) -> None:
    kind, value = typed_value(stored(common_pb2.AnyValue(double_value=d)))
    # A whole double within int64 is written like an int and comes back as int64.
    assert kind in ("float64", "int64")
    assert float(value) == d or (d == 0 and float(value) == 0)


@given(st.booleans())
def test_every_stored_bool_is_bool(b: bool) -> None:
    assert typed_value(stored(common_pb2.AnyValue(bool_value=b))) == ("bool", b)


@given(st.text(max_size=30))
def test_any_text_is_typed_without_error_and_json_safe(text: str) -> None:
    kind, value = typed_value(text)
    json.dumps(value, allow_nan=False)  # never NaN/Infinity in the JSON
    if kind == "string":
        assert value == text
    if kind == "float64":
        assert math.isfinite(value) and text in (repr(value), double_text(value))


def test_bytes_are_base64_text() -> None:
    text = stored(common_pb2.AnyValue(bytes_value=b"\x00\x01"))
    assert text == base64.b64encode(b"\x00\x01").decode()
    assert typed_value(text) == ("string", text)

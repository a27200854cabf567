"""``any_value_to_str`` renders every AnyValue as pdata's ``Value.AsString()`` does.

The reference below is written independently from the documented behaviour: ECMAScript's
Number::toString steps (k digits, exponent n) for doubles, and Go's ``encoding/json`` rules
for arrays and maps (sorted keys, no HTML escaping, nested bytes as base64, nil bytes and empty
values as null, a non-finite double failing the whole encoding, which the exporter stores as
``""``).
"""

from __future__ import annotations

import base64
import json
import math
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1 import common_pb2

from schemas.attribute_text import double_text
from streams.otlp_values import any_value_to_str, attributes_to_dict


def es_number_to_string(x: float) -> str:
    """ECMA-262 Number::toString(x), radix 10, step by step."""
    if math.isnan(x):
        return "NaN"
    if x == 0:
        return "-0" if math.copysign(1, x) < 0 else "0"  # pdata keeps the sign (Go strconv)
    if x < 0:
        return "-" + es_number_to_string(-x)
    if math.isinf(x):
        return "Infinity"
    # s: the shortest digit string that round-trips, k its length, n the decimal exponent.
    _sign, digit_tuple, exp = Decimal(repr(x)).normalize().as_tuple()
    s = "".join(map(str, digit_tuple))
    k = len(s)
    n = int(exp) + k
    if k <= n <= 21:
        return s + "0" * (n - k)
    if 0 < n <= 21:
        return s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + s
    e = n - 1
    exp_text = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return s + "e" + exp_text
    return s[0] + "." + s[1:] + "e" + exp_text


def reference_as_string(v: common_pb2.AnyValue) -> str:
    which = v.WhichOneof("value")
    if which is None:
        return ""
    if which == "string_value":
        return v.string_value
    if which == "bool_value":
        return str(v.bool_value).lower()
    if which == "int_value":
        return format(v.int_value, "d")
    if which == "double_value":
        return es_number_to_string(v.double_value)
    if which == "bytes_value":
        return base64.standard_b64encode(v.bytes_value).decode("ascii")
    numbers: list[str] = []
    raw = _go_raw(v, numbers)
    if _holds_non_finite(raw):  # Go's json.Marshal refuses NaN/Inf: the exporter stores ""
        return ""
    text = json.dumps(raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    for i, number in enumerate(numbers):
        text = text.replace(json.dumps(f"\x00num{i}\x00"), number, 1)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


_NON_FINITE = object()


def _holds_non_finite(raw: Any) -> bool:
    if raw is _NON_FINITE:
        return True
    if isinstance(raw, list):
        return any(_holds_non_finite(x) for x in raw)
    if isinstance(raw, dict):
        return any(_holds_non_finite(x) for x in raw.values())
    return False


def _go_raw(v: common_pb2.AnyValue, numbers: list[str]) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "double_value":
        if math.isnan(v.double_value) or math.isinf(v.double_value):
            # Not refused here: AsRaw keeps it, and a later duplicate key may replace it
            # before json.Marshal sees it (Go maps keep the last value of a key).
            return _NON_FINITE
        numbers.append(es_number_to_string(v.double_value))
        return f"\x00num{len(numbers) - 1}\x00"
    if which == "bytes_value":
        return base64.standard_b64encode(v.bytes_value).decode() if v.bytes_value else None
    if which == "array_value":
        return [_go_raw(x, numbers) for x in v.array_value.values]
    if which == "kvlist_value":
        out: dict[str, Any] = {}
        for kv in v.kvlist_value.values:
            out[kv.key] = _go_raw(kv.value, numbers)
        return out
    return getattr(v, which)


def _av(**kw: Any) -> common_pb2.AnyValue:
    return common_pb2.AnyValue(**kw)


texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
doubles = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [1.5e-7, 1e-6, 9.999999e-7, 1e21, 9.99e20, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 0.1]
)
scalars = st.one_of(
    texts.map(lambda s: _av(string_value=s)),
    st.booleans().map(lambda b: _av(bool_value=b)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: _av(int_value=i)),
    doubles.map(lambda d: _av(double_value=d)),
    st.binary(max_size=8).map(lambda b: _av(bytes_value=b)),
    st.just(_av()),
)


def _array(items: list[common_pb2.AnyValue]) -> common_pb2.AnyValue:
    return _av(array_value=common_pb2.ArrayValue(values=items))


def _kvlist(pairs: list[tuple[str, common_pb2.AnyValue]]) -> common_pb2.AnyValue:
    kvs = [common_pb2.KeyValue(key=k, value=v) for k, v in pairs]
    return _av(kvlist_value=common_pb2.KeyValueList(values=kvs))


any_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4).map(_array)
    | st.lists(st.tuples(texts, inner), max_size=4).map(_kvlist),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(any_values)
def test_every_any_value_renders_like_the_reference(value: common_pb2.AnyValue) -> None:
    assert any_value_to_str(value) == reference_as_string(value)


@settings(max_examples=400, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_doubles_follow_ecmascript(x: float) -> None:
    assert double_text(x) == es_number_to_string(x)
    if math.isfinite(x):
        assert float(double_text(x)) == x  # nothing is lost


def test_the_edge_cases_upstream_filters_depend_on() -> None:
    assert any_value_to_str(_av(double_value=1.5e-7)) == "1.5e-7"
    assert any_value_to_str(_av(double_value=1e21)) == "1e+21"
    assert any_value_to_str(_av(double_value=1e20)) == "100000000000000000000"
    assert any_value_to_str(_av(double_value=0.000001)) == "0.000001"
    assert any_value_to_str(_av(double_value=math.nan)) == "NaN"
    assert any_value_to_str(_av(double_value=-math.inf)) == "-Infinity"
    assert any_value_to_str(_av(double_value=-0.0)) == "-0"
    assert any_value_to_str(_av(double_value=3.0)) == "3"
    assert any_value_to_str(_av(int_value=-(2**63))) == "-9223372036854775808"
    assert any_value_to_str(_av(bytes_value=b"\xff\x00")) == "/wA="
    assert any_value_to_str(_kvlist([("b", _av(int_value=1)), ("a", _av(string_value="<&>"))])) == (
        '{"a":"<&>","b":1}'
    )
    assert any_value_to_str(_kvlist([("k", _av(int_value=1)), ("k", _av(int_value=2))])) == (
        '{"k":2}'
    )
    assert any_value_to_str(_array([_av(double_value=math.nan)])) == ""
    assert any_value_to_str(_array([_av(bytes_value=b""), _av(), _av(double_value=1e-7)])) == (
        "[null,null,1e-7]"
    )
    assert any_value_to_str(_array([_av(string_value="\u2028\n\x01")])) == '["\\u2028\\n\\u0001"]'
    assert any_value_to_str(_array([])) == "[]"
    assert any_value_to_str(_kvlist([])) == "{}"


def test_attribute_maps_use_the_same_rendering() -> None:
    attrs = [
        common_pb2.KeyValue(key="d", value=_av(double_value=1.5e-7)),
        common_pb2.KeyValue(key="i", value=_av(int_value=7)),
        common_pb2.KeyValue(key="s", value=_av(string_value="x")),
    ]
    assert attributes_to_dict(attrs) == {"d": "1.5e-7", "i": "7", "s": "x"}


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", ""]), any_values), max_size=8))
def test_attribute_lists_render_each_value_like_the_reference(
    pairs: list[tuple[str, common_pb2.AnyValue]],
) -> None:
    """Whole lists, with empty strings, unset values and duplicate keys (the last one wins):
    attributes_to_dict's fast path for strings must not change any value's text."""
    attrs = [common_pb2.KeyValue(key=k, value=v) for k, v in pairs]
    expected = {k: reference_as_string(v) for k, v in pairs}
    assert attributes_to_dict(attrs) == expected


def test_a_later_duplicate_key_replaces_a_non_finite_value_before_json_sees_it() -> None:
    """Go builds the raw map first (the last value of a key wins) and marshals it after, so a
    NaN/Inf replaced by a later duplicate never reaches json.Marshal; one that stays fails it."""
    inf_array = _array([_av(double_value=math.inf)])
    assert any_value_to_str(_kvlist([("k", inf_array), ("k", _av())])) == '{"k":null}'
    assert any_value_to_str(_kvlist([("k", _av()), ("k", inf_array)])) == ""

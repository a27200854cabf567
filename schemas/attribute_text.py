"""The text of a double attribute value: the one rule both writer and reader must share.

The OTel Collector's ClickHouse exporter stores a double attribute as pdata's
``Value.AsString()``, which prints it as ECMAScript's Number-to-String does (the same form Go's
``encoding/json`` uses). streams writes attribute text this way (streams/otlp_values.py) so
that SQL written for upstream data matches our rows; query reads the text back into a typed
Jaeger tag (query/tag_types.py). Pure; no dependencies.
"""

from __future__ import annotations

import math


def double_text(d: float) -> str:
    """A float64 the way ECMAScript (and so Go's JSON and pdata) prints it."""
    if math.isnan(d):
        return "NaN"
    if math.isinf(d):
        return "Infinity" if d > 0 else "-Infinity"
    sign = "-" if math.copysign(1.0, d) < 0 else ""
    a = abs(d)
    if a == 0:
        return sign + "0"
    # repr gives the shortest digits that round-trip, as Go's precision -1 does.
    mantissa, _, exp_text = repr(a).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    # point: where the decimal point sits relative to the start of ``digits``.
    lead_zeros = len(int_part + frac_part) - len((int_part + frac_part).lstrip("0"))
    point = len(int_part) - lead_zeros + (int(exp_text) if exp_text else 0)
    digits = digits.rstrip("0") or "0"
    if 1e-6 <= a < 1e21:
        if point <= 0:
            body = "0." + "0" * -point + digits
        elif point >= len(digits):
            body = digits + "0" * (point - len(digits))
        else:
            body = digits[:point] + "." + digits[point:]
        return sign + body
    exponent = point - 1
    head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{head}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}".replace(
        "e-0", "e-"
    )

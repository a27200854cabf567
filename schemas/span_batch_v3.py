"""Layout of the ``span_batch`` v3 wire format (v2's columns in Arrow buffers).

v3 carries v2's fields in v2's order, each as Avro ``bytes``; which buffer layout a field uses
follows from its v2 item type, so the packer (streams) and the reader (sink) take it from
here, and here takes it from ``span_batch.v2.avsc``. The v3 ``.avsc`` is checked against that
derivation at import: a field added to v2 but not to v3 (or the other way round) fails at
start-up instead of producing messages one side cannot read.
"""

from __future__ import annotations

from typing import Literal

from schemas.avro_codec import schema_json
from schemas.span_batch_v2 import FIELDS, INT_FIELDS, LONG_FIELDS, STRING_FIELDS

Layout = Literal["utf8", "int32", "int64"]

SPAN_COUNT = "span_count"
OFFSETS_SUFFIX = "_offsets"

# v2 field -> its buffer layout: UTF-8 data + int32 LE offsets, or LE integers of that width.
LAYOUT: dict[str, Layout] = {
    **dict.fromkeys(STRING_FIELDS, "utf8"),
    **dict.fromkeys(INT_FIELDS, "int32"),
    **dict.fromkeys(LONG_FIELDS, "int64"),
}


def offsets_field(field: str) -> str:
    return field + OFFSETS_SUFFIX


def expected_fields() -> tuple[str, ...]:
    """v3 field names as the layout rule derives them from v2."""
    out = [SPAN_COUNT]
    for f in FIELDS:
        out.append(f)
        if LAYOUT[f] == "utf8":
            out.append(offsets_field(f))
    return tuple(out)


FIELDS_V3: tuple[str, ...] = tuple(f["name"] for f in schema_json("span_batch", 3)["fields"])

if set(LAYOUT) != set(FIELDS) or expected_fields() != FIELDS_V3:
    raise RuntimeError("span_batch.v3.avsc does not follow span_batch.v2.avsc (see ADR 0003)")

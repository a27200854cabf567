"""v1 ``Span`` row dicts -> a ``span_batch`` v2 columnar record, for tests and benchmarks.

Fixtures and ``bench/sink.py`` describe spans as v1 rows (readable, one dict per span); the
streams worker builds v2 straight from protobuf instead (:mod:`streams.columnar_batch`). This
converter lets the same fixtures feed both wire versions; fields v1 gives a default may be
missing, as they may be for the v1 encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.span_batch_v2 import SPAN_SCALARS, empty_record

# v1 fields with a schema default (everything else is required).
_DEFAULTS: dict[str, Any] = {
    "tenant_id": "",
    "parent_span_id": "",
    "trace_state": "",
    "status_message": "",
    "scope_name": "",
    "scope_version": "",
}


def _put(rec: dict[str, list[Any]], prefix: str, lengths: str, m: dict[str, str]) -> None:
    rec[lengths].append(len(m))
    rec[f"{prefix}_keys"].extend(m)
    rec[f"{prefix}_values"].extend(m.values())


def columns_from_rows(spans: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    rec: dict[str, list[Any]] = empty_record()
    for f in SPAN_SCALARS:
        rec[f] = [s[f] if f in s else _DEFAULTS[f] for s in spans]
    resources: dict[tuple[tuple[str, str], ...], int] = {}
    for s in spans:
        res = s.get("resource_attributes", {})
        key = tuple(res.items())
        if key not in resources:
            resources[key] = len(resources)
            _put(rec, "resource_attribute", "resource_attribute_lengths", res)
        rec["resource_index"].append(resources[key])
        _put(rec, "attribute", "attribute_lengths", s.get("attributes", {}))
        events, links = s.get("events", []), s.get("links", [])
        rec["event_counts"].append(len(events))
        for e in events:
            rec["event_time_unix_nano"].append(e["time_unix_nano"])
            rec["event_name"].append(e["name"])
            _put(rec, "event_attribute", "event_attribute_lengths", e.get("attributes", {}))
        rec["link_counts"].append(len(links))
        for lk in links:
            rec["link_trace_id"].append(lk["trace_id"])
            rec["link_span_id"].append(lk["span_id"])
            rec["link_trace_state"].append(lk.get("trace_state", ""))
            _put(rec, "link_attribute", "link_attribute_lengths", lk.get("attributes", {}))
    return rec

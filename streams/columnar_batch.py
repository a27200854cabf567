"""Kept span views -> ``span_batch`` v2 records (one list per field), straight from protobuf.

Building a v1 row record per kept span (a dict with nested maps, events and links) and then
letting fastavro walk it was most of the streams worker's cost with keep-all sampling. Here
each field is a flat list appended to directly; v2 writes them as typed Avro arrays and v3
packs them into Arrow-layout bytes (:mod:`streams.packed_batch`). The values are exactly
those :func:`streams.span_views.full_record` produces, so ClickHouse rows do not depend on the
wire version (tests/unit/test_span_batch_v2.py, test_span_batch_v3.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.span_batch_v2 import SPAN_SCALARS, empty_record
from streams.otlp_values import attributes_to_dict
from streams.span_views import attributes_of

# Per-span scalars the view does not hold as-is: ids are bytes there, the rest sits on the
# protobuf span or scope.
_DERIVED = {
    "trace_id",
    "span_id",
    "parent_span_id",
    "status_message",
    "scope_name",
    "scope_version",
}
_VIEW_FIELDS = tuple(f for f in SPAN_SCALARS if f not in _DERIVED)


def _put_map(m: dict[str, str], lengths: list[int], keys: list[str], values: list[str]) -> None:
    lengths.append(len(m))
    keys.extend(m)
    values.extend(m.values())


def columnar_batch(views: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One v2 ``SpanBatch`` record holding ``views`` in order."""
    rec: dict[str, list[Any]] = empty_record()
    for f in _VIEW_FIELDS:
        rec[f] = [v[f] for v in views]
    rec["trace_id"] = [v["trace_id"].hex() for v in views]
    rec["span_id"] = [v["span_id"].hex() for v in views]
    rec["parent_span_id"] = [v["parent_span_id"].hex() for v in views]
    spans = [v["_span"] for v in views]
    scopes = [v["_scope"] for v in views]
    rec["status_message"] = [s.status.message for s in spans]
    rec["scope_name"] = [s.name for s in scopes]
    rec["scope_version"] = [s.version for s in scopes]

    # Views of one ResourceSpans share one attribute dict: send each resource once.
    resource_slot: dict[int, int] = {}
    res_index = rec["resource_index"]
    res_lengths, res_keys, res_values = (
        rec["resource_attribute_lengths"],
        rec["resource_attribute_keys"],
        rec["resource_attribute_values"],
    )
    attr_lengths, attr_keys, attr_values = (
        rec["attribute_lengths"],
        rec["attribute_keys"],
        rec["attribute_values"],
    )
    event_counts, link_counts = rec["event_counts"], rec["link_counts"]
    for view, span in zip(views, spans, strict=True):
        resource = view["resource_attributes"]
        slot = resource_slot.get(id(resource))
        if slot is None:
            slot = resource_slot[id(resource)] = len(res_lengths)
            _put_map(resource, res_lengths, res_keys, res_values)
        res_index.append(slot)
        if span.attributes:
            attrs = attributes_of(view)
            attr_lengths.append(len(attrs))
            attr_keys.extend(attrs)
            attr_values.extend(attrs.values())
        else:
            attr_lengths.append(0)
        # Most spans have neither events nor links: skip the calls for them.
        if span.events:
            _put_events(span.events, rec)
        event_counts.append(len(span.events))
        if span.links:
            _put_links(span.links, rec)
        link_counts.append(len(span.links))
    return rec


def _put_events(events: Any, rec: dict[str, list[Any]]) -> None:
    for e in events:
        rec["event_time_unix_nano"].append(e.time_unix_nano)
        rec["event_name"].append(e.name)
        _put_map(
            attributes_to_dict(e.attributes),
            rec["event_attribute_lengths"],
            rec["event_attribute_keys"],
            rec["event_attribute_values"],
        )


def _put_links(links: Any, rec: dict[str, list[Any]]) -> None:
    for link in links:
        rec["link_trace_id"].append(link.trace_id.hex())
        rec["link_span_id"].append(link.span_id.hex())
        rec["link_trace_state"].append(link.trace_state)
        _put_map(
            attributes_to_dict(link.attributes),
            rec["link_attribute_lengths"],
            rec["link_attribute_keys"],
            rec["link_attribute_values"],
        )

"""The typed span view against the string-keyed dict it replaced, in one process.

Streams builds one view per span and RED, the service graph, the dedupe key and the packed
encoder read its fields, so the view's shape is on the hot path. This measures, on the spans of
``bench.streams``' messages (decoded once, before timing):

- **build**: ``streams.span_views.span_views`` against the same loop building the dict it
  replaced (what ``span_views`` did before ``SpanView``);
- **shape**: constructing one view from the same 14 values as a dict literal, as ``SpanView``
  positionally and by keywords, and as a hand-written slotted class (the alternative to a
  slotted dataclass);
- **RED / graph / key / pack reads**: the fields ``RedAggregator.add``, ``ServiceGraph.add``,
  ``span_fingerprint.span_key`` and ``packed_batch`` read per span, from views and from dicts.

Every variant runs once per round, rounds interleaved, so a busy machine slows both sides
alike; the garbage collector stays on (tuned as the worker tunes it), since allocation is part
of the cost. Prints ns per span (median and min over rounds) and the median of the per-round
ratios typed / dict (below 1: the typed view is cheaper).

    .venv/bin/python -m bench.span_view [--messages 20] [--spans 500] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from opentelemetry.proto.trace.v1 import trace_pb2

from bench.streams import build_messages
from schemas.span_limits import MAX_TIME_UNIX_NANO, ZERO_SPAN_ID, ZERO_TRACE_ID
from streams.gc_tuning import tune_gc
from streams.otlp_values import attributes_to_dict
from streams.span_views import SERVICE_NAME_KEY, TENANT_KEY, SpanView, span_problem, span_views

# The columns packed_batch reads off the view by name (ids and protobuf fields aside).
PACKED_FIELDS = (
    "tenant_id", "trace_state", "name", "kind", "service_name",
    "start_time_unix_nano", "end_time_unix_nano", "status_code",
)  # fmt: skip


def dict_views(data: trace_pb2.TracesData, tenant_id: str = "") -> list[dict[str, Any]]:
    """``span_views`` as it was before ``SpanView``: the same checks, one dict per span."""
    views: list[dict[str, Any]] = []
    append = views.append
    max_time = MAX_TIME_UNIX_NANO
    for rs in data.resource_spans:
        resource_attributes = attributes_to_dict(rs.resource.attributes)
        tenant = resource_attributes.get(TENANT_KEY, tenant_id)
        service = resource_attributes.get(SERVICE_NAME_KEY, "")
        for ss in rs.scope_spans:
            scope = ss.scope
            for span in ss.spans:
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                tid = span.trace_id
                sid = span.span_id
                parent = span.parent_span_id
                if (
                    start > max_time
                    or end > max_time
                    or len(tid) != 16
                    or len(sid) != 8
                    or (parent and len(parent) != 8)
                    or span.events
                    or tid == ZERO_TRACE_ID
                    or sid == ZERO_SPAN_ID
                ) and span_problem(span) is not None:
                    raise ValueError("bench spans are all valid")
                if parent == ZERO_SPAN_ID:
                    parent = b""
                append(
                    {
                        "tenant_id": tenant,
                        "trace_id": tid,
                        "span_id": sid,
                        "parent_span_id": parent,
                        "trace_state": span.trace_state,
                        "name": span.name,
                        "kind": span.kind,
                        "service_name": service,
                        "start_time_unix_nano": start,
                        "end_time_unix_nano": end,
                        "status_code": span.status.code,
                        "resource_attributes": resource_attributes,
                        "_span": span,
                        "_scope": scope,
                    }
                )
    return views


class HandSlotted:
    """A slotted class with a hand-written ``__init__``: what a slotted dataclass generates."""

    __slots__ = (
        "attributes",
        "end_time_unix_nano",
        "kind",
        "name",
        "parent_span_id",
        "resource_attributes",
        "scope",
        "service_name",
        "span",
        "span_id",
        "start_time_unix_nano",
        "status_code",
        "tenant_id",
        "trace_id",
        "trace_state",
    )  # fmt: skip

    def __init__(
        self, tenant_id: str, trace_id: bytes, span_id: bytes, parent_span_id: bytes,
        trace_state: str, name: str, kind: int, service_name: str, start_time_unix_nano: int,
        end_time_unix_nano: int, status_code: int, resource_attributes: dict[str, str],
        span: Any, scope: Any,
    ) -> None:  # fmt: skip
        self.tenant_id = tenant_id
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.trace_state = trace_state
        self.name = name
        self.kind = kind
        self.service_name = service_name
        self.start_time_unix_nano = start_time_unix_nano
        self.end_time_unix_nano = end_time_unix_nano
        self.status_code = status_code
        self.resource_attributes = resource_attributes
        self.span = span
        self.scope = scope
        self.attributes: dict[str, str] | None = None


def _values(v: SpanView) -> tuple[Any, ...]:
    return (
        v.tenant_id, v.trace_id, v.span_id, v.parent_span_id, v.trace_state, v.name, v.kind,
        v.service_name, v.start_time_unix_nano, v.end_time_unix_nano, v.status_code,
        v.resource_attributes, v.span, v.scope,
    )  # fmt: skip


def shape_builders(values: list[tuple[Any, ...]]) -> dict[str, Callable[[], object]]:
    """One view per span from the same values, in each candidate shape."""

    def as_dict() -> object:
        return [
            {
                "tenant_id": a, "trace_id": b, "span_id": c, "parent_span_id": d,
                "trace_state": e, "name": f, "kind": g, "service_name": h,
                "start_time_unix_nano": i, "end_time_unix_nano": j, "status_code": k,
                "resource_attributes": m, "_span": n, "_scope": o,
            }
            for a, b, c, d, e, f, g, h, i, j, k, m, n, o in values
        ]  # fmt: skip

    def positional() -> object:
        return [SpanView(*v) for v in values]

    def keywords() -> object:
        return [
            SpanView(
                tenant_id=a, trace_id=b, span_id=c, parent_span_id=d, trace_state=e, name=f,
                kind=g, service_name=h, start_time_unix_nano=i, end_time_unix_nano=j,
                status_code=k, resource_attributes=m, span=n, scope=o,
            )
            for a, b, c, d, e, f, g, h, i, j, k, m, n, o in values
        ]  # fmt: skip

    def hand_slotted() -> object:
        return [HandSlotted(*v) for v in values]

    return {
        "dict literal": as_dict,
        "SpanView(positional)": positional,
        "SpanView(keywords)": keywords,
        "hand-written slotted": hand_slotted,
    }


def red_typed(views: list[SpanView]) -> None:
    for r in views:
        _key = (r.tenant_id, r.service_name, r.name, r.kind, r.status_code)
        _duration = r.end_time_unix_nano - r.start_time_unix_nano
        _error = r.status_code == 2


def red_dict(views: list[dict[str, Any]]) -> None:
    for r in views:
        _key = (r["tenant_id"], r["service_name"], r["name"], r["kind"], r["status_code"])
        _duration = r["end_time_unix_nano"] - r["start_time_unix_nano"]
        _error = r["status_code"] == 2


def graph_typed(views: list[SpanView]) -> None:
    for r in views:
        _half = (r.kind, r.tenant_id, r.service_name)
        _duration = max(0, r.end_time_unix_nano - r.start_time_unix_nano)
        _error = r.status_code == 2
        _ids = (r.trace_id, r.parent_span_id, r.span_id)


def graph_dict(views: list[dict[str, Any]]) -> None:
    for r in views:
        _half = (r["kind"], r["tenant_id"], r["service_name"])
        _duration = max(0, r["end_time_unix_nano"] - r["start_time_unix_nano"])
        _error = r["status_code"] == 2
        _ids = (r["trace_id"], r["parent_span_id"], r["span_id"])


_KIND_BYTE = [bytes([k]) for k in range(256)]


def key_typed(views: list[SpanView]) -> None:
    for v in views:
        _key = v.span_id + _KIND_BYTE[v.kind & 0xFF]


def key_dict(views: list[dict[str, Any]]) -> None:
    for v in views:
        _key = v["span_id"] + _KIND_BYTE[v["kind"] & 0xFF]


_GETTERS = tuple(attrgetter(f) for f in PACKED_FIELDS)


def pack_typed(views: list[SpanView]) -> None:
    columns = [list(map(get, views)) for get in _GETTERS]
    columns.append([v.span for v in views])
    columns.append([v.scope for v in views])
    columns.append([v.resource_attributes for v in views])


def pack_dict(views: list[dict[str, Any]]) -> None:
    columns = [[v[f] for v in views] for f in PACKED_FIELDS]
    columns.append([v["_span"] for v in views])
    columns.append([v["_scope"] for v in views])
    columns.append([v["resource_attributes"] for v in views])


def _variants(
    pairs: list[tuple[str, Callable[[], object], Callable[[], object]]],
    shapes: dict[str, Callable[[], object]],
) -> list[tuple[str, Callable[[], object]]]:
    out: list[tuple[str, Callable[[], object]]] = []
    for label, typed_fn, dict_fn in pairs:
        out += [(f"{label}: SpanView", typed_fn), (f"{label}: dict", dict_fn)]
    return out + [(f"shape: {label}", fn) for label, fn in shapes.items()]


def _sides(ratio_label: str) -> tuple[str, str]:
    """The two ns series a ratio divides."""
    if ratio_label.startswith("shape: "):
        return ratio_label, "shape: dict literal"
    return f"{ratio_label}: SpanView", f"{ratio_label}: dict"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20)
    ap.add_argument("--spans", type=int, default=500, help="spans per message")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    tune_gc()  # as the worker does
    data = [trace_pb2.TracesData.FromString(m) for m in build_messages(args.messages, args.spans)]
    typed = [v for d in data for v in span_views(d)]
    dicts = [v for d in data for v in dict_views(d)]
    spans = len(typed)
    assert spans == len(dicts) and all(
        _values(t) == tuple(d.values()) for t, d in zip(typed, dicts, strict=True)
    ), "both builders see the same spans"
    values = [_values(v) for v in typed]

    pairs: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        (
            "build (span_views)",
            lambda: [span_views(d) for d in data],
            lambda: [dict_views(d) for d in data],
        ),
        ("RED reads", lambda: red_typed(typed), lambda: red_dict(dicts)),
        ("graph reads", lambda: graph_typed(typed), lambda: graph_dict(dicts)),
        ("dedupe key", lambda: key_typed(typed), lambda: key_dict(dicts)),
        ("pack reads", lambda: pack_typed(typed), lambda: pack_dict(dicts)),
    ]
    shapes = shape_builders(values)
    ns: dict[str, list[float]] = {}

    # "gc.enable()": timeit turns the collector off by default; allocation is part of the cost.
    timers = {label: timeit.Timer(fn, "gc.enable()") for label, fn in _variants(pairs, shapes)}
    # Loops per sample: enough for ~50 ms, so one sample spans many scheduler slices.
    loops = {label: max(1, int(0.05 / t.timeit(1))) for label, t in timers.items()}

    def timed(label: str, fn: Callable[[], object]) -> float:
        per_span = timers[label].timeit(loops[label]) / loops[label] / spans * 1e9
        ns.setdefault(label, []).append(per_span)
        return per_span

    ratios: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for label, typed_fn, dict_fn in pairs:
            t = timed(f"{label}: SpanView", typed_fn)
            d = timed(f"{label}: dict", dict_fn)
            ratios.setdefault(label, []).append(t / d)
        base = timed("shape: dict literal", shapes["dict literal"])
        for label, fn in shapes.items():
            if label != "dict literal":
                ratios.setdefault(f"shape: {label}", []).append(timed(f"shape: {label}", fn) / base)

    print(f"spans={spans} rounds={args.rounds} python={sys.version.split()[0]}")
    print(f"{'':44} {'median':>8} {'min':>8}  ns/span")
    for label, samples in ns.items():
        print(f"{label:44} {statistics.median(samples):8.1f} {min(samples):8.1f}")
    print("typed / dict: median of per-round ratios (range), ratio of minima; below 1: cheaper")
    for label, rs in ratios.items():
        lo, hi = min(rs), max(rs)
        typed_label, dict_label = _sides(label)
        best = min(ns[typed_label]) / min(ns[dict_label])
        print(f"  {label:42} {statistics.median(rs):6.3f}  ({lo:.3f}-{hi:.3f})  {best:6.3f}")
    one = typed[0]
    print(
        f"bytes per view (sys.getsizeof): SpanView {sys.getsizeof(one)}, "
        f"dict {sys.getsizeof(dicts[0])}"
    )


if __name__ == "__main__":
    main()

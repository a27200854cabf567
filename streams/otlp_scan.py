"""Span views straight from OTLP bytes, by the compiled pass when it is built and can.

:func:`scan_views` returns the views of a serialized ``TracesData`` with everything packing
needs already rendered (hex ids, attribute text, events, links: :attr:`SpanView.rendered`), in
one compiled pass over the bytes (``streams/_otlp_scan.pyx``, ADR 0015). It returns None when
the message is not one that pass handles (anything malformed, any span storage refuses, any
merge protobuf would do) or when the module is not built: the caller then runs the protobuf
path (:func:`streams.span_views.span_views`), which owns every rejection and its reason. The
two paths give equal views for every message the compiled pass accepts
(``tests/unit/test_otlp_scan.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import fields
from types import ModuleType

from opentelemetry.proto.common.v1 import common_pb2

from streams.otlp_values import any_value_to_str
from streams.span_views import SERVICE_NAME_KEY, TENANT_KEY, SpanView

log = logging.getLogger(__name__)

# The build this Python side was written against (_otlp_scan.ABI).
ABI = 3


def _load() -> ModuleType | None:
    try:
        from streams import _otlp_scan  # type: ignore[attr-defined]
    except ImportError as exc:
        log.warning("streams: compiled OTLP scan not built (%s); protobuf path only", exc)
        return None
    if getattr(_otlp_scan, "ABI", None) != ABI:
        log.warning("streams: compiled OTLP scan is a stale build; rebuild with make setup")
        return None
    return _otlp_scan


_SCAN = _load()
ENABLED = _SCAN is not None
# Views are built by writing their slots (see use_layout in _otlp_scan.pyx) when the class
# allows it; otherwise by calling the class, with the same result.
DIRECT_VIEWS = bool(
    _SCAN is not None and _SCAN.use_layout(SpanView, tuple(f.name for f in fields(SpanView)))
)


def render_any(raw: bytes) -> str:
    """One serialized AnyValue as stored text, the protobuf path's way (the compiled pass asks
    for every value it does not render itself: doubles, bytes, arrays, maps)."""
    return any_value_to_str(common_pb2.AnyValue.FromString(raw))


def scan_views(payload: bytes, tenant_id: str = "", lazy: bool = False) -> list[SpanView] | None:
    """The views of ``payload`` by the compiled pass, or None: use the protobuf path.

    ``lazy`` views leave their text (attributes, hex ids, events, links) in the span's bytes
    until something asks (:func:`materialize`, or the accessors of :mod:`streams.span_views`):
    under tail sampling most spans are dropped, and rendering their text was a third of the
    pass. The message is checked as strictly either way, so the same messages fall back.
    """
    if _SCAN is None:
        return None
    try:
        views: list[SpanView] = _SCAN.scan(
            payload, SpanView, render_any, tenant_id, TENANT_KEY, SERVICE_NAME_KEY, lazy
        )
    except _SCAN.Fallback:
        return None
    return views


def materialize(views: Sequence[SpanView]) -> None:
    """Give every lazy view among ``views`` its attributes and rendered text, in place (what
    a rendering scan would have given it). Views already rendered are left as they are."""
    if _SCAN is None:
        return
    render = _SCAN.render
    for view in views:
        raw = view.raw
        if raw is None or view.rendered is not None:
            continue
        attrs, done = render(raw, view.raw_scope, render_any)
        if view.attributes is None:
            view.attributes = attrs
        view.rendered = done

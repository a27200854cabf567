"""Kept span views -> one ``span_batch`` v3 message, straight from the views' rendered text.

This is the only way spans leave the streams worker. Where it is built, one compiled walk
(``streams/_pack_columns.pyx``, ADR 0019) reads each view's slots and what it carries already
rendered (:attr:`~streams.span_views.SpanView.rendered`: the compiled OTLP pass fills it as it
reads the bytes, or here for its lazy views; :func:`~streams.span_views.rendered` for a
protobuf view), appends every value to its column's buffer in Arrow layout, and writes the
framed Avro message from those buffers (:func:`encode_views`).

This module's Python packer is the reference the walk is tested against, and what runs where
it is not built: each column of the v3 layout (:mod:`schemas.span_batch_v3`) is collected as a
flat Python list read off the views, then packed into one byte string in Arrow layout, and
fastavro frames the record. Either way there are no per-span record dicts, and the sink wraps
the buffers as Arrow arrays without copying (:mod:`sinks.packed_spans`). Values are converted
to text once per span: ids to lower-case hex, attributes as :mod:`streams.otlp_values` renders
them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from operator import attrgetter, itemgetter
from types import ModuleType
from typing import Any, cast

import numpy as np

from schemas import avro_codec
from schemas.span_batch_v3 import (
    LAYOUT,
    SCHEMA,
    SPAN_COUNT,
    SPAN_SCALARS,
    VERSION,
    offsets_field,
)
from streams.otlp_scan import materialize
from streams.span_views import (
    RenderedEvent,
    RenderedLink,
    SpanView,
    attributes_of,
    rendered,
)

log = logging.getLogger(__name__)

# The build of streams/_pack_columns.pyx this side was written against.
PACK_ABI = 2

_INT_TYPES: dict[str, np.dtype[Any]] = {"int32": np.dtype("<i4"), "int64": np.dtype("<i8")}

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
# These columns are read off the view by name, which mypy cannot follow: a layout column the
# view does not carry fails here, at import, rather than as a short column on the wire.
_MISSING = set(_VIEW_FIELDS) - {f.name for f in fields(SpanView)}
if _MISSING:
    raise ImportError(f"span_batch v3 columns SpanView does not carry: {sorted(_MISSING)}")
_VIEW_GETTERS = tuple((f, attrgetter(f)) for f in _VIEW_FIELDS)
# The derived scalars, by their place in streams.span_views.Rendered.
_RENDERED_GETTERS = tuple(
    (f, itemgetter(i))
    for i, f in enumerate(("trace_id", "span_id", "status_message", "scope_name", "scope_version"))
)
if {f for f, _ in _RENDERED_GETTERS} | {"parent_span_id"} != _DERIVED:
    raise ImportError("span_batch v3: derived columns and rendered fields disagree")


def pack_views(views: Sequence[SpanView]) -> dict[str, Any]:
    """The v3 ``SpanBatch`` record holding ``views`` (see :mod:`streams.span_views`) in order:
    by the compiled walk where it is built (``streams/_pack_columns.pyx``, ADR 0019), else by
    this module's Python packer, the reference it is tested against."""
    if _COMPILED is not None:
        materialize(views)  # lazy views (tail sampling) get their text here, in one pass
        return cast(dict[str, Any], _COMPILED.pack(list(views), rendered, attributes_of))
    return _pack(_columns(views))


def encode_views(views: Sequence[SpanView]) -> bytes:
    """The framed Avro ``span_batch`` v3 message of ``views``: what
    ``avro_codec.encode("span_batch", pack_views(views), 3)`` gives, written by the compiled
    walk straight from its column buffers where it is built (no record dict, no fastavro:
    that framing cost more per span than the compiled packing itself, ``bench/pack.py``)."""
    if _COMPILED is not None:
        materialize(views)
        return cast(bytes, _COMPILED.encode(list(views), rendered, attributes_of, _FRAME_HEADER))
    return avro_codec.encode(SCHEMA, _pack(_columns(views)), VERSION)


class OpenBatch:
    """A ``span_batch`` v3 message being packed as its spans come, by the compiled walk
    (:class:`streams.kept_packer.KeptPacker`, ADR 0021). Only where :data:`OPEN_BATCHES`:
    the Python packer has no buffers to keep open, its callers pack whole lists."""

    __slots__ = ("_columns",)

    def __init__(self) -> None:
        if _COMPILED is None:
            raise RuntimeError("open batches need the compiled span-batch packer")
        self._columns = _COMPILED.open_batch()

    def append(self, views: list[SpanView]) -> None:
        """Pack ``views`` after the spans already in, all or nothing (an error leaves the
        batch as it was and is raised)."""
        materialize(views)
        self._columns.append(views, rendered, attributes_of)

    def undo(self) -> None:
        """Take back the spans of the last :meth:`append`."""
        self._columns.undo()

    def __len__(self) -> int:
        return len(self._columns)

    def framed_size(self) -> int:
        """The length of :meth:`frame`'s message, without writing it."""
        return int(self._columns.framed_size(_FRAME_HEADER))

    def frame(self) -> bytes:
        """The framed message of the spans in: what :func:`encode_views` gives for them."""
        return cast(bytes, self._columns.frame(_FRAME_HEADER))


def _load_compiled() -> ModuleType | None:
    """The compiled packer, where it is built for this layout: it writes integers and offsets
    in the host's byte order (little-endian on the wire), and must write exactly the columns
    of :data:`schemas.span_batch_v3.LAYOUT`, in order."""
    if sys.byteorder != "little":
        return None
    try:
        from streams import _pack_columns  # type: ignore[attr-defined]
    except ImportError as exc:
        log.warning("streams: compiled span-batch packer not built (%s); Python packer", exc)
        return None
    if getattr(_pack_columns, "ABI", None) != PACK_ABI or tuple(LAYOUT.items()) != getattr(
        _pack_columns, "COLUMNS", None
    ):
        log.warning("streams: compiled span-batch packer is a stale build; rebuild with make setup")
        return None
    _pack_columns.use_layout(SpanView)
    return _pack_columns


def _put_map(m: dict[str, str], lengths: list[int], keys: list[str], values: list[str]) -> None:
    lengths.append(len(m))
    keys.extend(m)
    values.extend(m.values())


def _columns(views: Sequence[SpanView]) -> dict[str, list[Any]]:
    """Every v3 column as a Python list, in the order the layout nests them."""
    rec: dict[str, list[Any]] = {f: [] for f in LAYOUT}
    materialize(views)  # lazy views (tail sampling) get their text here, in one pass
    for f, get in _VIEW_GETTERS:
        rec[f] = list(map(get, views))
    texts = [v.rendered or rendered(v) for v in views]
    for f, item in _RENDERED_GETTERS:
        rec[f] = list(map(item, texts))
    # From the view, not the rendered text: a parent may have been re-linked since.
    rec["parent_span_id"] = [v.parent_span_id.hex() for v in views]

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
    for view, text in zip(views, texts, strict=True):
        resource = view.resource_attributes
        slot = resource_slot.get(id(resource))
        if slot is None:
            slot = resource_slot[id(resource)] = len(res_lengths)
            _put_map(resource, res_lengths, res_keys, res_values)
        res_index.append(slot)
        attrs = view.attributes
        if attrs is None:
            attrs = attributes_of(view)
        attr_lengths.append(len(attrs))
        if attrs:
            attr_keys.extend(attrs)
            attr_values.extend(attrs.values())
        # Most spans have neither events nor links: skip the calls for them.
        events, links = text[6], text[7]
        if events:
            _put_events(events, rec)
        event_counts.append(len(events))
        if links:
            _put_links(links, rec)
        link_counts.append(len(links))
    return rec


def _put_events(events: Sequence[RenderedEvent], rec: dict[str, list[Any]]) -> None:
    for time_unix_nano, name, attrs in events:
        rec["event_time_unix_nano"].append(time_unix_nano)
        rec["event_name"].append(name)
        _put_map(
            attrs,
            rec["event_attribute_lengths"],
            rec["event_attribute_keys"],
            rec["event_attribute_values"],
        )


def _put_links(links: Sequence[RenderedLink], rec: dict[str, list[Any]]) -> None:
    for trace_id, span_id, trace_state, attrs in links:
        rec["link_trace_id"].append(trace_id)
        rec["link_span_id"].append(span_id)
        rec["link_trace_state"].append(trace_state)
        _put_map(
            attrs,
            rec["link_attribute_lengths"],
            rec["link_attribute_keys"],
            rec["link_attribute_values"],
        )


def _load_utf8_column() -> Callable[[list[str]], tuple[bytes, bytes]] | None:
    """The compiled column packer (streams/_utf8_column.pyx), where it is built: it writes the
    offsets in the host's byte order, which the wire's little-endian order is only on a
    little-endian host."""
    if sys.byteorder != "little":
        return None
    try:
        from streams._utf8_column import utf8_column
    except ImportError:
        return None
    return cast(Callable[[list[str]], tuple[bytes, bytes]], utf8_column)


def _utf8(values: Sequence[str]) -> tuple[bytes, bytes]:
    """UTF-8 data and int32 LE offsets; one encode of the joined text when it is ASCII."""
    joined = "".join(values)
    data = joined.encode()
    if len(data) == len(joined):  # ASCII: every character is one byte
        lengths = np.fromiter(map(len, values), np.int64, len(values))
    else:
        encoded = [v.encode() for v in values]
        lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:
        raise OverflowError("span_batch v3: a string column exceeds 2 GiB")
    return data, offsets.astype("<i4").tobytes()


_UTF8_COLUMN = _load_utf8_column() or _utf8
_COMPILED = _load_compiled()
_FRAME_HEADER = bytes((avro_codec.MAGIC, VERSION))
# Whether :class:`OpenBatch` can be used here.
OPEN_BATCHES = _COMPILED is not None


def _pack(rec: dict[str, list[Any]]) -> dict[str, Any]:
    """Column lists -> the v3 record: every column as one Arrow-layout byte string."""
    out: dict[str, Any] = {SPAN_COUNT: len(rec["trace_id"])}
    for field, layout in LAYOUT.items():
        values = rec[field]
        if layout == "utf8":
            out[field], out[offsets_field(field)] = _UTF8_COLUMN(values)
        else:
            # np.array raises OverflowError for Python ints outside the width; it never wraps
            # silently, so the encoder refuses the span instead of storing a wrong number.
            out[field] = np.array(values, dtype=_INT_TYPES[layout]).tobytes()
    return out

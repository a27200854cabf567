"""Cheap per-span views: the one in-memory shape of a span inside the streams worker.

RED, the service graph and most policies need a dozen scalar fields per span, while converting
everything (hex ids, attribute maps, events, links) costs most of the per-span time. Since tail
sampling usually keeps a small share of spans, views carry the scalars plus a reference to the
protobuf span, and only spans that leave the worker are converted, column by column, by
:mod:`streams.packed_batch`. Ids stay bytes here (hex is for the wire). The service name and
the tenant come from the resource (the tenant as ``tracehouse.tenant``, set by ingest).

A view is a slotted class, not a dict: mypy checks every field name its consumers read, and
it is cheaper than the dict it replaced, both to build (positionally: keyword arguments would
cost more than the dict) and to read, and a third of its size (measured with
``bench.span_view``; see docs/perf.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from schemas.span_limits import MAX_TIME_UNIX_NANO, ZERO_SPAN_ID, ZERO_TRACE_ID
from schemas.span_limits import span_problem as storable_problem
from streams.otlp_values import any_value_to_str, attributes_to_dict

SERVICE_NAME_KEY = "service.name"
TENANT_KEY = "tracehouse.tenant"


# An event as packing writes it: (time, name, attributes as text).
RenderedEvent = tuple[int, str, dict[str, str]]
# A link as packing writes it: (trace id hex, span id hex, trace state, attributes as text).
RenderedLink = tuple[str, str, str, dict[str, str]]
# What a kept span adds to its view on the wire: (trace id hex, span id hex, status message,
# scope name, scope version, protobuf size in bytes, events, links). Only what never changes
# after the view is built: the parent may (streams.zipkin_links re-parents orphaned shared
# servers before packing), so its hex is made when packing.
Rendered = tuple[str, str, str, str, str, int, Sequence[RenderedEvent], Sequence[RenderedLink]]


@dataclass(slots=True, eq=False)
class SpanView:
    """One storable span as streams sees it: the scalars every span is read for, plus the
    protobuf span and scope it came from (read only for spans that are kept).

    Built positionally, in field order, by :func:`span_views` (once per span, so the cheapest
    construction counts). ``resource_attributes`` is shared by every view of one
    ``ResourceSpans``: never mutate it. Views compare by identity; whether two views are
    copies of one span is :mod:`streams.span_fingerprint`'s question.
    """

    tenant_id: str
    trace_id: bytes  # 16 bytes, never all zero
    span_id: bytes  # 8 bytes, never all zero
    parent_span_id: bytes  # 8 bytes, or empty for a root (eight zero bytes become empty)
    trace_state: str
    name: str
    kind: int  # OTLP SpanKind number
    service_name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    status_code: int  # OTLP StatusCode number
    resource_attributes: dict[str, str]
    # The protobuf span and scope it came from; None for a view the compiled pass built
    # (streams.otlp_scan), which carries ``rendered`` instead.
    span: trace_pb2.Span | None
    scope: common_pb2.InstrumentationScope | None
    # The span's attributes as strings once something asked for all of them (attributes_of).
    attributes: dict[str, str] | None = None
    # How many spans this one stands for, once streams.adjusted_count worked it out (0: not
    # yet); RED and the service graph both ask.
    adjusted: float = 0.0
    # What packing writes beyond the fields above, already as text (see :data:`Rendered`):
    # set by the compiled pass, or by :func:`rendered` on first use.
    rendered: Rendered | None = None
    # A lazy view of the compiled pass (tail sampling: most spans are dropped unread): the
    # span's checked OTLP bytes and its scope's (name, version), from which ``attributes``
    # and ``rendered`` are made on first use (streams.otlp_scan.materialize).
    raw: bytes | None = None
    raw_scope: tuple[str, str] | None = None


class InvalidSpan(ValueError):
    """A span storage cannot hold, met where the caller asked for no rejection list."""


# A rejected span, with enough context to dead-letter it as valid OTLP: (reason, resource
# spans, scope spans, span).
Rejected = tuple[str, trace_pb2.ResourceSpans, trace_pb2.ScopeSpans, trace_pb2.Span]

# Streams names id problems by id rather than by defect (its labels came first); the check
# itself is the shared one.
_STREAMS_REASON = {
    "invalid_trace_id_length": "invalid_trace_id",
    "zero_trace_id": "invalid_trace_id",
    "invalid_span_id_length": "invalid_span_id",
    "zero_span_id": "invalid_span_id",
}


def span_problem(span: trace_pb2.Span) -> str | None:
    """Why a span from the raw topic cannot be stored, or None.

    Ingest already refuses these, but high-volume producers write the raw topic directly, so
    streams checks again with the same definition (:func:`schemas.span_limits.span_problem`)
    rather than letting one span overflow an int64 further on.
    """
    reason = storable_problem(span)
    return _STREAMS_REASON.get(reason, reason) if reason else None


def span_views(
    data: trace_pb2.TracesData, tenant_id: str = "", rejected: list[Rejected] | None = None
) -> list[SpanView]:
    """Views of every storable span of ``data``.

    Spans that fail :func:`span_problem` go to ``rejected`` with their reason; without a list
    to put them in, one raises :class:`InvalidSpan` (never a silent drop). A parent span id of
    eight zero bytes means "no parent" (some SDKs send it for roots) and becomes empty.
    """
    views: list[SpanView] = []
    append = views.append
    new_view = SpanView  # a local: one global lookup per call, not per span
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
                # Fast path: the common valid span costs a few comparisons.
                if (
                    start > max_time
                    or end > max_time
                    or len(tid) != 16
                    or len(sid) != 8
                    or (parent and len(parent) != 8)
                    or span.events
                    or tid == ZERO_TRACE_ID
                    or sid == ZERO_SPAN_ID
                ):
                    reason = span_problem(span)
                    if reason is not None:
                        if rejected is None:
                            raise InvalidSpan(reason)
                        rejected.append((reason, rs, ss, span))
                        continue
                if parent == ZERO_SPAN_ID:
                    parent = b""
                append(
                    new_view(
                        tenant,
                        tid,
                        sid,
                        parent,
                        span.trace_state,
                        span.name,
                        span.kind,
                        service,
                        start,
                        end,
                        span.status.code,
                        resource_attributes,
                        span,
                        scope,
                    )
                )
    return views


def rejected_payload(rejected: list[Rejected]) -> bytes:
    """The rejected spans as one valid OTLP ``TracesData`` (resource and scope kept), for the
    DLQ: an operator can read, fix and re-publish exactly what was refused."""
    data = trace_pb2.TracesData()
    for _reason, rs, ss, span in rejected:
        out_rs = data.resource_spans.add()
        out_rs.resource.CopyFrom(rs.resource)
        out_rs.schema_url = rs.schema_url
        out_ss = out_rs.scope_spans.add()
        out_ss.scope.CopyFrom(ss.scope)
        out_ss.schema_url = ss.schema_url
        out_ss.spans.add().CopyFrom(span)
    return data.SerializeToString()


def _render_lazy(view: SpanView) -> None:
    # Imported here: streams.otlp_scan builds views of this module's class.
    from streams.otlp_scan import materialize

    materialize([view])


def attributes_of(view: SpanView) -> dict[str, str]:
    """The span's attributes as strings, converted on first use and then cached in the view
    (a rendered view of the compiled pass has them from the start)."""
    attrs = view.attributes
    if attrs is None:
        if view.raw is not None:
            _render_lazy(view)
            assert view.attributes is not None
            return view.attributes
        span = view.span
        assert span is not None  # only protobuf and lazy views start without attributes
        attrs = view.attributes = attributes_to_dict(span.attributes) if span.attributes else {}
    return attrs


def rendered(view: SpanView) -> Rendered:
    """What packing writes beyond the view's fields, rendered on first use for a protobuf or
    a lazy view (the compiled pass renders it while it reads the bytes unless asked not to)."""
    done = view.rendered
    if done is not None:
        return done
    if view.raw is not None:
        _render_lazy(view)
        assert view.rendered is not None
        return view.rendered
    span, scope = view.span, view.scope
    assert span is not None and scope is not None  # views without a span come rendered
    events: Sequence[RenderedEvent] = (
        [(e.time_unix_nano, e.name, attributes_to_dict(e.attributes)) for e in span.events]
        if span.events
        else ()
    )
    links: Sequence[RenderedLink] = [
        (link.trace_id.hex(), link.span_id.hex(), link.trace_state,
         attributes_to_dict(link.attributes))
        for link in span.links
    ] if span.links else ()  # fmt: skip
    done = view.rendered = (
        view.trace_id.hex(),
        view.span_id.hex(),
        span.status.message,
        scope.name,
        scope.version,
        span.ByteSize(),
        events,
        links,
    )
    return done


def wire_size(view: SpanView) -> int:
    """The span's protobuf size in bytes (for cutting messages and describing refusals)."""
    if view.rendered is not None:
        return view.rendered[5]
    if view.raw is not None:
        return len(view.raw)
    assert view.span is not None
    return int(view.span.ByteSize())


def text_attributes(view: SpanView) -> dict[str, str] | None:
    """The span's attributes as text when they cost no protobuf walk: already converted, or a
    lazy view's (rendered now, from its bytes in one compiled pass). None for a protobuf view
    not yet converted, whose caller may read only the attributes it needs."""
    if view.attributes is None and view.raw is not None:
        return attributes_of(view)
    return view.attributes


def first_attribute(view: SpanView, keys: tuple[str, ...]) -> str:
    """The value of the first of ``keys`` the span has, without converting all attributes."""
    attrs = text_attributes(view)
    if attrs is not None:
        for k in keys:
            if k in attrs:
                return attrs[k]
        return ""
    assert view.span is not None  # only protobuf views start without attributes
    found: dict[str, common_pb2.AnyValue] = {}
    for kv in view.span.attributes:
        if kv.key in keys:
            found[kv.key] = kv.value
    for k in keys:
        if k in found:
            return any_value_to_str(found[k])
    return ""

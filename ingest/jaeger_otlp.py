"""Decoded Jaeger batches -> OTLP ``TracesData``, the mapping the OTel Collector's jaeger
receiver applies (pure), so a span looks the same whichever way it reached us.

- one ResourceSpans per distinct process: ``serviceName`` -> ``service.name``, process tags ->
  resource attributes (``hostname`` -> ``host.name`` and ``jaeger.version`` ->
  ``opencensus.exporterversion = Jaeger-<v>`` unless those keys are already there);
- spans grouped into ScopeSpans by their ``otel.scope.name``/``otel.scope.version`` tags
  (``otel.library.*``, their old names, too), which are removed from the attributes;
- 128-bit trace ids from traceIdHigh/Low (high 0 for 64-bit ids: the id is left-padded);
- parent: thrift's ``parentSpanId`` when non-zero, else the first CHILD_OF reference into the
  same trace, else the first FOLLOWS_FROM one; every other reference becomes a link with
  ``opentracing.ref_type`` = ``child_of`` / ``follows_from``;
- ``span.kind`` tag -> kind (client/server/producer/consumer/internal; absent or other ->
  unspecified), removed;
- status: ``error=true`` (bool) -> ERROR with ``otel.status_description`` (or
  ``http.status_message``) as message; else ``otel.status_code`` OK/ERROR with its
  description; else ``http.status_code`` outside 100..398 -> ERROR (but not 4xx on server
  spans). The tags
  that became the status are removed (``error=false`` stays an attribute);
- ``w3c.tracestate`` tag -> trace state; flags bit 1 (sampled) -> OTLP flags bit 1;
- logs -> events, the ``event`` field (a string) as the event name;
- tags keep their types (string, double, bool, int64, bytes). Repeated keys: the last wins,
  as in the Collector's attribute map.

Spans a decoder marked with a problem are not translated but counted under their reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.decoded import Decoded
from ingest.jaeger_batch import BINARY, BOOL, CHILD_OF, DOUBLE, LONG, Batch, Process, Span, Tag

_KINDS = {
    "client": trace_pb2.Span.SPAN_KIND_CLIENT,
    "server": trace_pb2.Span.SPAN_KIND_SERVER,
    "producer": trace_pb2.Span.SPAN_KIND_PRODUCER,
    "consumer": trace_pb2.Span.SPAN_KIND_CONSUMER,
    "internal": trace_pb2.Span.SPAN_KIND_INTERNAL,
}
_SCOPE_NAME_KEYS = ("otel.scope.name", "otel.library.name")
_SCOPE_VERSION_KEYS = ("otel.scope.version", "otel.library.version")
SAMPLED_FLAG = 0x1


def any_value(tag: Tag) -> common_pb2.AnyValue:
    kind, value = tag.kind, tag.value
    if kind == BOOL:
        return common_pb2.AnyValue(bool_value=bool(value))
    if kind == LONG:
        return common_pb2.AnyValue(int_value=int(value))
    if kind == DOUBLE:
        return common_pb2.AnyValue(double_value=float(value))
    if kind == BINARY:
        return common_pb2.AnyValue(bytes_value=bytes(value))  # type: ignore[arg-type]
    return common_pb2.AnyValue(string_value=str(value))


def _as_map(tags: Iterable[Tag]) -> dict[str, Tag]:
    """Tags by key, last one winning (a dict keeps first-insertion order)."""
    out: dict[str, Tag] = {}
    for tag in tags:
        out[tag.key] = tag
    return out


def _put(dest: object, attrs: dict[str, Tag]) -> None:
    target = dest.attributes  # type: ignore[attr-defined]
    for key, tag in attrs.items():
        target.append(common_pb2.KeyValue(key=key, value=any_value(tag)))


def _resource_attrs(process: Process | None) -> dict[str, Tag]:
    if process is None:
        return {}
    attrs: dict[str, Tag] = {}
    if process.service_name:
        attrs["service.name"] = Tag("service.name", "string", process.service_name)
    attrs.update(_as_map(process.tags))
    hostname = attrs.get("hostname")
    if hostname is not None and "host.name" not in attrs:
        del attrs["hostname"]
        attrs["host.name"] = Tag("host.name", hostname.kind, hostname.value)
    version = attrs.get("jaeger.version")
    if version is not None and "opencensus.exporterversion" not in attrs:
        del attrs["jaeger.version"]
        text = version.value if isinstance(version.value, str) else ""
        attrs["opencensus.exporterversion"] = Tag(
            "opencensus.exporterversion", "string", "Jaeger-" + text
        )
    return attrs


def _text(tag: Tag | None) -> str:
    return tag.value if tag is not None and isinstance(tag.value, str) else ""


def _pop_scope(attrs: dict[str, Tag]) -> tuple[str, str]:
    name = version = ""
    for key in _SCOPE_NAME_KEYS:
        if key in attrs:
            name = name or _text(attrs.pop(key))
    for key in _SCOPE_VERSION_KEYS:
        if key in attrs:
            version = version or _text(attrs.pop(key))
    return name, version


def _http_code(tag: Tag | None) -> int | None:
    if tag is None:
        return None
    if tag.kind == LONG:
        return int(tag.value)
    if isinstance(tag.value, str):
        try:
            return int(tag.value, 10)
        except ValueError:
            return None
    return None


def _set_status(span: trace_pb2.Span, attrs: dict[str, Tag]) -> None:
    error = attrs.get("error")
    if error is not None and error.kind == BOOL and error.value is True:
        del attrs["error"]
        span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
        desc = attrs.pop("otel.status_description", None)
        message = desc if desc is not None else attrs.get("http.status_message")
        span.status.message = _text(message)
        attrs.pop("otel.status_code", None)
        return
    code = attrs.pop("otel.status_code", None)
    if code is not None:
        upper = _text(code).upper()
        if upper == "OK":
            span.status.code = trace_pb2.Status.STATUS_CODE_OK
        elif upper == "ERROR":
            span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
        span.status.message = _text(attrs.pop("otel.status_description", None))
        return
    http = _http_code(attrs.get("http.status_code"))
    if http is None:
        return
    if 400 <= http < 500 and span.kind == trace_pb2.Span.SPAN_KIND_SERVER:
        failed = False  # a server answering 4xx did its job (OTel HTTP semantic conventions)
    else:
        failed = not 100 <= http < 399
    if failed:
        span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
        span.status.message = _text(attrs.get("http.status_message"))


def _parent(span: Span) -> bytes:
    if span.parent_span_id and any(span.parent_span_id):
        return span.parent_span_id
    follows: bytes = b""
    for ref in span.references:
        if ref.trace_id != span.trace_id:
            continue
        if ref.ref_type == CHILD_OF:
            return ref.span_id
        if not follows:
            follows = ref.span_id
    return follows


def _translate(src: Span, dest: trace_pb2.Span, attrs: dict[str, Tag]) -> None:
    dest.trace_id = src.trace_id
    dest.span_id = src.span_id
    parent = _parent(src)
    dest.parent_span_id = parent
    dest.name = src.operation_name
    dest.start_time_unix_nano = src.start_unix_nano
    dest.end_time_unix_nano = src.end_unix_nano
    if src.flags & SAMPLED_FLAG:
        dest.flags = SAMPLED_FLAG
    kind = attrs.pop("span.kind", None)
    if kind is not None:
        dest.kind = _KINDS.get(_text(kind), trace_pb2.Span.SPAN_KIND_UNSPECIFIED)
    _set_status(dest, attrs)
    state = attrs.pop("w3c.tracestate", None)
    if state is not None:
        dest.trace_state = _text(state)
    _put(dest, attrs)
    for log in src.logs:
        event = dest.events.add()
        event.time_unix_nano = log.time_unix_nano
        fields = _as_map(log.fields)
        name = fields.get("event")
        if name is not None and isinstance(name.value, str) and name.kind == "string":
            event.name = name.value
            del fields["event"]
        _put(event, fields)
    for ref in src.references:
        if ref.ref_type == CHILD_OF and ref.span_id == parent and ref.trace_id == src.trace_id:
            continue  # the parent itself (the Collector compares span ids only: a CHILD_OF
            # into another trace that happens to share the id would be lost; we keep it)
        link = dest.links.add()
        link.trace_id = ref.trace_id
        link.span_id = ref.span_id
        link.attributes.append(
            common_pb2.KeyValue(
                key="opentracing.ref_type",
                value=common_pb2.AnyValue(
                    string_value="child_of" if ref.ref_type == CHILD_OF else "follows_from"
                ),
            )
        )


def batches_to_otlp(batches: Iterable[Batch]) -> Decoded:
    """Translate every usable span; spans with a problem are counted by reason instead."""
    data = trace_pb2.TracesData()
    rejected: Counter[str] = Counter()
    resources: dict[tuple[object, ...], tuple[trace_pb2.ResourceSpans, dict[object, object]]]
    resources = {}
    for batch in batches:
        for span in batch.spans:
            problem = batch.process_problem or span.problem
            if problem is not None:
                rejected[problem] += 1
                continue
            process = span.process if span.process is not None else batch.process
            key = process.identity() if process is not None else ()
            entry = resources.get(key)
            if entry is None:
                rs = data.resource_spans.add()
                _put(rs.resource, _resource_attrs(process))
                entry = resources[key] = (rs, {})
            rs, scopes = entry
            attrs = _as_map(span.tags)
            scope_key = _pop_scope(attrs)
            ss = scopes.get(scope_key)
            if ss is None:
                ss = rs.scope_spans.add()
                ss.scope.name, ss.scope.version = scope_key
                scopes[scope_key] = ss
            _translate(span, ss.spans.add(), attrs)  # type: ignore[attr-defined]
    return Decoded(data, rejected)

"""Zipkin v1 JSON spans (``POST /api/v1/spans``) -> Zipkin v2 span objects.

v1 describes a span by its *annotations*: the core ones ``cs``/``cr`` (client send/receive),
``sr``/``ss`` (server receive/send), ``ms``/``mr`` (message send/receive) each carry the
endpoint of the process that logged them, and ``binaryAnnotations`` hold tags plus the address
annotations ``ca``/``sa``/``ma`` (client/server/message address). One v1 span may hold both the
client and the server half of an RPC (they share one id). Translating to v2 first lets the v2
-> OTLP conversion (``ingest.zipkin``) stay the only place that knows OTLP. The rules follow
Zipkin's own v1 -> v2 conversion:

- client half (``cs`` or ``cr``): kind CLIENT, local endpoint of ``cs`` (else ``cr``), start =
  v1 ``timestamp`` else ``cs``, duration = v1 ``duration`` else ``cr - cs``; remote = ``sa``;
- server half (``sr`` or ``ss``): kind SERVER, local endpoint of ``sr`` (else ``ss``), times
  from ``sr``/``ss`` (or the v1 times when there is no client half); remote = ``ca``. It is
  ``shared`` when the span also has a client half, or when it has no v1 ``timestamp`` (v1's
  convention: only the side that started a span id reports its timestamp);
- ``ms`` -> PRODUCER, ``mr`` -> CONSUMER, remote = ``ma``;
- no core annotation: one span without kind, local endpoint of ``lc`` or the first endpoint
  found; an ``sa`` alone makes it a CLIENT (an uninstrumented server), a ``ca`` alone a SERVER;
- other annotations become v2 annotations and other binary annotations v2 tags (booleans as
  ``true``/``false``, numbers as text) on the half whose service logged them, else the first
  half; ``lc`` stays a tag (Zipkin's "local component").

Per span problems raise ``zipkin.SpanRejected`` with a reason so the span is refused alone.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ingest.decoded import Decoded
from ingest.errors import BodyError, parse_json_body
from ingest.zipkin import REQUEST_REASON, SpanRejected, check_span_count, convert_spans, micros
from ingest.zipkin_version import require_version

_CORE = {"cs", "cr", "sr", "ss", "ms", "mr"}
_ADDRESSES = {"ca", "sa", "ma"}
MAX_V1_FIELDS = 10_000  # annotations + binary annotations of one span: bounds the work per span


def _list(value: Any, reason: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SpanRejected(reason)
    if len(value) > MAX_V1_FIELDS:
        raise SpanRejected(reason)
    return value


def _endpoint(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SpanRejected("invalid_endpoint")
    return value


def _service(endpoint: dict[str, Any] | None) -> Any:
    return endpoint.get("serviceName") if endpoint else None


def _tag_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    raise SpanRejected("invalid_binary_annotations")


class _Half:
    """One v2 span being built from a v1 span."""

    def __init__(self, v1: dict[str, Any], kind: str | None, local: dict[str, Any] | None):
        self.span: dict[str, Any] = {
            "traceId": v1.get("traceId"),
            "id": v1.get("id"),
            "parentId": v1.get("parentId"),
            "name": v1.get("name"),
        }
        if kind:
            self.span["kind"] = kind
        if local is not None:
            self.span["localEndpoint"] = local
        if v1.get("debug") is True:
            self.span["debug"] = True
        self.annotations: list[dict[str, Any]] = []
        self.tags: dict[str, str] = {}

    @property
    def service(self) -> Any:
        return _service(self.span.get("localEndpoint"))

    def times(self, start: int | None, end: int | None, duration: int | None = None) -> None:
        if start is not None:
            self.span["timestamp"] = start
            if duration is None and end is not None and end >= start:
                duration = end - start
        if duration is not None:
            self.span["duration"] = duration

    def done(self) -> dict[str, Any]:
        if self.annotations:
            self.span["annotations"] = self.annotations
        if self.tags:
            self.span["tags"] = self.tags
        return self.span


def translate(v1: Any) -> list[dict[str, Any]]:
    """The v2 spans (one, or two for a span holding both RPC halves) of one v1 span."""
    if not isinstance(v1, dict):
        raise SpanRejected("malformed_span")
    annotations = _list(v1.get("annotations"), "invalid_annotations")
    binary = _list(v1.get("binaryAnnotations"), "invalid_binary_annotations")
    core: dict[str, tuple[int, dict[str, Any] | None]] = {}
    others: list[tuple[int, str, dict[str, Any] | None]] = []
    for a in annotations:
        if not isinstance(a, dict) or not isinstance(a.get("value"), str):
            raise SpanRejected("invalid_annotations")
        ts = micros(a.get("timestamp"), "invalid_annotations")
        endpoint = _endpoint(a.get("endpoint"))
        if a["value"] in _CORE and a["value"] not in core:
            core[a["value"]] = (ts, endpoint)
        else:
            others.append((ts, a["value"], endpoint))
    addresses: dict[str, dict[str, Any] | None] = {}
    tags: list[tuple[str, str, dict[str, Any] | None]] = []
    for b in binary:
        if not isinstance(b, dict) or not isinstance(b.get("key"), str) or "value" not in b:
            raise SpanRejected("invalid_binary_annotations")
        endpoint = _endpoint(b.get("endpoint"))
        if b["key"] in _ADDRESSES and b["value"] is True:
            addresses[b["key"]] = endpoint
        else:
            tags.append((b["key"], _tag_text(b["value"]), endpoint))
    timestamp = micros(v1["timestamp"], "invalid_timestamp") if v1.get("timestamp") else None
    duration = micros(v1["duration"], "invalid_duration") if v1.get("duration") else None

    def at(name: str) -> int | None:
        return core[name][0] if name in core else None

    def where(*names: str) -> dict[str, Any] | None:
        for name in names:
            if name in core and core[name][1] is not None:
                return core[name][1]
        return None

    halves: list[_Half] = []
    client = server = None
    if "cs" in core or "cr" in core:
        client = _Half(v1, "CLIENT", where("cs", "cr"))
        if timestamp is not None:
            client.times(timestamp, None, duration)
        else:
            client.times(at("cs"), at("cr"))
        halves.append(client)
    if "sr" in core or "ss" in core:
        server = _Half(v1, "SERVER", where("sr", "ss"))
        if client is None and timestamp is not None:
            server.times(timestamp, None, duration)
        else:
            server.times(at("sr"), at("ss"))
        if client is not None or timestamp is None:
            server.span["shared"] = True
        halves.append(server)
    # Messaging: a producer spans ``ms`` (send) to ``ws`` (wire send); a consumer ``wr`` (wire
    # receive) to ``mr`` (message receive), or starts at ``mr`` alone.
    wire = {value: ts for ts, value, _e in others if value in ("ws", "wr")}
    for name, kind, start, end in (("ms", "PRODUCER", "ms", "ws"), ("mr", "CONSUMER", "wr", "mr")):
        if name in core and not halves:
            half = _Half(v1, kind, where(name))
            begin = at(start) if start in core else wire.get(start)
            finish = at(end) if end in core else wire.get(end)
            if begin is None:
                begin, finish = finish, None
            if timestamp is not None:
                half.times(timestamp, None, duration)
            else:
                half.times(begin, finish)
            if "ma" in addresses:
                half.span["remoteEndpoint"] = addresses["ma"]
            halves.append(half)
            others = [o for o in others if o[1] not in (start, end)]
    if not halves:
        endpoints = [e for key, _t, e in tags if key == "lc"]
        endpoints += [e for _ts, _v, e in others] + [e for _k, _t, e in tags]
        local = next((e for e in endpoints if e is not None), None)
        lone_kind = "CLIENT" if "sa" in addresses else "SERVER" if "ca" in addresses else None
        half = _Half(v1, lone_kind, local)
        half.times(timestamp, None, duration)
        halves.append(half)
        client = half if lone_kind == "CLIENT" else None
        server = half if lone_kind == "SERVER" else None
    if client is not None and addresses.get("sa") is not None:
        client.span["remoteEndpoint"] = addresses["sa"]
    if server is not None and addresses.get("ca") is not None:
        server.span["remoteEndpoint"] = addresses["ca"]

    def owner(endpoint: dict[str, Any] | None) -> _Half:
        service = _service(endpoint)
        if service is not None:
            for half in halves:
                if half.service == service:
                    return half
        return halves[0]

    for ts, value, endpoint in others:
        owner(endpoint).annotations.append({"timestamp": ts, "value": value})
    for key, text, endpoint in tags:
        owner(endpoint).tags[key] = text
    return [half.done() for half in halves]


def decode_request(body: bytes) -> Decoded:
    """Parse a Zipkin v1 JSON span list and convert it like a v2 body, span by span.

    A body that is v2 JSON by its shape is a 400 (``zipkin_version``); so is one that is not a
    JSON array, and one whose every span was malformed.
    """
    doc = parse_json_body(body)
    if not isinstance(doc, list):
        raise BodyError(400, REQUEST_REASON, "Zipkin v1 body must be a JSON array of spans")
    require_version(doc, 1)
    check_span_count(len(doc))
    rejected: Counter[str] = Counter()
    v2: list[Any] = []
    for span in doc:
        try:
            v2.extend(translate(span))
        except SpanRejected as exc:
            rejected[exc.reason] += 1
    return convert_spans(v2, rejected)

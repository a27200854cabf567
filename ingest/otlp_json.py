"""OTLP/JSON <-> protobuf, per the OTLP specification's JSON encoding.

OTLP/JSON is proto3 JSON with three differences that a plain ``json_format.Parse`` gets wrong:
trace and span ids are hex strings (not base64), enums may be given as integers, and unknown
fields must be ignored. int64 values may be strings or numbers, which proto3 JSON accepts.

Spans are parsed one by one, so a span the decoder can delimit but not use (ids that are not
hex, an attribute of an unsupported shape, a lone surrogate, a negative time) is refused alone,
by reason, and reported in ``partial_success``; only a body whose structure hides the spans
(not JSON, not an object, ``resourceSpans`` not a list, nesting deeper than
``errors.MAX_JSON_DEPTH``) is a 400 for the whole request. Parse errors of any type are caught
per span: nothing a client sends reaches the receiver as an unexpected exception.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.decoded import Decoded, finish
from ingest.errors import BodyError, parse_json_body

REQUEST_REASON = "invalid_otlp_json"

# (JSON name, proto name, reason when the value is not a hex string) of the span's ids;
# both names are legal keys in proto3 JSON.
_SPAN_IDS = (
    ("traceId", "trace_id", "invalid_trace_id_encoding"),
    ("spanId", "span_id", "invalid_span_id_encoding"),
    ("parentSpanId", "parent_span_id", "invalid_parent_span_id_encoding"),
)
# An id that is not hex but is valid base64 of the id's width: the common mistake of a generic
# proto3 JSON encoder (bytes -> base64). Its own reason tells the sender exactly what to fix.
_BASE64_REASONS = {
    "invalid_trace_id_encoding": ("trace_id_base64_not_hex", 16),
    "invalid_span_id_encoding": ("span_id_base64_not_hex", 8),
    "invalid_parent_span_id_encoding": ("parent_span_id_base64_not_hex", 8),
}
_LINK_IDS = (("traceId", "trace_id"), ("spanId", "span_id"))
# json_format names the top-level field that failed: "Failed to parse <field> field: ...".
_FAILED_FIELD = re.compile(r"Failed to parse (\w+) field")
_FIELD_REASONS = {
    "attributes": "invalid_attribute",
    "events": "invalid_event",
    "links": "invalid_link",
    "startTimeUnixNano": "invalid_timestamp",
    "start_time_unix_nano": "invalid_timestamp",
    "endTimeUnixNano": "invalid_timestamp",
    "end_time_unix_nano": "invalid_timestamp",
}


class _SpanRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _hex_id(value: Any, reason: str) -> str:
    """A hex id as the base64 text proto3 JSON expects; anything else refuses the span.

    The OTLP/JSON spec says hex; base64 (what generic proto3 JSON encoders emit, e.g. 24
    characters for a trace id) and other non-hex text get an ``*_encoding`` reason rather
    than a misleading length error.
    """
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise _SpanRejected(reason)
    try:
        raw = binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        raise _SpanRejected(_base64_reason(value, reason)) from None
    return base64.b64encode(raw).decode()


def _base64_reason(value: str, reason: str) -> str:
    """``reason``, or the base64-specific one when ``value`` is base64 of the id's width."""
    hint = _BASE64_REASONS.get(reason)
    if hint is None:
        return reason
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return reason
    return hint[0] if len(decoded) == hint[1] else reason


def _with_hex_ids(span: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of a JSON span with hex ids (span and links) turned into base64."""
    fixed = dict(span)
    for json_key, proto_key, reason in _SPAN_IDS:
        for key in (json_key, proto_key):
            if key in fixed:
                fixed[key] = _hex_id(fixed[key], reason)
    links = fixed.get("links")
    if isinstance(links, list):
        copies = []
        for link in links:
            if not isinstance(link, dict):
                raise _SpanRejected("invalid_link")
            link = dict(link)
            for json_key, proto_key in _LINK_IDS:
                for key in (json_key, proto_key):
                    if key in link:
                        link[key] = _hex_id(link[key], "invalid_link")
            copies.append(link)
        fixed["links"] = copies
    return fixed


def _parse_reason(exc: Exception) -> str:
    """The reason label for a span json_format could not parse."""
    if isinstance(exc, RecursionError):
        return "nesting_too_deep"
    text = str(exc)
    if "surrogate" in text:
        return "invalid_utf8"
    match = _FAILED_FIELD.match(text)
    if match:
        return _FIELD_REASONS.get(match.group(1), "malformed_span")
    return "malformed_span"


def _list(obj: dict[str, Any], where: str, *keys: str) -> list[Any]:
    """The list under the first present key (null = empty); other types hide the spans."""
    for key in keys:
        if key in obj:
            value = obj[key]
            if value is None:
                return []
            if not isinstance(value, list):
                raise BodyError(400, REQUEST_REASON, f"{where}.{key} must be a JSON array")
            return value
    return []


def _without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def _parse_into(doc: dict[str, Any], message: Any) -> str | None:
    """Parse ``doc`` into ``message``; the failure's reason label or None."""
    try:
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except Exception as exc:  # any parse failure refuses just this part, never the request
        return _parse_reason(exc)
    return None


def decode_request(body: bytes) -> Decoded:
    """Parse an OTLP/JSON ``ExportTraceServiceRequest`` span by span.

    Raises BodyError(400) when the body is not JSON or its structure hides the spans, or when
    every span was malformed; otherwise returns the usable spans and the refused ones by
    reason (a malformed resource or scope refuses its spans as ``invalid_resource`` /
    ``invalid_scope``).
    """
    doc = parse_json_body(body)
    if not isinstance(doc, dict):
        raise BodyError(400, REQUEST_REASON, "OTLP/JSON body must be a JSON object")
    data = trace_pb2.TracesData()
    rejected: Counter[str] = Counter()
    for r, rs in enumerate(_list(doc, "request", "resourceSpans", "resource_spans")):
        where = f"resourceSpans[{r}]"
        if not isinstance(rs, dict):
            raise BodyError(400, REQUEST_REASON, f"{where} must be a JSON object")
        scope_spans = _list(rs, where, "scopeSpans", "scope_spans")
        out_rs = data.resource_spans.add()
        resource_problem = (
            "invalid_resource"
            if _parse_into(_without(rs, "scopeSpans", "scope_spans"), out_rs)
            else None
        )
        for s, ss in enumerate(scope_spans):
            if not isinstance(ss, dict):
                raise BodyError(400, REQUEST_REASON, f"{where}.scopeSpans[{s}] must be an object")
            spans = _list(ss, f"{where}.scopeSpans[{s}]", "spans")
            if resource_problem:
                rejected[resource_problem] += len(spans)
                continue
            out_ss = out_rs.scope_spans.add()
            if _parse_into(_without(ss, "spans"), out_ss):
                rejected["invalid_scope"] += len(spans)
                del out_rs.scope_spans[-1]
                continue
            for span in spans:
                try:
                    if not isinstance(span, dict):
                        raise _SpanRejected("malformed_span")
                    fixed = _with_hex_ids(span)
                except _SpanRejected as exc:
                    rejected[exc.reason] += 1
                    continue
                reason = _parse_into(fixed, out_ss.spans.add())
                if reason:
                    del out_ss.spans[-1]
                    rejected[reason] += 1
        if resource_problem:
            del data.resource_spans[-1]
    return finish(data, rejected, REQUEST_REASON)


def decode_traces(body: bytes) -> trace_pb2.TracesData:
    """The usable spans of an OTLP/JSON request (refused spans dropped); see decode_request."""
    return decode_request(body).data


def encode_response(response: trace_service_pb2.ExportTraceServiceResponse) -> bytes:
    """``ExportTraceServiceResponse`` as OTLP/JSON (``{}`` on full success)."""
    return json_format.MessageToJson(response, indent=None).encode()


def encode_status(code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` as JSON, the OTLP/HTTP error body for JSON requests."""
    return json.dumps({"code": code, "message": message}).encode()

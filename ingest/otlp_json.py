"""OTLP/JSON <-> protobuf, per the OTLP specification's JSON encoding.

OTLP/JSON is proto3 JSON with three differences that a plain ``json_format.Parse`` gets wrong:
trace and span ids are hex strings (not base64), enums may be given as integers, and unknown
fields must be ignored. int64 values may be strings or numbers, which proto3 JSON accepts.
Ids that are not valid hex become empty bytes, so validation rejects just those spans (counted
by reason in ``partial_success``) instead of failing the whole request.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.errors import BodyError, parse_json_body

# Both the JSON (lowerCamel) and the proto field names are legal keys in proto3 JSON.
_SPAN_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
_LINK_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id")


def _hex_to_b64(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    try:
        raw = binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        return ""
    return base64.b64encode(raw).decode()


def _fix_ids(obj: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in obj:
            obj[key] = _hex_to_b64(obj[key])


def _items(obj: dict[str, Any], *keys: str) -> list[Any]:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, list):
            return value
    return []


def decode_traces(body: bytes) -> trace_pb2.TracesData:
    """Parse an OTLP/JSON ``ExportTraceServiceRequest``; raises BodyError(400) when invalid."""
    doc = parse_json_body(body)
    if not isinstance(doc, dict):
        raise BodyError(400, "invalid_json", "OTLP/JSON body must be a JSON object")
    for rs in _items(doc, "resourceSpans", "resource_spans"):
        if not isinstance(rs, dict):
            continue
        for ss in _items(rs, "scopeSpans", "scope_spans"):
            if not isinstance(ss, dict):
                continue
            for span in _items(ss, "spans"):
                if not isinstance(span, dict):
                    continue
                _fix_ids(span, _SPAN_ID_KEYS)
                for link in _items(span, "links"):
                    if isinstance(link, dict):
                        _fix_ids(link, _LINK_ID_KEYS)
    data = trace_pb2.TracesData()
    try:
        json_format.ParseDict(doc, data, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise BodyError(400, "invalid_otlp_json", f"body is not OTLP/JSON: {exc}") from exc
    return data


def encode_response(response: trace_service_pb2.ExportTraceServiceResponse) -> bytes:
    """``ExportTraceServiceResponse`` as OTLP/JSON (``{}`` on full success)."""
    return json_format.MessageToJson(response, indent=None).encode()


def encode_status(code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` as JSON, the OTLP/HTTP error body for JSON requests."""
    return json.dumps({"code": code, "message": message}).encode()

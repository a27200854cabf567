import base64
import json

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.errors import BodyError
from ingest.otlp_json import decode_request, decode_traces, encode_response

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def _request(span: dict[str, object]) -> bytes:
    return _request_spans(span)


def _request_spans(*spans: object) -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                    },
                    "scopeSpans": [{"scope": {"name": "lib"}, "spans": list(spans)}],
                    "unknownTopLevel": {"ignored": True},
                }
            ]
        }
    ).encode()


def test_hex_ids_int_enums_and_int64_strings() -> None:
    data = decode_traces(
        _request(
            {
                "traceId": TRACE,
                "spanId": SPAN,
                "parentSpanId": "",
                "name": "GET /",
                "kind": 2,
                "startTimeUnixNano": "1544712660000000000",
                "endTimeUnixNano": 1544712661000000000,
                "status": {"code": 2, "message": "boom"},
                "attributes": [{"key": "n", "value": {"intValue": "42"}}],
                "links": [{"traceId": TRACE, "spanId": "0102030405060708"}],
                "futureField": 1,
            }
        )
    )
    span = data.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == TRACE and span.span_id.hex() == SPAN
    assert span.parent_span_id == b""
    assert span.kind == trace_pb2.Span.SPAN_KIND_SERVER
    assert span.start_time_unix_nano == 1544712660000000000
    assert span.end_time_unix_nano == 1544712661000000000
    assert span.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert span.attributes[0].value.int_value == 42
    assert span.links[0].span_id == bytes(range(1, 9))


def test_enum_names_and_snake_case_keys_accepted() -> None:
    data = decode_traces(_request({"trace_id": TRACE, "span_id": SPAN, "kind": "SPAN_KIND_CLIENT"}))
    span = data.resource_spans[0].scope_spans[0].spans[0]
    assert span.kind == trace_pb2.Span.SPAN_KIND_CLIENT and span.trace_id.hex() == TRACE


def test_invalid_hex_id_rejects_only_that_span_by_reason() -> None:
    good = {"traceId": TRACE, "spanId": SPAN}
    decoded = decode_request(_request_spans(good, {"traceId": "zz" * 16, "spanId": SPAN}))
    assert dict(decoded.rejected) == {"invalid_trace_id_encoding": 1}
    assert [s.trace_id.hex() for s in decoded.data.resource_spans[0].scope_spans[0].spans] == [
        TRACE
    ]


def test_base64_ids_get_a_reason_that_says_hex_is_required() -> None:
    b64_trace = base64.b64encode(bytes.fromhex(TRACE)).decode()  # 24 chars, not hex
    b64_span = base64.b64encode(bytes.fromhex(SPAN)).decode()
    good = {"traceId": TRACE, "spanId": SPAN}
    decoded = decode_request(
        _request_spans(
            good,
            {"traceId": b64_trace, "spanId": SPAN},
            {"traceId": TRACE, "spanId": b64_span},
            {"traceId": TRACE, "spanId": SPAN, "parentSpanId": b64_span},
            # base64 of the wrong width is just not hex: no claim about what was meant
            {"traceId": base64.b64encode(b"abc").decode(), "spanId": SPAN},
        )
    )
    assert dict(decoded.rejected) == {
        "trace_id_base64_not_hex": 1,
        "span_id_base64_not_hex": 1,
        "parent_span_id_base64_not_hex": 1,
        "invalid_trace_id_encoding": 1,
    }


@pytest.mark.parametrize("body", [b"{not json", b"[1,2]", b"", b'{"resourceSpans": 5}'])
def test_bad_bodies_are_400(body: bytes) -> None:
    with pytest.raises(BodyError) as info:
        decode_traces(body)
    assert info.value.status == 400


def test_response_encoding() -> None:
    assert encode_response(trace_service_pb2.ExportTraceServiceResponse()) == b"{}"
    response = trace_service_pb2.ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 2
    response.partial_success.error_message = "2 zero_trace_id"
    doc = json.loads(encode_response(response))
    assert doc == {"partialSuccess": {"rejectedSpans": "2", "errorMessage": "2 zero_trace_id"}}

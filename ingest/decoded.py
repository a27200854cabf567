"""What a wire decoder hands the admission core: the usable spans plus the ones it had to refuse.

A JSON request can hold one malformed span (an attribute of an unsupported shape, ids that are
not hex, a string that is not UTF-8) next to good ones. The decoder can still delimit that
span, so it refuses just it, by reason, and the admission core counts it with the validation
rejections: ``received = accepted + rejected`` holds whatever the wire format.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.errors import BodyError
from schemas.span_limits import TIME_OUT_OF_RANGE

# Decoder reasons that are validation, not malformation: the span was well-formed JSON of the
# right types, storage just cannot hold it. They never turn a request into a 400 by themselves.
VALIDATION_REASONS = frozenset({TIME_OUT_OF_RANGE})


@dataclass
class Decoded:
    """Spans decoded from one request, and the spans refused while decoding, by reason."""

    data: trace_pb2.TracesData
    rejected: Counter[str] = field(default_factory=Counter)
    # The request's own bytes when they are ``data`` serialized (an OTLP protobuf body): ingest
    # cuts those instead of serializing ``data`` again, unless it changed ``data``.
    raw: bytes | None = None


def span_count(data: trace_pb2.TracesData) -> int:
    return sum(len(ss.spans) for rs in data.resource_spans for ss in rs.scope_spans)


def finish(data: trace_pb2.TracesData, rejected: Counter[str], reason: str) -> Decoded:
    """The decoder's result; a request whose every span was malformed is a 400 ``reason``.

    With nothing usable and at least one malformed span the body is simply bad, and a client
    deserves a 400 naming why (the refused spans are still counted by reason). Once a single
    span decoded, the request is a partial success instead, like any other rejection.
    """
    if rejected and not span_count(data) and not set(rejected) <= VALIDATION_REASONS:
        detail = ", ".join(f"{n} {r}" for r, n in sorted(rejected.items()))
        raise BodyError(400, reason, f"no usable span in the request: {detail}", rejected)
    return Decoded(data, rejected)

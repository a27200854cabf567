"""The raw-topic decoders streams cannot import itself: ingest's wire codecs, adapted.

Streams may not import ingest (docs/architecture.md, "Layers"), yet a producer writing to the
raw topic directly may choose the same encodings ingest's receivers decode (the OTel Collector
Kafka exporter's ``otlp_json``, ``zipkin_json``, ``zipkin_proto``). The CLI, which sits above
both, hands these adapters to the streams worker (``streams/raw_encodings.py``). A body the
codec refuses whole becomes ``RawDecodeError("malformed_<encoding>")``; spans it refused one
by one travel beside the usable ones with their reasons.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest import otlp_json, zipkin, zipkin_proto
from ingest.decoded import Decoded
from ingest.errors import BodyError
from streams.raw_encodings import DecodedMessage, RawDecodeError, RawDecoder


def _adapt(name: str, decode: Callable[[bytes], Decoded]) -> RawDecoder:
    def raw(payload: bytes) -> DecodedMessage:
        try:
            decoded = decode(payload)
        except BodyError as exc:
            raise RawDecodeError(f"malformed_{name}", f"undecodable {name}: {exc}") from None
        return DecodedMessage(decoded.data, dict(decoded.rejected))

    return raw


def raw_decoders() -> dict[str, RawDecoder]:
    """Every raw-topic encoding besides ``otlp_proto`` (which streams decodes itself)."""
    return {
        "otlp_json": _adapt("otlp_json", otlp_json.decode_request),
        "zipkin_json": _adapt("zipkin_json", zipkin.decode_request),
        "zipkin_proto": _adapt("zipkin_proto", zipkin_proto.decode_request),
    }

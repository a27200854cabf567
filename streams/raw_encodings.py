"""How a raw-topic message's bytes become OTLP: the producer's encoding, per topic or per message.

Ingest writes ``otlp_proto`` (a serialized ``TracesData``). Producers that publish to the raw
topic directly may choose what the OTel Collector's Kafka exporter offers: ``otlp_json``,
``zipkin_json`` (a JSON list of Zipkin v2 spans), ``zipkin_proto`` (a Zipkin ``ListOfSpans``),
``jaeger_proto`` (one ``jaeger.api_v2.Span`` with its process).
The encoding of a message is its ``encoding`` header when present, else the topic's setting
(``raw_encoding``). A message that does not decode is a :class:`RawDecodeError` with a reason
(the worker dead-letters and counts it); spans the decoder could delimit but not use are
reported by reason beside the usable ones, never dropped silently.

The wire codecs other than ``otlp_proto`` live with ingest's receivers; streams may not import
ingest (docs/architecture.md, "Layers"), so the CLI hands them in as plain functions
(``tracehouse/raw_decoders.py``). Without them, only ``otlp_proto`` is known and every other
encoding is refused as ``unknown_encoding``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.trace.v1 import trace_pb2

HEADER = "encoding"
OTLP_PROTO = "otlp_proto"
# What the setting accepts; core/settings.py lists the same names (a unit test keeps them equal).
ENCODINGS = ("otlp_proto", "otlp_json", "zipkin_json", "zipkin_proto", "jaeger_proto")
UNKNOWN = "unknown_encoding"
MAX_HEADER_BYTES = 64


class RawDecodeError(ValueError):
    """The message cannot be decoded; ``reason`` is its counter label and DLQ header."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class DecodedMessage:
    data: trace_pb2.TracesData
    refused: Mapping[str, int] = field(default_factory=dict)  # spans refused, by reason


RawDecoder = Callable[[bytes], DecodedMessage]


def decode_otlp_proto(payload: bytes) -> DecodedMessage:
    try:
        return DecodedMessage(trace_pb2.TracesData.FromString(payload))
    except (DecodeError, RecursionError) as exc:
        # "malformed": the reason this message has always been counted and dead-lettered under
        raise RawDecodeError("malformed", f"undecodable OTLP protobuf: {exc}") from None


def header_value(headers: Any) -> str | None:
    """The ``encoding`` header of a message (faust gives a list of pairs or a mapping)."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in pairs:
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        if name.lower() == HEADER:
            if isinstance(value, bytes):
                return value[:MAX_HEADER_BYTES].decode("utf-8", "replace").strip()
            return str(value)[:MAX_HEADER_BYTES].strip() if value is not None else ""
    return None


class RawEncodings:
    """The decoders a worker knows and the topic's default encoding."""

    def __init__(
        self,
        default: str = OTLP_PROTO,
        decoders: Mapping[str, RawDecoder] | None = None,
        scan: bool = True,
    ):
        # Whether OTLP protobuf messages go to the compiled pass first (streams.otlp_scan).
        self.scan = scan
        self.decoders: dict[str, RawDecoder] = {OTLP_PROTO: decode_otlp_proto, **(decoders or {})}
        if default not in self.decoders:
            raise ValueError(
                f"raw_encoding {default!r} has no decoder here; known: {sorted(self.decoders)}"
            )
        self.default = default

    def scannable(self, encoding: str | None) -> bool:
        """Whether a message with this ``encoding`` header goes to the compiled pass first: it
        is a serialized ``TracesData`` and the pass is on."""
        return self.scan and (encoding or self.default) == OTLP_PROTO

    def decode(self, payload: bytes, encoding: str | None = None) -> DecodedMessage:
        """Decode with ``encoding`` (a header's value) or the default; RawDecodeError when the
        encoding is unknown or the bytes do not decode. Decoders' own bugs are caught too: a
        message must never crash a worker."""
        name = encoding if encoding else self.default
        decoder = self.decoders.get(name)
        if decoder is None:
            raise RawDecodeError(UNKNOWN, f"no decoder for encoding {name!r}")
        try:
            return decoder(payload)
        except RawDecodeError:
            raise
        except Exception as exc:  # the decoder's own error, or a bug: refuse, never crash
            raise RawDecodeError(f"malformed_{name}", f"undecodable {name}: {exc}") from None

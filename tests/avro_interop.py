"""The Apache ``avro`` library's side of the interop tests, in one place for every schema.

fastavro is on the hot path; interop is proven with the reference implementation
(docs/architecture.md, "Topic contracts")."""

from __future__ import annotations

import io
import json
from typing import Any

import avro.io
import avro.schema

from schemas import avro_codec


def _schema(name: str, version: int) -> Any:
    return avro.schema.parse(json.dumps(avro_codec.schema_json(name, version)))


def apache_read(name: str, version: int, payload: bytes) -> Any:
    """Decode a framed message with Apache avro (the frame's 2 bytes skipped)."""
    reader = avro.io.DatumReader(_schema(name, version))
    return reader.read(avro.io.BinaryDecoder(io.BytesIO(payload[2:])))


def apache_write(name: str, version: int, record: dict[str, Any]) -> bytes:
    """A framed message whose Avro body Apache avro wrote."""
    buf = io.BytesIO()
    buf.write(bytes((avro_codec.MAGIC, version)))
    avro.io.DatumWriter(_schema(name, version)).write(record, avro.io.BinaryEncoder(buf))
    return buf.getvalue()

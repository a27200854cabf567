"""Framed Avro for the internal topics: a 2-byte header then a schemaless fastavro body.

There is no schema registry in the local stack, so every message names its writer schema
itself: byte 0 is the magic ``0xA7``, byte 1 the schema version. Readers resolve any known
writer version against the newest reader schema (:func:`decode`), which is how schemas evolve
without stopping the pipeline; a schema whose versions need not be resolvable into each other
(``span_batch``: packed columns, whose next version may change shape) is read with
:func:`decode_as_written` and dispatched on the version byte, so a new version can be read next
to the current one and a version without a reader goes to the DLQ.
The ``.avsc`` files are plain Avro, so any Avro library (the Apache ``avro`` package in the
tests) can read the body after the header.
"""

from __future__ import annotations

import io
import json
from functools import cache
from importlib import resources
from typing import Any

import fastavro

MAGIC = 0xA7


class AvroDecodeError(ValueError):
    """A message that is not a framed Avro record of a known schema version."""


@cache
def schema_json(name: str, version: int) -> dict[str, Any]:
    text = resources.files("schemas").joinpath(f"avro/{name}.v{version}.avsc").read_text()
    return json.loads(text)


@cache
def parsed_schema(name: str, version: int) -> Any:
    return fastavro.parse_schema(schema_json(name, version))


@cache
def latest_version(name: str) -> int:
    versions = [
        int(p.name.rsplit(".v", 1)[1].split(".")[0])
        for p in resources.files("schemas").joinpath("avro").iterdir()
        if p.name.startswith(f"{name}.v") and p.name.endswith(".avsc")
    ]
    if not versions:
        raise KeyError(f"no Avro schema named {name!r}")
    return max(versions)


def encode(name: str, record: dict[str, Any], version: int | None = None) -> bytes:
    version = latest_version(name) if version is None else version
    buf = io.BytesIO()
    buf.write(bytes((MAGIC, version)))
    fastavro.schemaless_writer(buf, parsed_schema(name, version), record)
    return buf.getvalue()


def _writer_version(name: str, payload: bytes) -> int:
    if len(payload) < 2 or payload[0] != MAGIC:
        raise AvroDecodeError(f"{name}: missing Avro frame header")
    writer_version = payload[1]
    if writer_version > latest_version(name):
        raise AvroDecodeError(f"{name}: unknown schema version {writer_version}")
    return writer_version


def _read_body(name: str, payload: bytes, writer: Any, reader: Any) -> dict[str, Any]:
    buf = io.BytesIO(payload)
    buf.seek(2)
    try:
        record = fastavro.schemaless_reader(buf, writer, reader)
    except Exception as exc:  # fastavro raises many types on corrupt input
        raise AvroDecodeError(f"{name}: corrupt Avro body: {exc}") from exc
    if buf.tell() != len(payload):
        raise AvroDecodeError(f"{name}: {len(payload) - buf.tell()} trailing bytes")
    if not isinstance(record, dict):
        raise AvroDecodeError(f"{name}: body is not a record")
    return record


def _writer_schema(name: str, version: int) -> Any:
    try:
        return parsed_schema(name, version)
    except FileNotFoundError as exc:
        raise AvroDecodeError(f"{name}: unknown schema version {version}") from exc


def decode(name: str, payload: bytes) -> dict[str, Any]:
    """The record resolved against the newest schema (for schemas that evolve compatibly)."""
    writer_version = _writer_version(name, payload)
    reader_version = latest_version(name)
    writer = _writer_schema(name, writer_version)
    reader = parsed_schema(name, reader_version) if reader_version != writer_version else None
    return _read_body(name, payload, writer, reader)


def decode_as_written(name: str, payload: bytes) -> tuple[int, dict[str, Any]]:
    """The record in its writer's own schema, and that schema's version.

    For schemas whose versions may change shape incompatibly (``span_batch``): Avro
    resolution cannot map one onto the other, so the reader dispatches on the version instead,
    and during an upgrade both versions stay readable. A version whose ``.avsc`` is gone
    (or never existed) is an :class:`AvroDecodeError`.
    """
    writer_version = _writer_version(name, payload)
    writer = _writer_schema(name, writer_version)
    return writer_version, _read_body(name, payload, writer, None)

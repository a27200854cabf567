"""Kafka value -> Arrow table of one message, or the reason it is poison.

Pure functions of the message, run on the worker's consumer thread: decoding ``span_batch``
v3 wraps its buffers without copying and leaves the worker insert-bound (docs/perf.md), so
there is nothing to gain from a process pool.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pyarrow as pa

from schemas import avro_codec
from sinks.window_columns import InvalidRecord
from sinks.writers import WRITERS, TopicTable


class PoisonRecord(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Decoded(NamedTuple):
    table: pa.Table | None
    reason: str = ""
    detail: str = ""


def decode_rows(writer: TopicTable, value: bytes) -> list[Any]:
    """Kafka value -> table rows; raises ``PoisonRecord`` with a reason code when impossible."""
    try:
        record = avro_codec.decode(writer.avro_schema, value)
    except avro_codec.AvroDecodeError as exc:
        raise PoisonRecord("undecodable_avro", str(exc)) from exc
    if writer.rows is None:
        raise PoisonRecord("undecodable_avro", f"{writer.avro_schema} is read by version only")
    try:
        return writer.rows(record)
    except (InvalidRecord, KeyError, TypeError) as exc:
        raise PoisonRecord("invalid_record", str(exc)) from exc


def decode_versioned(writer: TopicTable, value: bytes) -> Decoded:
    """A message of a schema with per-version builders (``span_batch``) -> its Arrow table."""
    try:
        version, record = avro_codec.decode_as_written(writer.avro_schema, value)
    except avro_codec.AvroDecodeError as exc:
        return Decoded(None, "undecodable_avro", str(exc))
    build = writer.by_version.get(version)
    if build is None:
        return Decoded(None, "undecodable_avro", f"no reader for schema version {version}")
    try:
        return Decoded(build(record))
    except (InvalidRecord, KeyError, TypeError) as exc:
        return Decoded(None, "invalid_record", str(exc))
    except (pa.ArrowException, OverflowError, ValueError) as exc:
        return Decoded(None, "invalid_record", f"cannot convert to columns: {exc}")


def decode_message(stream: str, value: bytes) -> Decoded:
    """One message of ``stream`` -> its rows as an Arrow table, or why it cannot be stored.

    Never raises for a message's content: an exception the builders did not anticipate
    (an ``IndexError`` deep in a column builder, say) is still about this one message, so it
    makes the message ``invalid_record`` instead of stopping the worker.
    """
    try:
        return _decode_message(stream, value)
    except Exception as exc:  # any failure here is the message's: dead-letter it
        return Decoded(None, "invalid_record", f"cannot decode: {type(exc).__name__}: {exc}")


def _decode_message(stream: str, value: bytes) -> Decoded:
    writer = WRITERS[stream]
    if writer.by_version:
        return decode_versioned(writer, value)
    try:
        rows = decode_rows(writer, value)
    except PoisonRecord as poison:
        return Decoded(None, poison.reason, poison.detail)
    assert writer.arrow is not None  # a writer without by_version has rows and arrow
    try:
        return Decoded(writer.arrow(rows))
    except (pa.ArrowException, OverflowError, ValueError, TypeError) as exc:
        return Decoded(None, "invalid_record", f"cannot convert to columns: {exc}")

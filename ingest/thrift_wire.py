"""Thrift binary and compact protocol readers, written for hostile input (pure, no I/O).

Jaeger clients speak Thrift: the binary protocol over HTTP (``/api/traces``) and UDP 6832, the
compact protocol over UDP 6831. We read the few shapes Jaeger needs with our own small reader
instead of generated code, because generated Thrift readers silently skip a known field that
arrives with another wire type (a span would be stored without it) and fail a whole batch for
one bad span (docs/adr/0007-jaeger-ingest.md). Here every length is checked against the bytes
actually left before anything is allocated (each list element takes at least one byte, so a
count above the remaining bytes is a lie), nesting of skipped values is capped at
``MAX_DEPTH``, and every problem is a ``ThriftError`` with a reason, never another exception.

Both readers expose one interface (``field``, ``i64``, ``binary``, ``list_begin``, ``skip``,
...) and report types in the binary protocol's numbering (``T_*`` below), so the Jaeger schema
reader is written once for both protocols.
"""

from __future__ import annotations

import struct
from typing import Protocol

# Thrift type ids (binary protocol numbering; the compact reader maps its own onto these).
T_STOP = 0
T_BOOL = 2
T_BYTE = 3
T_DOUBLE = 4
T_I16 = 6
T_I32 = 8
T_I64 = 10
T_STRING = 11
T_STRUCT = 12
T_MAP = 13
T_SET = 14
T_LIST = 15

# Message types (TMessageType).
M_CALL = 1
M_ONEWAY = 4

# Deepest nesting of structs/containers a skipped value may have. Jaeger's own schema nests
# four levels (Batch > Span > Log > Tag); anything far deeper is an attack on the recursion.
MAX_DEPTH = 32

_FIXED_SIZE = {T_BOOL: 1, T_BYTE: 1, T_DOUBLE: 8, T_I16: 2, T_I32: 4, T_I64: 8}
_BE_I16 = struct.Struct(">h")
_BE_I32 = struct.Struct(">i")
_BE_I64 = struct.Struct(">q")
_BE_DOUBLE = struct.Struct(">d")
_LE_DOUBLE = struct.Struct("<d")
_FIELD_HEADER = struct.Struct(">Bh")


class ThriftError(Exception):
    """The bytes are not valid Thrift of the expected shape; ``reason`` is a metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ThriftReader(Protocol):
    """What the Jaeger schema reader needs from a protocol."""

    def remaining(self) -> int: ...
    def message_begin(self) -> tuple[str, int]: ...
    def field(self) -> tuple[int, int]: ...
    def bool_(self) -> bool: ...
    def i32(self) -> int: ...
    def i64(self) -> int: ...
    def double(self) -> float: ...
    def binary(self) -> bytes: ...
    def list_begin(self) -> tuple[int, int]: ...
    def struct_begin(self) -> None: ...
    def struct_end(self) -> None: ...
    def skip(self, ttype: int, depth: int = 0) -> None: ...


def _truncated(what: str) -> ThriftError:
    return ThriftError("truncated", f"thrift data ends inside {what}")


class BinaryReader:
    """TBinaryProtocol: big-endian fixed-width integers, i32 length prefixes."""

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._end = len(data)

    def remaining(self) -> int:
        return self._end - self._pos

    def _take(self, n: int, what: str) -> bytes:
        pos = self._pos
        if n > self._end - pos:
            raise _truncated(what)
        self._pos = pos + n
        return self._data[pos : pos + n]

    def byte(self) -> int:
        if self._pos >= self._end:
            raise _truncated("a byte")
        value = self._data[self._pos]
        self._pos += 1
        return value

    def i16(self) -> int:
        pos = self._pos
        if self._end - pos < 2:
            raise _truncated("an i16")
        self._pos = pos + 2
        return int(_BE_I16.unpack_from(self._data, pos)[0])

    def i32(self) -> int:
        pos = self._pos
        if self._end - pos < 4:
            raise _truncated("an i32")
        self._pos = pos + 4
        return int(_BE_I32.unpack_from(self._data, pos)[0])

    def i64(self) -> int:
        pos = self._pos
        if self._end - pos < 8:
            raise _truncated("an i64")
        self._pos = pos + 8
        return int(_BE_I64.unpack_from(self._data, pos)[0])

    def double(self) -> float:
        pos = self._pos
        if self._end - pos < 8:
            raise _truncated("a double")
        self._pos = pos + 8
        return float(_BE_DOUBLE.unpack_from(self._data, pos)[0])

    def bool_(self) -> bool:
        return self.byte() != 0

    def binary(self) -> bytes:
        pos = self._pos
        if self._end - pos < 4:
            raise _truncated("a string length")
        size = _BE_I32.unpack_from(self._data, pos)[0]
        if size < 0:
            raise ThriftError("negative_length", f"string length {size}")
        pos += 4
        if size > self._end - pos:
            raise _truncated("a string")
        self._pos = pos + size
        return self._data[pos : pos + size]

    def message_begin(self) -> tuple[str, int]:
        """(method name, message type); strict (versioned) and old unversioned headers."""
        first = self.i32()
        if first < 0:
            if first & 0xFFFF0000 != 0x80010000:
                raise ThriftError("bad_message", f"unknown binary protocol version {first:#x}")
            mtype = first & 0xFF
            name = self.binary()
            self.i32()  # sequence id
        else:
            name = bytes(self._take(first, "a method name"))
            mtype = self.byte()
            self.i32()
        return _method_name(name), mtype

    def field(self) -> tuple[int, int]:
        pos = self._pos
        if self._end - pos >= 3:  # a type byte and the i16 id, in one unpack
            ttype, fid = _FIELD_HEADER.unpack_from(self._data, pos)
            if ttype == T_STOP:
                self._pos = pos + 1
                return T_STOP, 0
            self._pos = pos + 3
            return int(ttype), int(fid)
        ttype = self.byte()
        if ttype == T_STOP:
            return T_STOP, 0
        return ttype, self.i16()

    def struct_begin(self) -> None:
        pass

    def struct_end(self) -> None:
        pass

    def list_begin(self) -> tuple[int, int]:
        etype = self.byte()
        size = self.i32()
        _check_count(size, etype, self.remaining())
        return etype, size

    def skip(self, ttype: int, depth: int = 0) -> None:
        fixed = _FIXED_SIZE.get(ttype)
        if fixed is not None:
            self._take(fixed, "a value")
        elif ttype == T_STRING:
            self.binary()
        elif ttype == T_STRUCT:
            _guard_depth(depth)
            while True:
                ftype, _ = self.field()
                if ftype == T_STOP:
                    return
                self.skip(ftype, depth + 1)
        elif ttype in (T_LIST, T_SET):
            _guard_depth(depth)
            etype, size = self.list_begin()
            for _ in range(size):
                self.skip(etype, depth + 1)
        elif ttype == T_MAP:
            _guard_depth(depth)
            ktype, vtype, size = self.byte(), self.byte(), self.i32()
            _check_count(size, ktype, self.remaining())
            for _ in range(size):
                self.skip(ktype, depth + 1)
                self.skip(vtype, depth + 1)
        else:
            raise ThriftError("bad_type", f"unknown thrift type id {ttype}")


# Compact protocol type ids -> binary numbering. 1 and 2 are booleans (true/false in a field
# header); 13 is UUID (16 bytes), which Jaeger never sends but may be skipped.
_COMPACT_TYPES = {
    1: T_BOOL,
    2: T_BOOL,
    3: T_BYTE,
    4: T_I16,
    5: T_I32,
    6: T_I64,
    7: T_DOUBLE,
    8: T_STRING,
    9: T_LIST,
    10: T_SET,
    11: T_MAP,
    12: T_STRUCT,
}
_MAX_VARINT_BYTES = 10


class CompactReader:
    """TCompactProtocol: zigzag varints, field-id deltas, booleans folded into field headers."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._end = len(data)
        self._last_field = 0
        self._field_stack: list[int] = []
        self._pending_bool: bool | None = None

    def remaining(self) -> int:
        return self._end - self._pos

    def byte(self) -> int:
        if self._pos >= self._end:
            raise _truncated("a byte")
        value = self._data[self._pos]
        self._pos += 1
        return value

    def varint(self) -> int:
        result = shift = 0
        data, pos, end = self._data, self._pos, self._end
        for _ in range(_MAX_VARINT_BYTES):
            if pos >= end:
                raise _truncated("a varint")
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                self._pos = pos
                return result
            shift += 7
        raise ThriftError("bad_varint", "varint longer than 10 bytes")

    def _zigzag(self, bits: int) -> int:
        raw = self.varint()
        if raw >= 1 << bits:
            raise ThriftError("bad_varint", f"varint {raw} does not fit {bits} bits")
        return (raw >> 1) ^ -(raw & 1)

    def i16(self) -> int:
        return self._zigzag(16)

    def i32(self) -> int:
        return self._zigzag(32)

    def i64(self) -> int:
        return self._zigzag(64)

    def double(self) -> float:
        pos = self._pos
        if self._end - pos < 8:
            raise _truncated("a double")
        self._pos = pos + 8
        return float(_LE_DOUBLE.unpack_from(self._data, pos)[0])

    def bool_(self) -> bool:
        pending = self._pending_bool
        if pending is not None:  # a field's value travels in its header
            self._pending_bool = None
            return pending
        return self.byte() == 1

    def binary(self) -> bytes:
        size = self.varint()
        pos = self._pos
        if size > self._end - pos:
            raise _truncated("a string")
        self._pos = pos + size
        return self._data[pos : pos + size]

    def message_begin(self) -> tuple[str, int]:
        if self.byte() != 0x82:
            raise ThriftError("bad_message", "not a compact protocol message")
        version_type = self.byte()
        if version_type & 0x1F != 1:
            raise ThriftError("bad_message", f"compact protocol version {version_type & 0x1F}")
        self.varint()  # sequence id
        name = self.binary()
        return _method_name(name), version_type >> 5

    def struct_begin(self) -> None:
        if len(self._field_stack) > MAX_DEPTH:
            raise ThriftError("too_deep", f"structs nested deeper than {MAX_DEPTH}")
        self._field_stack.append(self._last_field)
        self._last_field = 0

    def struct_end(self) -> None:
        self._last_field = self._field_stack.pop() if self._field_stack else 0

    def field(self) -> tuple[int, int]:
        header = self.byte()
        if header == 0:
            return T_STOP, 0
        ctype = header & 0x0F
        ttype = _COMPACT_TYPES.get(ctype)
        if ttype is None:
            raise ThriftError("bad_type", f"unknown compact type id {ctype}")
        delta = header >> 4
        field_id = self._last_field + delta if delta else self.i16()
        self._last_field = field_id
        if ttype == T_BOOL:
            self._pending_bool = ctype == 1
        return ttype, field_id

    def list_begin(self) -> tuple[int, int]:
        header = self.byte()
        size = header >> 4
        if size == 15:
            size = self.varint()
        ctype = header & 0x0F
        etype = _COMPACT_TYPES.get(ctype)
        if etype is None:
            raise ThriftError("bad_type", f"unknown compact element type id {ctype}")
        _check_count(size, etype, self.remaining())
        return etype, size

    def skip(self, ttype: int, depth: int = 0) -> None:
        if ttype == T_BOOL:
            self.bool_()
        elif ttype == T_BYTE:
            self.byte()
        elif ttype in (T_I16, T_I32, T_I64):
            self.varint()
        elif ttype == T_DOUBLE:
            self.double()
        elif ttype == T_STRING:
            self.binary()
        elif ttype == T_STRUCT:
            _guard_depth(depth)
            self.struct_begin()
            while True:
                ftype, _ = self.field()
                if ftype == T_STOP:
                    break
                self.skip(ftype, depth + 1)
            self.struct_end()
        elif ttype in (T_LIST, T_SET):
            _guard_depth(depth)
            etype, size = self.list_begin()
            for _ in range(size):
                self.skip(etype, depth + 1)
        elif ttype == T_MAP:
            _guard_depth(depth)
            size = self.varint()
            if size:
                kv = self.byte()
                ktype, vtype = _COMPACT_TYPES.get(kv >> 4), _COMPACT_TYPES.get(kv & 0x0F)
                if ktype is None or vtype is None:
                    raise ThriftError("bad_type", f"unknown compact map types {kv:#x}")
                _check_count(size, ktype, self.remaining())
                for _ in range(size):
                    self.skip(ktype, depth + 1)
                    self.skip(vtype, depth + 1)
        else:
            raise ThriftError("bad_type", f"unknown thrift type id {ttype}")


def _check_count(size: int, etype: int, remaining: int) -> None:
    """A container header must fit the bytes left: every element takes at least one byte."""
    if size < 0:
        raise ThriftError("negative_length", f"container size {size}")
    if size > remaining:
        raise ThriftError(
            "truncated", f"container claims {size} elements but only {remaining} bytes remain"
        )
    if etype not in _FIXED_SIZE and etype not in (T_STRING, T_STRUCT, T_MAP, T_SET, T_LIST):
        raise ThriftError("bad_type", f"unknown thrift element type id {etype}")


def _guard_depth(depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise ThriftError("too_deep", f"values nested deeper than {MAX_DEPTH}")


def _method_name(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ThriftError("bad_message", "method name is not UTF-8") from None

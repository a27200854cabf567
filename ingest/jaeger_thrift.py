"""Jaeger's Thrift IDL (``jaeger.thrift`` Batch, ``agent.thrift`` emitBatch) read from a
``thrift_wire`` reader into ``jaeger_batch`` objects (pure).

Field ids and types follow jaeger-idl's ``thrift/jaeger.thrift`` and ``thrift/agent.thrift``.
What cannot be stored as sent is kept apart from what cannot be read at all:

- the bytes are not Thrift, or end early, or nest absurdly -> ``ThriftError`` (the whole body
  or UDP packet is refused, with a reason);
- a span is well delimited but one of its own fields is wrong (a known field with another wire
  type, a field twice, a required field missing, a tag of an unknown type, a string that is not
  UTF-8, a time outside what storage holds) -> that span alone is marked with a reason and the
  rest of the batch goes on. Unknown field ids are skipped, as Thrift's evolution rules say.

Times: Jaeger sends signed int64 microseconds; x 1000 they must stay below 2^63 ns
(``schemas.span_limits``), and a negative start or duration has no meaning, so those spans are
refused (``time_out_of_range`` / ``invalid_duration``) instead of wrapping around as uint64.
"""

from __future__ import annotations

from ingest.jaeger_batch import (
    BINARY,
    BOOL,
    DOUBLE,
    LONG,
    STRING,
    Batch,
    Log,
    Process,
    Span,
    SpanRef,
    Tag,
    TagValue,
)
from ingest.thrift_wire import (
    M_CALL,
    M_ONEWAY,
    T_BOOL,
    T_DOUBLE,
    T_I32,
    T_I64,
    T_LIST,
    T_STOP,
    T_STRING,
    T_STRUCT,
    BinaryReader,
    CompactReader,
    ThriftError,
    ThriftReader,
)
from schemas.span_limits import MAX_TIME_UNIX_NANO, TIME_OUT_OF_RANGE

MALFORMED = "malformed_span"
INVALID_TAG = "invalid_tag"
INVALID_UTF8 = "invalid_utf8"
INVALID_DURATION = "invalid_duration"
INVALID_PROCESS = "invalid_process"

_TAG_KINDS = {0: STRING, 1: DOUBLE, 2: BOOL, 3: LONG, 4: BINARY}
# Span fields read as plain integers: the ids, flags, startTime, duration.
_SPAN_SCALARS = {1: T_I64, 2: T_I64, 3: T_I64, 4: T_I64, 7: T_I32, 8: T_I64, 9: T_I64}
_MAX_MICROS = MAX_TIME_UNIX_NANO // 1000
_U64 = 1 << 64


def id_bytes(value: int) -> bytes:
    """A Thrift i64 id (two's complement) as its 8 big-endian bytes."""
    return (value % _U64).to_bytes(8, "big")


def trace_id_bytes(high: int, low: int) -> bytes:
    return id_bytes(high) + id_bytes(low)


class _SpanState:
    """The first problem found while reading one span (later ones add nothing)."""

    __slots__ = ("problem",)

    def __init__(self) -> None:
        self.problem: str | None = None

    def note(self, reason: str) -> None:
        if self.problem is None:
            self.problem = reason


# Fewest bytes a valid struct takes, by protocol (binary, compact): its required fields
# with the smallest values plus the STOP byte. Span: six i64, operationName, flags; Tag: key,
# vType; Log: timestamp, fields; SpanRef: refType and three i64.
_MIN_BYTES = {
    False: {"span": 6 * 11 + 7 + 7 + 1, "tag": 7 + 7 + 1, "log": 11 + 8 + 1, "ref": 7 + 33 + 1},
    True: {"span": 6 * 2 + 2 + 2 + 1, "tag": 2 + 2 + 1, "log": 2 + 2 + 1, "ref": 4 * 2 + 1},
}


class _BatchReader:
    def __init__(self, reader: ThriftReader) -> None:
        self.r = reader
        self._min_bytes = _MIN_BYTES[isinstance(reader, CompactReader)]

    # --- helpers -----------------------------------------------------------------------
    def _fields(self, state: _SpanState, expected: dict[int, int]) -> dict[int, object]:
        """Read one struct's fields: known ids of the expected type are returned by id,
        everything else skipped; a known id with another type, or twice, notes MALFORMED."""
        r = self.r
        values: dict[int, object] = {}
        r.struct_begin()
        while True:
            ftype, fid = r.field()
            if ftype == T_STOP:
                break
            want = expected.get(fid)
            if want is None:
                r.skip(ftype)
                continue
            if want != ftype or fid in values:
                state.note(MALFORMED)
                r.skip(ftype)
                continue
            values[fid] = self._value(ftype, fid, state)
        r.struct_end()
        return values

    def _value(self, ftype: int, fid: int, state: _SpanState) -> object:
        r = self.r
        if ftype == T_I64:
            return r.i64()
        if ftype == T_I32:
            return r.i32()
        if ftype == T_STRING:
            return r.binary()
        if ftype == T_DOUBLE:
            return r.double()
        if ftype == T_BOOL:
            return r.bool_()
        raise AssertionError(f"no scalar reader for type {ftype}")  # pragma: no cover

    def _text(self, raw: object, state: _SpanState) -> str:
        if raw is None:
            return ""
        assert isinstance(raw, bytes)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            state.note(INVALID_UTF8)
            return ""

    def _list(self, ftype: int, state: _SpanState, element: str) -> int:
        """Open a list-of-structs field; returns its size, or -1 (after skipping it) when it is
        not a list of structs. A count its bytes cannot hold is refused (``_plausible``)."""
        if ftype != T_LIST:
            state.note(MALFORMED)
            self.r.skip(ftype)
            return -1
        etype, size = self.r.list_begin()
        if etype != T_STRUCT:
            state.note(MALFORMED)
            for _ in range(size):
                self.r.skip(etype)
            return -1
        self._plausible(size, element)
        return size

    def _plausible(self, size: int, element: str) -> None:
        """Refuse a list of more ``element`` structs than its bytes can hold valid ones.

        Each element then costs CPU and memory in proportion to the input, as for OTLP: a
        16 MiB body cannot turn into 16 million empty spans (one STOP byte each).
        """
        need = size * self._min_bytes[element]
        if need > self.r.remaining():
            raise ThriftError(
                "implausible_count",
                f"{size} {element}s need at least {need} bytes, {self.r.remaining()} remain",
            )

    # --- schema ------------------------------------------------------------------------
    def tag(self, state: _SpanState) -> Tag | None:
        """One Tag struct (the hot path: most of a span's bytes are tags, so plain locals).

        Clients may send every value field (Node's jaeger-client does, with defaults); the one
        of the tag's type is used, an absent one reads as Thrift's default for its type.
        """
        r = self.r
        key: bytes | None = None
        vtype: int | None = None
        # Values by field id 3..7 (vStr, vDouble, vBool, vLong, vBinary); None = not sent.
        v3: bytes | None = None
        v4: float | None = None
        v5: bool | None = None
        v6: int | None = None
        v7: bytes | None = None
        r.struct_begin()
        while True:
            ftype, fid = r.field()
            if ftype == T_STOP:
                break
            if fid == 1 and ftype == T_STRING and key is None:
                key = r.binary()
            elif fid == 2 and ftype == T_I32 and vtype is None:
                vtype = r.i32()
            elif fid == 3 and ftype == T_STRING and v3 is None:
                v3 = r.binary()
            elif fid == 4 and ftype == T_DOUBLE and v4 is None:
                v4 = r.double()
            elif fid == 5 and ftype == T_BOOL and v5 is None:
                v5 = r.bool_()
            elif fid == 6 and ftype == T_I64 and v6 is None:
                v6 = r.i64()
            elif fid == 7 and ftype == T_STRING and v7 is None:
                v7 = r.binary()
            else:
                if 1 <= fid <= 7:  # a known field of another type, or twice
                    state.note(MALFORMED)
                r.skip(ftype)
        r.struct_end()
        kind = _TAG_KINDS.get(vtype) if vtype is not None else None
        if key is None or kind is None:
            state.note(INVALID_TAG)
            return None
        value: TagValue
        if kind == STRING:
            value = self._text(v3, state)
        elif kind == DOUBLE:
            value = 0.0 if v4 is None else v4
        elif kind == BOOL:
            value = bool(v5)
        elif kind == LONG:
            value = 0 if v6 is None else v6
        else:
            value = b"" if v7 is None else v7
        try:
            text_key = key.decode()
        except UnicodeDecodeError:
            state.note(INVALID_UTF8)
            text_key = ""
        return Tag(text_key, kind, value)

    def tags(self, ftype: int, state: _SpanState) -> list[Tag]:
        size = self._list(ftype, state, "tag")
        out: list[Tag] = []
        for _ in range(size):
            tag = self.tag(state)
            if tag is not None:
                out.append(tag)
        return out

    def log(self, state: _SpanState) -> Log | None:
        r = self.r
        r.struct_begin()
        timestamp: int | None = None
        fields: list[Tag] | None = None
        while True:
            ftype, fid = r.field()
            if ftype == T_STOP:
                break
            if fid == 1 and ftype == T_I64 and timestamp is None:
                timestamp = r.i64()
            elif fid == 2 and fields is None:
                fields = self.tags(ftype, state)
            else:
                if fid in (1, 2):
                    state.note(MALFORMED)
                r.skip(ftype)
        r.struct_end()
        if timestamp is None:
            state.note(MALFORMED)
            return None
        return Log(_nanos(timestamp, state), fields or [])

    def ref(self, state: _SpanState) -> SpanRef | None:
        f = self._fields(state, {1: T_I32, 2: T_I64, 3: T_I64, 4: T_I64})
        if len(f) != 4:
            state.note(MALFORMED)
            return None
        return SpanRef(
            f[1],  # type: ignore[arg-type]
            trace_id_bytes(f[3], f[2]),  # type: ignore[arg-type]
            id_bytes(f[4]),  # type: ignore[arg-type]
        )

    def span(self) -> Span:
        r = self.r
        state = _SpanState()
        span = Span()
        scalars: dict[int, int] = {}
        wanted = _SPAN_SCALARS
        seen: set[int] = set()
        r.struct_begin()
        while True:
            ftype, fid = r.field()
            if ftype == T_STOP:
                break
            if fid in seen and fid <= 11:
                state.note(MALFORMED)
                r.skip(ftype)
                continue
            seen.add(fid)
            want = wanted.get(fid)
            if want is not None:
                if ftype == want:
                    scalars[fid] = r.i64() if want == T_I64 else r.i32()
                else:
                    state.note(MALFORMED)
                    r.skip(ftype)
            elif fid == 5:
                if ftype == T_STRING:
                    span.operation_name = self._text(r.binary(), state)
                else:
                    state.note(MALFORMED)
                    r.skip(ftype)
            elif fid == 6:
                for _ in range(self._list(ftype, state, "ref")):
                    ref = self.ref(state)
                    if ref is not None:
                        span.references.append(ref)
            elif fid == 10:
                span.tags = self.tags(ftype, state)
            elif fid == 11:
                for _ in range(self._list(ftype, state, "log")):
                    log = self.log(state)
                    if log is not None:
                        span.logs.append(log)
            else:
                r.skip(ftype)
        r.struct_end()
        if 5 not in seen or len(scalars) != len(wanted):
            state.note(MALFORMED)
        span.trace_id = trace_id_bytes(scalars.get(2, 0), scalars.get(1, 0))
        span.span_id = id_bytes(scalars.get(3, 0))
        parent = scalars.get(4, 0)
        span.parent_span_id = id_bytes(parent) if parent else b""
        span.flags = scalars.get(7, 0)
        start, duration = scalars.get(8, 0), scalars.get(9, 0)
        if duration < 0:
            state.note(INVALID_DURATION)
        elif start < 0 or start + duration > _MAX_MICROS:
            state.note(TIME_OUT_OF_RANGE)
        else:
            span.start_unix_nano = start * 1000
            span.end_unix_nano = (start + duration) * 1000
        span.problem = state.problem
        return span

    def process(self) -> tuple[Process, str | None]:
        state = _SpanState()
        r = self.r
        process = Process()
        name: bytes | None = None
        r.struct_begin()
        while True:
            ftype, fid = r.field()
            if ftype == T_STOP:
                break
            if fid == 1 and ftype == T_STRING and name is None:
                name = r.binary()
            elif fid == 2:
                process.tags = self.tags(ftype, state)
            else:
                if fid == 1:
                    state.note(MALFORMED)
                r.skip(ftype)
        r.struct_end()
        process.service_name = self._text(name, state)
        problem = None if state.problem is None else INVALID_PROCESS
        return process, problem

    def batch(self) -> Batch:
        r = self.r
        process: Process | None = None
        problem: str | None = None
        spans: list[Span] | None = None
        r.struct_begin()
        while True:
            ftype, fid = r.field()
            if ftype == T_STOP:
                break
            if fid == 1 and ftype == T_STRUCT and process is None:
                process, problem = self.process()
            elif fid == 2 and ftype == T_LIST and spans is None:
                etype, size = r.list_begin()
                if etype != T_STRUCT:
                    raise ThriftError("bad_batch", "Batch.spans is not a list of structs")
                self._plausible(size, "span")
                spans = [self.span() for _ in range(size)]
            elif fid in (1, 2):
                raise ThriftError("bad_batch", f"Batch field {fid} has the wrong type or repeats")
            else:
                r.skip(ftype)
        r.struct_end()
        if spans is None:
            raise ThriftError("bad_batch", "Batch has no spans field")
        return Batch(process, spans, problem)


def _nanos(micros: int, state: _SpanState) -> int:
    if not 0 <= micros <= _MAX_MICROS:
        state.note(TIME_OUT_OF_RANGE)
        return 0
    return micros * 1000


def _ensure_consumed(reader: ThriftReader, what: str) -> None:
    if reader.remaining():
        raise ThriftError("trailing_bytes", f"{reader.remaining()} bytes after the {what}")


def read_batch(data: bytes, compact: bool = False) -> Batch:
    """A bare ``jaeger.Batch`` struct (the body of ``POST /api/traces``)."""
    reader: ThriftReader = CompactReader(data) if compact else BinaryReader(data)
    batch = _BatchReader(reader).batch()
    _ensure_consumed(reader, "Batch")
    return batch


def read_emit_batch(data: bytes, compact: bool) -> Batch:
    """An agent UDP packet: the ``Agent.emitBatch`` message (one-way call, arg 1 = Batch).

    ``emitZipkinBatch`` (the agent's Zipkin-Thrift method) is refused with a reason.
    """
    reader: ThriftReader = CompactReader(data) if compact else BinaryReader(data)
    name, mtype = reader.message_begin()
    if name != "emitBatch":
        raise ThriftError("unsupported_method", f"agent method {name[:64]!r} is not emitBatch")
    if mtype not in (M_ONEWAY, M_CALL):
        raise ThriftError("bad_message", f"message type {mtype} is not a call")
    batch: Batch | None = None
    reader.struct_begin()
    adapter = _BatchReader(reader)
    while True:
        ftype, fid = reader.field()
        if ftype == T_STOP:
            break
        if fid == 1 and ftype == T_STRUCT and batch is None:
            batch = adapter.batch()
        else:
            reader.skip(ftype)
    reader.struct_end()
    if batch is None:
        raise ThriftError("bad_batch", "emitBatch without a batch argument")
    _ensure_consumed(reader, "emitBatch message")
    return batch

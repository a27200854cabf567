# cython: language_level=3
"""Protobuf wire-format reading for the compiled passes (``streams/_otlp_scan.pyx``,
``ingest/_otlp_split.pyx``): a cursor over bytes and its checked reads.

Every read checks what is left, so truncated or hostile bytes end in ValueError, never in a
read past the buffer; the passes turn it into "leave this message to the protobuf runtime".
Inline, so each pass compiles its own copy with no call between modules.
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t


cdef struct Cursor:
    const uint8_t* buf
    Py_ssize_t pos
    Py_ssize_t end


cdef inline Cursor enter(Cursor* outer, Py_ssize_t size) noexcept:
    """A cursor over the next ``size`` bytes of ``outer`` (a length ``length`` checked), and
    ``outer`` moved past them: how a reader steps into a nested message."""
    cdef Cursor c
    c.buf = outer.buf
    c.pos = outer.pos
    c.end = outer.pos + size
    outer.pos = c.end
    return c


cdef inline uint64_t varint(Cursor* c) except? 0xFFFFFFFFFFFFFFFF:
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef uint8_t byte
    while True:
        if c.pos >= c.end or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = c.buf[c.pos]
        c.pos += 1
        if shift == 63 and byte > 1:
            raise ValueError("varint over 64 bits")
        result |= (<uint64_t>(byte & 0x7F)) << shift
        if byte < 0x80:
            return result
        shift += 7


cdef inline uint64_t fixed64(Cursor* c) except? 0xFFFFFFFFFFFFFFFF:
    cdef uint64_t v = 0
    cdef int i
    if c.end - c.pos < 8:
        raise ValueError("truncated fixed64")
    for i in range(8):
        v |= (<uint64_t>c.buf[c.pos + i]) << (8 * i)
    c.pos += 8
    return v


cdef inline Py_ssize_t length(Cursor* c) except -1:
    """A length-delimited field's size, checked against what is left."""
    cdef uint64_t n = varint(c)
    if n > <uint64_t>(c.end - c.pos):
        raise ValueError("length past the end")
    return <Py_ssize_t>n


cdef inline int key(Cursor* c, uint32_t* field, int* wire) except -1:
    cdef uint64_t k = varint(c)
    field[0] = <uint32_t>(k >> 3)
    wire[0] = <int>(k & 7)
    if (k >> 3) == 0 or (k >> 3) > 0x1FFFFFFF:
        raise ValueError("invalid field number")
    return 0


cdef inline int skip(Cursor* c, int wire) except -1:
    if wire == 0:
        varint(c)
    elif wire == 1:
        if c.end - c.pos < 8:
            raise ValueError("truncated fixed64")
        c.pos += 8
    elif wire == 2:
        c.pos += length(c)
    elif wire == 5:
        if c.end - c.pos < 4:
            raise ValueError("truncated fixed32")
        c.pos += 4
    else:
        raise ValueError("group or invalid wire type")
    return 0


cdef inline int expect(int wire, int expected) except -1:
    if wire != expected:
        raise ValueError("unexpected wire type on a known field")
    return 0

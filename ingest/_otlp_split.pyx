# cython: language_level=3, boundscheck=False, wraparound=False
# (No negative indexes anywhere here: without wraparound they read before a list's start.)
"""A serialized ``TracesData`` -> one serialized ``TracesData`` per Kafka partition, in bytes.

Why: ingest's protobuf split (:func:`ingest.otlp_split.split_by_partition`) copied every span
into a new message object and read its fields through the protobuf runtime: 4 µs per span, a
third of ingest's CPU under load (docs/perf.md). Here the spans' bytes are checked and copied
as they are, framed with their resource and scope, and the result is byte for byte what the
protobuf split serializes (``tests/unit/test_otlp_split_bytes.py`` holds them equal).

Like streams' compiled pass (ADR 0015) it is an accelerator, not an authority: any span the
storable check refuses, any message past ``max_bytes``, anything not laid out as the protobuf
runtime serializes it raises :class:`Fallback`, and the protobuf split decides, with its
reasons and counters.
"""

from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcmp
from cpython.bytes cimport PyBytes_FromStringAndSize

from core.protowire cimport Cursor, enter, expect, fixed64, key, length, skip

ABI = 1

cdef uint64_t MAX_TIME = 0x7FFFFFFFFFFFFFFF
cdef const char* ZERO16 = b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"


class Fallback(Exception):
    """Leave this request to the protobuf split."""


cdef bytes _tag_len(int field, Py_ssize_t n):
    """A length-delimited field's key and length prefix."""
    cdef unsigned char buf[12]
    cdef int at = 1
    cdef uint64_t v = <uint64_t>n
    buf[0] = <unsigned char>((field << 3) | 2)
    while v >= 0x80:
        buf[at] = <unsigned char>((v & 0x7F) | 0x80)
        v >>= 7
        at += 1
    buf[at] = <unsigned char>v
    return PyBytes_FromStringAndSize(<char*>buf, at + 1)


cdef Py_ssize_t _event_ok(Cursor c) except -1:
    """Whether the Event under ``c`` has a time that fits DateTime64(9) (1) or not (0)."""
    cdef uint32_t field
    cdef int wire
    while c.pos < c.end:
        key(&c, &field, &wire)
        if field == 1 and wire == 1:
            if fixed64(&c) > MAX_TIME:
                return 0
        else:
            skip(&c, wire)
    return 1


cdef tuple _span(Cursor c):
    """(trace id, first byte of a zero parent field or -1, its end) of the storable span under
    ``c``, or Fallback for any span the protobuf split refuses or rewrites otherwise."""
    cdef const unsigned char* buf = c.buf
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t n, tid_at = -1, tid_n = 0, sid_at = -1, sid_n = 0
    cdef Py_ssize_t parent_n = -1, parent_field = -1, parent_end = -1, field_start
    cdef uint64_t t
    while c.pos < c.end:
        field_start = c.pos
        key(&c, &field, &wire)
        if field == 1:
            expect(wire, 2)
            if tid_at >= 0:
                raise Fallback("trace id sent twice")
            n = length(&c)
            tid_at, tid_n = c.pos, n
            c.pos += n
        elif field == 2:
            expect(wire, 2)
            if sid_at >= 0:
                raise Fallback("span id sent twice")
            n = length(&c)
            sid_at, sid_n = c.pos, n
            c.pos += n
        elif field == 4:
            expect(wire, 2)
            if parent_n >= 0:
                raise Fallback("parent sent twice")
            n = length(&c)
            parent_n = n
            if n == 8 and memcmp(buf + c.pos, ZERO16, 8) == 0:
                parent_field = field_start
                parent_end = c.pos + n
            elif n != 8:
                raise Fallback("parent of the wrong length, or empty and not serialized so")
            c.pos += n
        elif field == 7 or field == 8:
            expect(wire, 1)
            t = fixed64(&c)
            if t > MAX_TIME:
                raise Fallback("time out of range")
        elif field == 11:
            expect(wire, 2)
            if not _event_ok(enter(&c, length(&c))):
                raise Fallback("event time out of range")
        else:
            skip(&c, wire)
    if (tid_n != 16 or sid_n != 8 or memcmp(buf + tid_at, ZERO16, 16) == 0
            or memcmp(buf + sid_at, ZERO16, 8) == 0):
        raise Fallback("a span the storable check refuses")
    return (PyBytes_FromStringAndSize(<const char*>(buf + tid_at), 16), parent_field, parent_end)


cdef int _envelope(Cursor c, Py_ssize_t* msg_at, Py_ssize_t* msg_n, Py_ssize_t* url_at,
                   Py_ssize_t* url_n) except -1:
    """First pass over a ResourceSpans or ScopeSpans (``c``, walked as a copy): where its one
    message in field 1 (the resource, the scope) and its schema_url (field 3) are, -1 when
    absent. Any field but 1-3 is one the protobuf split would drop: Fallback."""
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t n
    msg_at[0] = msg_n[0] = url_at[0] = url_n[0] = -1
    while c.pos < c.end:
        key(&c, &field, &wire)
        expect(wire, 2)
        n = length(&c)
        if field == 1:
            if msg_at[0] >= 0:
                raise Fallback("resource or scope sent twice")
            msg_at[0], msg_n[0] = c.pos, n
        elif field == 3:
            url_at[0], url_n[0] = c.pos, n
        elif field != 2:
            raise Fallback("a field the protobuf split drops")
        c.pos += n
    return 0


cdef class _Group:
    """Spans of one (resource, scope) bound for one partition, as byte ranges."""
    cdef public list pieces
    cdef public Py_ssize_t size

    def __cinit__(self):
        self.pieces = []
        self.size = 0


def split(bytes payload, int partitions, object partition_of, Py_ssize_t max_bytes):
    """[(partition, message bytes, spans, first trace id)] in the order partitions first
    appear, as the protobuf split and serialization give them; or :class:`Fallback`."""
    cdef const unsigned char* buf = payload
    cdef Cursor top, rs, ss, sp
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t n, res_at, res_n, rurl_at, rurl_n, scope_at, scope_n, surl_at, surl_n
    cdef Py_ssize_t parent_field, parent_end
    cdef int p
    cdef dict partition_cache = {}
    # partition -> [first trace id, span count, [(resource index, [(scope index, _Group)])]]
    cdef dict out = {}
    cdef list order = []
    cdef list resources_meta = []  # per resource index: (res_at, res_n, url_at, url_n)
    cdef list scopes_meta = []  # per (resource, scope): (scope_at, scope_n, url_at, url_n)
    cdef int r_index = -1, s_index
    cdef _Group group
    cdef tuple span_info
    cdef bytes tid
    cdef object cached
    top.buf = buf
    top.pos = 0
    top.end = len(payload)
    try:
        while top.pos < top.end:
            key(&top, &field, &wire)
            if field != 1:
                raise Fallback("a field the protobuf split drops")
            expect(wire, 2)
            rs = enter(&top, length(&top))
            r_index += 1
            _envelope(rs, &res_at, &res_n, &rurl_at, &rurl_n)
            resources_meta.append((res_at, res_n, rurl_at, rurl_n))
            s_index = -1
            while rs.pos < rs.end:
                key(&rs, &field, &wire)
                n = length(&rs)
                if field != 2:
                    rs.pos += n
                    continue
                ss = enter(&rs, n)
                s_index += 1
                _envelope(ss, &scope_at, &scope_n, &surl_at, &surl_n)
                scopes_meta.append((r_index, s_index, scope_at, scope_n, surl_at, surl_n))
                meta_index = len(scopes_meta) - 1
                while ss.pos < ss.end:
                    key(&ss, &field, &wire)
                    n = length(&ss)
                    if field != 2:
                        ss.pos += n
                        continue
                    sp = enter(&ss, n)
                    span_info = _span(sp)
                    tid = span_info[0]
                    parent_field = span_info[1]
                    parent_end = span_info[2]
                    cached = partition_cache.get(tid)
                    if cached is None:
                        p = partition_of(tid, partitions)
                        partition_cache[tid] = p
                    else:
                        p = cached
                    entry = out.get(p)
                    if entry is None:
                        entry = out[p] = [tid, 0, []]
                        order.append(p)
                    entry[1] += 1
                    groups = entry[2]
                    # (No negative indexes: this module is compiled without wraparound.)
                    last = groups[len(groups) - 1] if groups else None
                    if last is None or last[0] != meta_index:
                        group = _Group()
                        groups.append((meta_index, group))
                    else:
                        group = last[1]
                    if parent_field >= 0:
                        # A parent of eight zero bytes means "root": the protobuf split clears
                        # it, and a cleared bytes field is not serialized.
                        n = n - (parent_end - parent_field)
                    prefix = _tag_len(2, n)
                    group.pieces.append(prefix)
                    if parent_field < 0:
                        group.pieces.append(payload[sp.pos:sp.end])
                    else:
                        group.pieces.append(payload[sp.pos:parent_field])
                        group.pieces.append(payload[parent_end:sp.end])
                    group.size += len(prefix) + n
        return [_assemble(payload, p, out[p], scopes_meta, resources_meta, max_bytes)
                for p in order]
    except Fallback:
        raise
    except Exception as exc:
        raise Fallback(f"{type(exc).__name__}: {exc}") from None


cdef bytes _field(bytes payload, int number, Py_ssize_t at, Py_ssize_t n, bint always):
    """A length-delimited field copied from ``payload``: a message the split copies is always
    written (copying marks it present, even empty), a string only when not empty."""
    if at < 0 or n == 0:
        return _tag_len(number, 0) if always else b""
    return _tag_len(number, n) + payload[at:at + n]


cdef tuple _assemble(bytes payload, int p, list entry, list scopes_meta, list resources_meta,
                     Py_ssize_t max_bytes):
    """One partition's message: its resources in order, each with its scopes in order."""
    cdef list parts = []
    cdef list resource_parts = []
    cdef int current_r = -1
    cdef _Group group
    cdef Py_ssize_t size
    for meta_index, group in entry[2]:
        r_index, s_index, scope_at, scope_n, surl_at, surl_n = scopes_meta[meta_index]
        if r_index != current_r:
            if current_r >= 0:
                parts.append(_resource_spans(payload, resources_meta[current_r], resource_parts))
            current_r = r_index
            resource_parts = []
        scope_field = _field(payload, 1, scope_at, scope_n, True)
        url_field = _field(payload, 3, surl_at, surl_n, False)
        size = len(scope_field) + group.size + len(url_field)
        resource_parts.append(_tag_len(2, size))
        resource_parts.append(scope_field)
        resource_parts.extend(group.pieces)
        resource_parts.append(url_field)
    if current_r >= 0:
        parts.append(_resource_spans(payload, resources_meta[current_r], resource_parts))
    message = b"".join(parts)
    if len(message) > max_bytes:
        raise Fallback("over the message limit: the protobuf split halves it")
    return (p, message, entry[1], entry[0])


cdef bytes _resource_spans(bytes payload, tuple meta, list scope_parts):
    res_at, res_n, url_at, url_n = meta
    body = (_field(payload, 1, res_at, res_n, True) + b"".join(scope_parts)
            + _field(payload, 3, url_at, url_n, False))
    return _tag_len(1, len(body)) + body

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""One compiled pass over a serialized OTLP ``TracesData``: span views with their stored text.

Why: under keep-all the streams worker spent most of its time walking protobuf objects twice,
once to build span views (decode, ids, times) and once to pack kept spans (hex ids, attribute
text). Every field read through the protobuf runtime costs a Python object. This module reads
the wire bytes directly and builds each view once, with everything packing needs already
rendered (see :mod:`streams.otlp_scan`, the Python side, and ADR 0015).

It is an accelerator, never an authority. It handles the common, well-formed message and
raises :class:`Fallback` for anything else: a wire type it does not expect on a known field, a
singular message field sent twice (protobuf merges those), groups, a span storage refuses, a
string that is not UTF-8, or an AnyValue the protobuf runtime's own rendering refuses (values
other than strings, bools and ints are rendered through it). The caller then runs the protobuf
path, which owns every rejection, reason and counter. So both paths give the same views for
every message this one accepts, which ``tests/unit/test_otlp_scan.py`` checks property by
property against the protobuf path.

Field numbers are OTLP's (opentelemetry-proto ``trace.proto``, ``common.proto``,
``resource.proto``); :data:`KNOWN_FIELDS` lists the ones read or checked here, and a unit test
compares it with the installed descriptors, so a new field in a proto upgrade is noticed.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8

from core.protowire cimport Cursor, enter, expect, fixed64, key, length, skip, varint
from core.slots cimport slot_offsets


cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_DATA(object s)

# Bumped whenever what the views carry changes; streams.otlp_scan refuses a stale build.
ABI = 3

# message -> {field number: wire type}; 2 = length-delimited, 0 = varint, 1 = fixed64,
# 5 = fixed32. A known field on another wire type is a Fallback.
KNOWN_FIELDS = {
    "TracesData": {1: 2},
    "ResourceSpans": {1: 2, 2: 2, 3: 2},
    "ScopeSpans": {1: 2, 2: 2, 3: 2},
    "Span": {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 0, 7: 1, 8: 1, 9: 2, 10: 0, 11: 2, 12: 0,
             13: 2, 14: 0, 15: 2, 16: 5},
    "Event": {1: 1, 2: 2, 3: 2, 4: 0},
    "Link": {1: 2, 2: 2, 3: 2, 4: 2, 5: 0, 6: 5},
    "Status": {2: 2, 3: 0},
    "Resource": {1: 2, 2: 0, 3: 2},
    "InstrumentationScope": {1: 2, 2: 2, 3: 2, 4: 0},
    "KeyValue": {1: 2, 2: 2, 3: 0},
}

cdef uint64_t MAX_TIME = 0x7FFFFFFFFFFFFFFF
cdef const char* HEX = b"0123456789abcdef"
cdef bytes ZERO_TRACE = bytes(16)
cdef bytes ZERO_SPAN = bytes(8)


class Fallback(Exception):
    """This message is not one the fast pass handles; use the protobuf path."""


cdef inline str _text(Cursor* c, Py_ssize_t n):
    """A string field: strict UTF-8 (a protobuf parser refuses what this refuses)."""
    cdef str s = PyUnicode_DecodeUTF8(<const char*>(c.buf + c.pos), n, NULL)
    c.pos += n
    return s


cdef inline int _check_text(Cursor* c, Py_ssize_t n) except -1:
    """:func:`_text` without the string: whether the bytes are strict UTF-8, an ASCII run
    checked in place (what nearly every attribute is), anything else by decoding it."""
    cdef const uint8_t* p = c.buf + c.pos
    cdef Py_ssize_t i
    for i in range(n):
        if p[i] >= 0x80:
            PyUnicode_DecodeUTF8(<const char*>p, n, NULL)
            break
    c.pos += n
    return 0


# -- a cache of short texts --------------------------------------------------------------
#
# Attribute keys, span names and most short values repeat from span to span. Decoding each
# again made a new string whose hash the attribute dict then computed again; a hit here
# returns the string already made, hash included. Direct-mapped by a hash of the bytes; a slot
# holds the last ASCII string that landed in it, compared byte for byte before it is used.

cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object s)
    Py_ssize_t PyUnicode_GET_LENGTH(object s)

cdef enum:
    CACHE_SLOTS = 4096
    CACHE_MAX_BYTES = 48
cdef PyObject* _TEXTS[CACHE_SLOTS]


cdef inline str _cached_text(Cursor* c, Py_ssize_t n):
    """:func:`_text`, from the cache when the same short ASCII text was read before."""
    cdef const uint8_t* p = c.buf + c.pos
    cdef uint32_t h = 2166136261
    cdef Py_ssize_t i
    cdef PyObject* hit
    cdef str s
    if n > CACHE_MAX_BYTES:
        return _text(c, n)
    for i in range(n):
        h = (h ^ p[i]) * 16777619
    h &= CACHE_SLOTS - 1
    hit = _TEXTS[h]
    if (hit != NULL and PyUnicode_GET_LENGTH(<object>hit) == n
            and memcmp(PyUnicode_DATA(<object>hit), p, n) == 0):
        c.pos += n
        return <str>hit
    s = _text(c, n)
    if PyUnicode_IS_COMPACT_ASCII(s):
        Py_XDECREF(hit)
        Py_INCREF(s)
        _TEXTS[h] = <PyObject*>s
    return s


cdef inline bytes _raw(Cursor* c, Py_ssize_t n):
    cdef bytes b = PyBytes_FromStringAndSize(<const char*>(c.buf + c.pos), n)
    c.pos += n
    return b


cdef str _hex(bytes b):
    """Lower-case hex of ``b``, written straight into a new ASCII string."""
    cdef Py_ssize_t n = len(b), i
    cdef const uint8_t* p = b
    cdef str out = PyUnicode_New(2 * n, 127)
    cdef uint8_t* o = <uint8_t*>PyUnicode_DATA(out)
    for i in range(n):
        o[2 * i] = HEX[p[i] >> 4]
        o[2 * i + 1] = HEX[p[i] & 15]
    return out


cdef str _decimal(int64_t v):
    """An int64 in decimal, as ``str(int)`` writes it (snprintf cost a thousand instructions
    a call, the most of any step of an int attribute)."""
    cdef char buf[24]
    cdef int at = 24
    cdef uint64_t u = (<uint64_t>0 - <uint64_t>v) if v < 0 else <uint64_t>v
    while True:
        at -= 1
        buf[at] = <char>(48 + u % 10)
        u //= 10
        if u == 0:
            break
    if v < 0:
        at -= 1
        buf[at] = 45  # '-'
    return PyUnicode_DecodeASCII(buf + at, 24 - at, NULL)


cdef str _any_value(const uint8_t* buf, Py_ssize_t start, Py_ssize_t end, object render_any,
                    bint keep=True):
    """An AnyValue as stored text. Strings, bools and ints (nearly every attribute) here; any
    other shape (doubles, bytes, arrays, maps, several members) through ``render_any``, the
    protobuf path's own rendering, so the text is the same by construction. With ``keep``
    false the value is only checked (the same steps, so the same refusals) and None comes
    back: a string is then not made."""
    cdef Cursor c
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t n
    cdef uint64_t v
    c.buf = buf
    c.pos = start
    c.end = end
    if start == end:
        return ""
    key(&c, &field, &wire)
    if field == 1 and wire == 2:
        n = length(&c)
        if c.pos + n == end:
            if not keep:
                _check_text(&c, n)
                return None
            return _cached_text(&c, n)
    elif field == 2 and wire == 0:
        v = varint(&c)
        if c.pos == end:
            if not keep:
                return None
            return "true" if v != 0 else "false"
    elif field == 3 and wire == 0:
        v = varint(&c)
        if c.pos == end:
            if not keep:
                return None
            return _decimal(<int64_t>v)
    text = render_any(PyBytes_FromStringAndSize(<const char*>(buf + start), end - start))
    return text if keep else None


cdef int _key_value(Cursor* outer, Py_ssize_t size, dict out, object render_any) except -1:
    """One KeyValue into ``out`` (a later duplicate key wins, as in the protobuf path); with
    ``out`` None it is only checked, as it would be read."""
    cdef Cursor c
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t n, vstart = -1, vend = -1
    cdef str name = ""
    c = enter(outer, size)
    while c.pos < c.end:
        key(&c, &field, &wire)
        if field == 1:
            expect(wire, 2)
            if out is None:
                _check_text(&c, length(&c))
            else:
                name = _cached_text(&c, length(&c))
        elif field == 2:
            expect(wire, 2)
            if vstart >= 0:
                raise Fallback("value sent twice (merged by protobuf)")
            n = length(&c)
            vstart = c.pos
            vend = c.pos + n
            c.pos = vend
        elif field == 3:
            expect(wire, 0)
            varint(&c)
        else:
            skip(&c, wire)
    if out is None:
        if vstart >= 0:
            _any_value(c.buf, vstart, vend, render_any, False)
    elif vstart < 0:
        out[name] = ""
    else:
        out[name] = _any_value(c.buf, vstart, vend, render_any)
    return 0


cdef inline int32_t _enum(Cursor* c) except? -1:
    cdef int64_t v = <int64_t>varint(c)
    if v < -2147483648 or v > 2147483647:
        raise Fallback("enum outside int32")
    return <int32_t>v


cdef tuple _status(Cursor* outer, Py_ssize_t size):
    cdef Cursor c
    cdef uint32_t field
    cdef int wire
    cdef uint64_t v
    cdef str message = ""
    cdef int32_t code = 0
    c = enter(outer, size)
    while c.pos < c.end:
        key(&c, &field, &wire)
        if field == 2:
            expect(wire, 2)
            message = _text(&c, length(&c))
        elif field == 3:
            expect(wire, 0)
            code = _enum(&c)
        else:
            skip(&c, wire)
    return (message, code)


cdef tuple _event(Cursor* outer, Py_ssize_t size, object render_any):
    cdef Cursor c
    cdef uint32_t field
    cdef int wire
    cdef uint64_t t = 0
    cdef str name = ""
    cdef dict attrs = {}
    c = enter(outer, size)
    while c.pos < c.end:
        key(&c, &field, &wire)
        if field == 1:
            expect(wire, 1)
            t = fixed64(&c)
        elif field == 2:
            expect(wire, 2)
            name = _text(&c, length(&c))
        elif field == 3:
            expect(wire, 2)
            _key_value(&c, length(&c), attrs, render_any)
        elif field == 4:
            expect(wire, 0)
            varint(&c)
        else:
            skip(&c, wire)
    if t > MAX_TIME:
        raise Fallback("event time out of range (the protobuf path refuses the span)")
    return (<int64_t>t, name, attrs)


cdef tuple _link(Cursor* outer, Py_ssize_t size, object render_any):
    cdef Cursor c
    cdef uint32_t field
    cdef int wire
    cdef bytes tid = b"", sid = b""
    cdef str state = ""
    cdef dict attrs = {}
    c = enter(outer, size)
    while c.pos < c.end:
        key(&c, &field, &wire)
        if field == 1:
            expect(wire, 2)
            tid = _raw(&c, length(&c))
        elif field == 2:
            expect(wire, 2)
            sid = _raw(&c, length(&c))
        elif field == 3:
            expect(wire, 2)
            state = _text(&c, length(&c))
        elif field == 4:
            expect(wire, 2)
            _key_value(&c, length(&c), attrs, render_any)
        elif field == 5:
            expect(wire, 0)
            varint(&c)
        elif field == 6:
            expect(wire, 5)
            skip(&c, wire)
        else:
            skip(&c, wire)
    return (_hex(tid), _hex(sid), state, attrs)


# Spans of one trace mostly follow each other in a message: the one before's trace id and its
# hex are reused (saving a bytes object, a hex string and, further on, their hashes).
cdef bytes _LAST_TID = None
cdef str _LAST_TID_HEX = None


cdef str _remember_trace(bytes tid):
    global _LAST_TID, _LAST_TID_HEX
    if tid is not _LAST_TID:
        _LAST_TID = tid
        _LAST_TID_HEX = _hex(tid)
    return _LAST_TID_HEX


# What _span makes of a span: a view with its text rendered (keep-all: every span leaves the
# worker), a view whose text waits in its bytes (tail sampling: most spans never leave), or,
# for such a view's bytes, only the text.
cdef enum:
    VIEW_RENDERED = 0
    VIEW_LAZY = 1
    TEXT_ONLY = 2


cdef object _span(Cursor* outer, Py_ssize_t size, object new_view, str tenant, str service,
                  dict resource, tuple scope_names, object render_any, int mode):
    """One span. Whatever ``mode``, every byte is checked the same way, so a message is
    refused (Fallback) for the same reasons; only what is built differs."""
    cdef Cursor c
    cdef uint32_t field
    cdef int wire
    cdef bytes tid = b"", sid = b"", parent = b""
    cdef str state = "", name = "", status_message = "", tid_hex
    cdef Py_ssize_t n
    cdef int32_t kind = 0, status_code = 0
    cdef uint64_t start = 0, end = 0
    cdef dict attrs = None if mode == VIEW_LAZY else {}
    cdef list events = None, links = None
    cdef bint has_status = False
    cdef tuple st, event, link
    c = enter(outer, size)
    cdef Py_ssize_t begin = c.pos
    while c.pos < c.end:
        key(&c, &field, &wire)
        if field == 9:
            expect(wire, 2)
            _key_value(&c, length(&c), attrs, render_any)
        elif field == 1:
            expect(wire, 2)
            n = length(&c)
            if (n == 16 and _LAST_TID is not None
                    and memcmp(c.buf + c.pos, <const char*>_LAST_TID, 16) == 0):
                tid = _LAST_TID  # the trace of the span before: one bytes object, one hex
                c.pos += n
            else:
                tid = _raw(&c, n)
        elif field == 2:
            expect(wire, 2)
            sid = _raw(&c, length(&c))
        elif field == 3:
            expect(wire, 2)
            state = _text(&c, length(&c))
        elif field == 4:
            expect(wire, 2)
            parent = _raw(&c, length(&c))
        elif field == 5:
            expect(wire, 2)
            name = _cached_text(&c, length(&c))
        elif field == 6:
            expect(wire, 0)
            kind = _enum(&c)
        elif field == 7:
            expect(wire, 1)
            start = fixed64(&c)
        elif field == 8:
            expect(wire, 1)
            end = fixed64(&c)
        elif field == 15:
            expect(wire, 2)
            if has_status:
                raise Fallback("status sent twice (merged by protobuf)")
            has_status = True
            st = _status(&c, length(&c))
            status_message = st[0]
            status_code = st[1]
        elif field == 11:
            expect(wire, 2)
            event = _event(&c, length(&c), render_any)
            if mode != VIEW_LAZY:
                if events is None:
                    events = []
                events.append(event)
        elif field == 13:
            expect(wire, 2)
            link = _link(&c, length(&c), render_any)
            if mode != VIEW_LAZY:
                if links is None:
                    links = []
                links.append(link)
        elif field == 10 or field == 12 or field == 14:
            expect(wire, 0)
            varint(&c)
        elif field == 16:
            expect(wire, 5)
            skip(&c, wire)
        else:
            skip(&c, wire)
    # The storable-span check of streams.span_views: anything it would look at twice goes
    # to the protobuf path, which gives the reason.
    if (start > MAX_TIME or end > MAX_TIME or len(tid) != 16 or len(sid) != 8
            or (len(parent) != 0 and len(parent) != 8)
            or tid == ZERO_TRACE or sid == ZERO_SPAN):
        raise Fallback("a span storage refuses")
    if parent == ZERO_SPAN:
        parent = b""
    cdef object rendered = None
    cdef bytes raw = None
    if mode == VIEW_LAZY:
        raw = PyBytes_FromStringAndSize(<const char*>(c.buf + begin), c.end - begin)
    else:
        tid_hex = _remember_trace(tid)
        rendered = (tid_hex, _hex(sid), status_message, scope_names[0], scope_names[1],
                    size, events if events is not None else (),
                    links if links is not None else ())
        if mode == TEXT_ONLY:
            return (attrs, rendered)
        scope_names = None
    if _LAYOUT_OF is new_view:
        return _fill((tenant, tid, sid, parent, state, name, kind, service, <int64_t>start,
                      <int64_t>end, status_code, resource, None, None, attrs, _ZERO, rendered,
                      raw, scope_names))
    return new_view(tenant, tid, sid, parent, state, name, kind, service, <int64_t>start,
                    <int64_t>end, status_code, resource, None, None, attrs, 0.0, rendered,
                    raw, scope_names)


# -- building views without running their __init__ ------------------------------------------
#
# The view class's generated __init__ (a Python frame that assigns each attribute one by one)
# was a fifth of this pass. A slotted class keeps each attribute at a fixed offset in the
# object, which its member descriptor records; writing the values there is what the
# descriptors do, minus the frame. Used only when the class is exactly what that needs (every
# field a plain object slot, in field order, no __post_init__), checked once per class.

cdef extern from "Python.h":
    ctypedef struct PyTypeObject
    object PyType_GenericAlloc(PyTypeObject* t, Py_ssize_t n)
    void PyObject_GC_UnTrack(object o)

cdef enum:
    VIEW_FIELDS = 19  # streams.span_views.SpanView's fields, in order

cdef object _LAYOUT_OF = None
cdef Py_ssize_t _OFFSETS[VIEW_FIELDS]
cdef object _ZERO = 0.0


def use_layout(cls, tuple names):
    """Build views of ``cls`` by writing its slots directly, if its layout allows; returns
    whether it does (otherwise views are built by calling the class)."""
    global _LAYOUT_OF
    _LAYOUT_OF = None
    if len(names) != VIEW_FIELDS or "__post_init__" in cls.__dict__ or "__dict__" in dir(cls):
        return False
    if slot_offsets(cls, names, _OFFSETS):
        _LAYOUT_OF = cls
    return _LAYOUT_OF is not None


cdef object _fill(tuple values):
    """A view with ``values`` in its slots, left out of the cycle collector: what the pass puts
    in a view (strings, bytes, numbers, dicts of strings, tuples of those) never refers back
    to it, and what streams later sets on it (a relinked parent, a weight, rendered text) is
    of the same kinds, so a view is never part of a cycle. The worker holds every view for the
    decision wait: collections then walked them all (a tenth of its CPU under keep-all)."""
    cdef object obj = PyType_GenericAlloc(<PyTypeObject*>_LAYOUT_OF, 0)
    cdef Py_ssize_t i
    cdef PyObject* v
    for i in range(VIEW_FIELDS):
        v = <PyObject*>values[i]
        Py_INCREF(<object>v)
        (<PyObject**>((<char*><PyObject*>obj) + _OFFSETS[i]))[0] = v
    PyObject_GC_UnTrack(obj)
    return obj


cdef dict _resource(Cursor* outer, Py_ssize_t size, object render_any):
    cdef Cursor c
    cdef uint32_t field
    cdef int wire
    cdef dict attrs = {}
    c = enter(outer, size)
    while c.pos < c.end:
        key(&c, &field, &wire)
        if field == 1:
            expect(wire, 2)
            _key_value(&c, length(&c), attrs, render_any)
        elif field == 2:
            expect(wire, 0)
            varint(&c)
        elif field == 3:
            raise Fallback("entity_refs: the protobuf path checks them")
        else:
            skip(&c, wire)
    return attrs


cdef tuple _scope(Cursor* outer, Py_ssize_t size, object render_any):
    cdef Cursor c
    cdef uint32_t field
    cdef int wire
    cdef str name = "", version = ""
    cdef dict attrs = {}
    c = enter(outer, size)
    while c.pos < c.end:
        key(&c, &field, &wire)
        if field == 1:
            expect(wire, 2)
            name = _text(&c, length(&c))
        elif field == 2:
            expect(wire, 2)
            version = _text(&c, length(&c))
        elif field == 3:
            expect(wire, 2)
            _key_value(&c, length(&c), attrs, render_any)  # checked, not stored
        elif field == 4:
            expect(wire, 0)
            varint(&c)
        else:
            skip(&c, wire)
    return (name, version)


cdef bint _singular(Cursor c, Cursor* found) except -1:
    """First pass over a ResourceSpans or ScopeSpans (``c``, walked as a copy): whether its
    one message in field 1 (the resource, the scope) is there, and ``found`` over it; it may
    follow the repeated field 2 on the wire. Every field's wire type is checked, and field 3
    (schema_url) must be UTF-8."""
    cdef uint32_t field
    cdef int wire
    cdef bint seen = False
    while c.pos < c.end:
        key(&c, &field, &wire)
        if field == 1:
            expect(wire, 2)
            if seen:
                raise Fallback("singular message sent twice (merged by protobuf)")
            seen = True
            found[0] = enter(&c, length(&c))
        elif field == 3:
            expect(wire, 2)
            _text(&c, length(&c))  # schema_url: checked, not stored
        elif field == 2:
            expect(wire, 2)
            c.pos += length(&c)
        else:
            skip(&c, wire)
    return seen


def scan(bytes payload, object new_view, object render_any, str default_tenant,
         str tenant_key, str service_key, bint lazy=False):
    """Views of every span of ``payload`` (a serialized TracesData), or :class:`Fallback`.

    ``new_view`` is the view class, built positionally; ``render_any`` renders one serialized
    AnyValue the way the protobuf path does. Views are in wire order, as the protobuf path
    gives them. ``lazy`` views carry their span's bytes and scope instead of the rendered text
    (attributes, hex ids, events, links), which :func:`render` makes when a view is kept: the
    message is checked just as strictly either way.
    """
    cdef Cursor top, rs, ss, sub
    cdef uint32_t field
    cdef int wire
    cdef list views = []
    cdef dict resource
    cdef str tenant, service
    cdef tuple scope
    cdef int mode = VIEW_LAZY if lazy else VIEW_RENDERED
    top.buf = payload
    top.pos = 0
    top.end = len(payload)
    try:
        while top.pos < top.end:
            key(&top, &field, &wire)
            if field != 1:
                skip(&top, wire)
                continue
            expect(wire, 2)
            rs = enter(&top, length(&top))
            # ResourceSpans: the resource first, wherever it sits.
            if _singular(rs, &sub):
                resource = _resource(&sub, sub.end - sub.pos, render_any)
            else:
                resource = {}
            tenant = resource.get(tenant_key, default_tenant)
            service = resource.get(service_key, "")
            while rs.pos < rs.end:
                key(&rs, &field, &wire)
                if field != 2:
                    skip(&rs, wire)
                    continue
                ss = enter(&rs, length(&rs))
                if _singular(ss, &sub):
                    scope = _scope(&sub, sub.end - sub.pos, render_any)
                else:
                    scope = _NO_SCOPE
                while ss.pos < ss.end:
                    key(&ss, &field, &wire)
                    if field != 2:
                        skip(&ss, wire)
                        continue
                    views.append(_span(&ss, length(&ss), new_view, tenant, service, resource,
                                       scope, render_any, mode))
    except Fallback:
        raise
    except UnicodeDecodeError as exc:
        raise Fallback(f"a string that is not UTF-8: {exc}") from None
    except Exception as exc:  # render_any's DecodeError, a value it refuses: the slow path says
        raise Fallback(f"{type(exc).__name__}: {exc}") from None
    return views


cdef tuple _NO_SCOPE = ("", "")


def render(bytes raw, tuple scope_names, object render_any):
    """The text a lazy view left in its bytes: (attributes, rendered), as the rendering
    pass would have made them. ``raw`` is a span :func:`scan` already checked, so this makes
    what it would have made and cannot refuse."""
    cdef Cursor top
    top.buf = raw
    top.pos = 0
    top.end = len(raw)
    return _span(&top, top.end, None, "", "", None, scope_names, render_any, TEXT_ONLY)

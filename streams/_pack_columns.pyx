# cython: language_level=3, boundscheck=False, wraparound=False
"""Kept span views -> the ``span_batch`` v3 columns, in one compiled walk (ADR 0019).

Why: under keep-all every span is packed, and the Python packer
(:func:`streams.packed_batch._columns` and ``_pack``) was the largest step left in the streams
worker: 14 % of its samples at 50k spans/s (py-spy on the running stack, 2026-12-03). It first
copies each value into a Python list per column (a getter call and a list append per value),
then packs each list into Arrow buffers. Here each value is read once from the view's slot
and its bytes are appended to the column's buffer directly: no per-column lists, no numpy
conversion of the integer columns.

It is an accelerator, never an authority: :mod:`streams.packed_batch` is the reference, runs
wherever this module is not built, and ``tests/unit/test_pack_columns.py`` holds both equal
byte for byte for every message the OTLP strategies make, and equally refusing (an integer
out of its column's width raises OverflowError, text that cannot be UTF-8
UnicodeEncodeError, a value of the wrong type TypeError: the encoder then isolates the span,
``streams/span_batch_messages.py``).
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Next
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE

from core.slots cimport slot_offsets, slot_or_attribute


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL


# Bumped whenever the Python side must change with this file (streams/packed_batch.py).
ABI = 2

# The v3 columns this walk writes, in wire order, with their layout: streams.packed_batch
# uses this module only if it equals schemas.span_batch_v3.LAYOUT, so a column added there
# and not here falls back to the Python packer instead of producing a short message.
COLUMNS = (
    ("tenant_id", "utf8"), ("trace_id", "utf8"), ("span_id", "utf8"),
    ("parent_span_id", "utf8"), ("trace_state", "utf8"), ("name", "utf8"), ("kind", "int32"),
    ("service_name", "utf8"), ("start_time_unix_nano", "int64"),
    ("end_time_unix_nano", "int64"), ("status_code", "int32"), ("status_message", "utf8"),
    ("scope_name", "utf8"), ("scope_version", "utf8"), ("resource_index", "int32"),
    ("resource_attribute_lengths", "int32"), ("resource_attribute_keys", "utf8"),
    ("resource_attribute_values", "utf8"), ("attribute_lengths", "int32"),
    ("attribute_keys", "utf8"), ("attribute_values", "utf8"), ("event_counts", "int32"),
    ("event_time_unix_nano", "int64"), ("event_name", "utf8"),
    ("event_attribute_lengths", "int32"), ("event_attribute_keys", "utf8"),
    ("event_attribute_values", "utf8"), ("link_counts", "int32"), ("link_trace_id", "utf8"),
    ("link_span_id", "utf8"), ("link_trace_state", "utf8"),
    ("link_attribute_lengths", "int32"), ("link_attribute_keys", "utf8"),
    ("link_attribute_values", "utf8"),
)

cdef enum:
    TENANT_ID, TRACE_ID, SPAN_ID, PARENT_SPAN_ID, TRACE_STATE, NAME, KIND, SERVICE_NAME,
    START, END, STATUS_CODE, STATUS_MESSAGE, SCOPE_NAME, SCOPE_VERSION, RESOURCE_INDEX,
    RES_LENGTHS, RES_KEYS, RES_VALUES, ATTR_LENGTHS, ATTR_KEYS, ATTR_VALUES, EVENT_COUNTS,
    EVENT_TIME, EVENT_NAME, EVENT_ATTR_LENGTHS, EVENT_ATTR_KEYS, EVENT_ATTR_VALUES,
    LINK_COUNTS, LINK_TRACE_ID, LINK_SPAN_ID, LINK_TRACE_STATE, LINK_ATTR_LENGTHS,
    LINK_ATTR_KEYS, LINK_ATTR_VALUES, NCOLUMNS

# The view fields read here, by their slot; the order of _VIEW_FIELDS is the V_* numbering.
_VIEW_FIELDS = (
    "tenant_id", "parent_span_id", "trace_state", "name", "kind", "service_name",
    "start_time_unix_nano", "end_time_unix_nano", "status_code", "resource_attributes",
    "attributes", "rendered",
)
cdef enum:
    V_TENANT, V_PARENT, V_TRACE_STATE, V_NAME, V_KIND, V_SERVICE, V_START, V_END, V_STATUS,
    V_RESOURCE, V_ATTRIBUTES, V_RENDERED, NVIEW

cdef Py_ssize_t _OFFSETS[NVIEW]
cdef object _LAYOUT_OF = None

cdef const char* HEX = b"0123456789abcdef"
cdef int64_t MAX_COLUMN_BYTES = 2147483647

# Which columns are text (data plus offsets), read once from COLUMNS.
cdef bint _TEXT[NCOLUMNS]
for _i, (_, _layout) in enumerate(COLUMNS):
    _TEXT[_i] = _layout == "utf8"


def use_layout(cls):
    """Read the views of ``cls`` straight from their slots, if its layout allows (a slots
    class whose fields are plain object members); returns whether it does. Views of any
    other class are read by attribute."""
    global _LAYOUT_OF
    _LAYOUT_OF = cls if slot_offsets(cls, _VIEW_FIELDS, _OFFSETS) else None
    return _LAYOUT_OF is not None


cdef inline object _field(object view, int i, bint direct):
    return slot_or_attribute(view, _OFFSETS[i], direct, _VIEW_FIELDS[i])


cdef struct Buf:
    char* data
    Py_ssize_t size
    Py_ssize_t cap


cdef int _reserve(Buf* b, Py_ssize_t n) except -1:
    cdef Py_ssize_t cap = b.cap * 2 if b.cap else 4096
    cdef char* grown
    while cap < b.size + n:
        cap *= 2
    grown = <char*>realloc(b.data, cap)
    if grown == NULL:
        raise MemoryError()
    b.data = grown
    b.cap = cap
    return 0


cdef inline int _put(Buf* b, const void* src, Py_ssize_t n) except -1:
    if b.size + n > b.cap:
        _reserve(b, n)
    memcpy(b.data + b.size, src, n)
    b.size += n
    return 0


cdef class _Columns:
    """Every column's buffer (and a utf8 column's offsets) while one message is packed;
    freed with the object, also when packing raises halfway.

    Also an open message that kept spans are packed into as they are decided
    (:class:`streams.kept_packer.KeptPacker`, ADR 0021): :meth:`append` adds a list of views
    all or nothing, :meth:`undo` takes the last append back, :meth:`frame` writes the message.
    Buffers only ever grow at their end, so taking spans back is restoring sizes."""

    cdef Buf data[NCOLUMNS]
    cdef Buf offsets[NCOLUMNS]
    cdef Py_ssize_t spans
    # Sizes before the last append (undo restores them).
    cdef Py_ssize_t mark_data[NCOLUMNS]
    cdef Py_ssize_t mark_offsets[NCOLUMNS]
    cdef Py_ssize_t mark_spans

    def __cinit__(self):
        cdef int32_t zero = 0
        cdef int i
        self.spans = 0
        for i in range(NCOLUMNS):
            self.data[i].data = NULL
            self.data[i].size = self.data[i].cap = 0
            self.offsets[i].data = NULL
            self.offsets[i].size = self.offsets[i].cap = 0
            if _TEXT[i]:
                _put(&self.offsets[i], &zero, 4)
        self._mark()

    def __dealloc__(self):
        cdef int i
        for i in range(NCOLUMNS):
            free(self.data[i].data)
            free(self.offsets[i].data)

    cdef int text(self, int col, object value) except -1:
        """A str, as UTF-8, and its end offset."""
        cdef Py_ssize_t size
        cdef const char* utf8
        cdef int32_t end
        if not isinstance(value, str):
            raise TypeError(f"utf8 column: {type(value).__name__} is not str")
        utf8 = PyUnicode_AsUTF8AndSize(value, &size)
        if self.data[col].size + size > MAX_COLUMN_BYTES:
            raise OverflowError("span_batch v3: a string column exceeds 2 GiB")
        _put(&self.data[col], utf8, size)
        end = <int32_t>self.data[col].size
        _put(&self.offsets[col], &end, 4)
        return 0

    cdef int hex(self, int col, object value) except -1:
        """Bytes as lower-case hex text (what ``bytes.hex`` gives)."""
        cdef const uint8_t* raw
        cdef Py_ssize_t n, i
        cdef Buf* b = &self.data[col]
        cdef int32_t end
        if not isinstance(value, bytes):
            value = bytes(memoryview(value))
        raw = <const uint8_t*>PyBytes_AS_STRING(value)
        n = PyBytes_GET_SIZE(value)
        if b.size + 2 * n > MAX_COLUMN_BYTES:
            raise OverflowError("span_batch v3: a string column exceeds 2 GiB")
        if b.size + 2 * n > b.cap:
            _reserve(b, 2 * n)
        for i in range(n):
            b.data[b.size + 2 * i] = HEX[raw[i] >> 4]
            b.data[b.size + 2 * i + 1] = HEX[raw[i] & 15]
        b.size += 2 * n
        end = <int32_t>b.size
        _put(&self.offsets[col], &end, 4)
        return 0

    cdef inline int int32(self, int col, object value) except -1:
        cdef int32_t v = value  # OverflowError outside int32, as numpy raises
        _put(&self.data[col], &v, 4)
        return 0

    cdef inline int count(self, int col, Py_ssize_t n) except -1:
        cdef int32_t v
        if n > 2147483647:
            raise OverflowError("span_batch v3: a count exceeds int32")
        v = <int32_t>n
        _put(&self.data[col], &v, 4)
        return 0

    cdef inline int int64(self, int col, object value) except -1:
        cdef int64_t v = value
        _put(&self.data[col], &v, 8)
        return 0

    cdef int map(self, int lengths, int keys, int values, object m) except -1:
        """A text map: its length, then its keys and values in its order."""
        cdef Py_ssize_t pos = 0
        cdef PyObject* k
        cdef PyObject* v
        if type(m) is not dict:
            self.count(lengths, len(m))
            for key, value in m.items():
                self.text(keys, key)
                self.text(values, value)
            return 0
        self.count(lengths, len(<dict>m))
        while PyDict_Next(m, &pos, &k, &v):
            self.text(keys, <object>k)
            self.text(values, <object>v)
        return 0

    cdef void _mark(self):
        cdef int i
        for i in range(NCOLUMNS):
            self.mark_data[i] = self.data[i].size
            self.mark_offsets[i] = self.offsets[i].size
        self.mark_spans = self.spans

    def undo(self):
        """Take back the spans of the last :meth:`append` (nothing after an undo or a failed
        append)."""
        cdef int i
        for i in range(NCOLUMNS):
            self.data[i].size = self.mark_data[i]
            self.offsets[i].size = self.mark_offsets[i]
        self.spans = self.mark_spans

    def append(self, list views, object rendered, object attributes_of):
        """Pack ``views`` after the spans already in, all or nothing: whatever a view makes
        the walk raise, the batch is left as it was and the error goes to the caller."""
        self._mark()
        try:
            _append(self, views, rendered, attributes_of)
        except BaseException:
            self.undo()
            raise
        self.spans += len(views)

    def __len__(self):
        return self.spans

    def framed_size(self, bytes header):
        """The length :meth:`frame` would give, without writing it."""
        return _framed_size(self, header)

    def frame(self, bytes header):
        """The framed Avro ``span_batch`` v3 message of the spans in (see :func:`encode`)."""
        return _frame(self, header)

    cdef dict record(self):
        cdef dict out = {"span_count": self.spans}
        cdef int i
        for i in range(NCOLUMNS):
            name = COLUMNS[i][0]
            out[name] = PyBytes_FromStringAndSize(self.data[i].data, self.data[i].size)
            if _TEXT[i]:
                out[name + "_offsets"] = PyBytes_FromStringAndSize(
                    self.offsets[i].data, self.offsets[i].size
                )
        return out


def pack(list views, object rendered, object attributes_of):
    """The v3 record of ``views`` (rendered or protobuf views; lazy ones must have been
    materialized), as :func:`streams.packed_batch.pack_views` makes it. ``rendered`` and
    ``attributes_of`` are :mod:`streams.span_views`' own, for views that have neither yet."""
    return _walk(views, rendered, attributes_of).record()


def encode(list views, object rendered, object attributes_of, bytes header):
    """:func:`pack`'s record as the framed Avro message ``avro_codec.encode`` makes of it
    (``header``, then the record's Avro binary body), without the record: each column's
    buffer is copied once, into the message. In Avro's binary encoding a record is its fields
    in schema order, a ``long`` a zig-zag varint and ``bytes`` a long length and the bytes;
    the v3 schema is a ``long`` then ``bytes`` fields in :data:`COLUMNS` order, each utf8
    column followed by its offsets (``schemas.span_batch_v3.wire_fields``)."""
    return _frame(_walk(views, rendered, attributes_of), header)


def open_batch():
    """An empty batch to :meth:`_Columns.append` views to as they come."""
    return _Columns()


cdef Py_ssize_t _framed_size(_Columns c, bytes header):
    cdef Py_ssize_t total = len(header) + _varint_size(c.spans), i
    for i in range(NCOLUMNS):
        total += _varint_size(c.data[i].size) + c.data[i].size
        if _TEXT[i]:
            total += _varint_size(c.offsets[i].size) + c.offsets[i].size
    return total


cdef bytes _frame(_Columns c, bytes header):
    cdef Py_ssize_t total = _framed_size(c, header), i
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* at = PyBytes_AS_STRING(out)
    memcpy(at, PyBytes_AS_STRING(header), len(header))
    at += len(header)
    at = _write_long(at, c.spans)
    for i in range(NCOLUMNS):
        at = _write_bytes(at, &c.data[i])
        if _TEXT[i]:
            at = _write_bytes(at, &c.offsets[i])
    assert at == PyBytes_AS_STRING(out) + total
    return out


cdef inline Py_ssize_t _varint_size(int64_t n):
    cdef uint64_t z = (<uint64_t>n << 1) ^ <uint64_t>(n >> 63)
    cdef Py_ssize_t size = 1
    while z >= 0x80:
        z >>= 7
        size += 1
    return size


cdef inline char* _write_long(char* at, int64_t n):
    cdef uint64_t z = (<uint64_t>n << 1) ^ <uint64_t>(n >> 63)
    while z >= 0x80:
        at[0] = <char>((z & 0x7F) | 0x80)
        at += 1
        z >>= 7
    at[0] = <char>z
    return at + 1


cdef inline char* _write_bytes(char* at, Buf* b):
    at = _write_long(at, b.size)
    if b.size:
        memcpy(at, b.data, b.size)
    return at + b.size


cdef _Columns _walk(list views, object rendered, object attributes_of):
    cdef _Columns c = _Columns()
    _append(c, views, rendered, attributes_of)
    c.spans = len(views)
    return c


cdef int _append(_Columns c, list views, object rendered, object attributes_of) except -1:
    cdef Py_ssize_t n = len(views), i, slot
    cdef object view, text, attrs, resource, last_resource = None
    cdef Py_ssize_t last_slot = -1
    cdef dict slots = {}
    cdef bint direct
    cdef tuple t
    for i in range(n):
        view = views[i]
        direct = _LAYOUT_OF is not None and type(view) is _LAYOUT_OF
        text = _field(view, V_RENDERED, direct)
        if text is None:
            text = rendered(view)
        if type(text) is not tuple or PyTuple_GET_SIZE(text) != 8:
            raise TypeError("a view's rendered text is not an 8-tuple")
        t = <tuple>text
        c.text(TENANT_ID, _field(view, V_TENANT, direct))
        c.text(TRACE_ID, <object>PyTuple_GET_ITEM(t, 0))
        c.text(SPAN_ID, <object>PyTuple_GET_ITEM(t, 1))
        # From the view, not the rendered text: a parent may have been re-linked since.
        c.hex(PARENT_SPAN_ID, _field(view, V_PARENT, direct))
        c.text(TRACE_STATE, _field(view, V_TRACE_STATE, direct))
        c.text(NAME, _field(view, V_NAME, direct))
        c.int32(KIND, _field(view, V_KIND, direct))
        c.text(SERVICE_NAME, _field(view, V_SERVICE, direct))
        c.int64(START, _field(view, V_START, direct))
        c.int64(END, _field(view, V_END, direct))
        c.int32(STATUS_CODE, _field(view, V_STATUS, direct))
        c.text(STATUS_MESSAGE, <object>PyTuple_GET_ITEM(t, 2))
        c.text(SCOPE_NAME, <object>PyTuple_GET_ITEM(t, 3))
        c.text(SCOPE_VERSION, <object>PyTuple_GET_ITEM(t, 4))
        # Views of one ResourceSpans share one attribute dict: each resource goes once.
        resource = _field(view, V_RESOURCE, direct)
        if resource is not last_resource:
            found = slots.get(id(resource))
            if found is None:
                slot = c.data[RES_LENGTHS].size // 4
                slots[id(resource)] = slot
                c.map(RES_LENGTHS, RES_KEYS, RES_VALUES, resource)
            else:
                slot = found
            last_resource, last_slot = resource, slot
        c.count(RESOURCE_INDEX, last_slot)
        attrs = _field(view, V_ATTRIBUTES, direct)
        if attrs is None:
            attrs = attributes_of(view)
        c.map(ATTR_LENGTHS, ATTR_KEYS, ATTR_VALUES, attrs)
        events = <object>PyTuple_GET_ITEM(t, 6)
        c.count(EVENT_COUNTS, len(events))
        for time_unix_nano, name, event_attrs in events:
            c.int64(EVENT_TIME, time_unix_nano)
            c.text(EVENT_NAME, name)
            c.map(EVENT_ATTR_LENGTHS, EVENT_ATTR_KEYS, EVENT_ATTR_VALUES, event_attrs)
        links = <object>PyTuple_GET_ITEM(t, 7)
        c.count(LINK_COUNTS, len(links))
        for trace_id, span_id, trace_state, link_attrs in links:
            c.text(LINK_TRACE_ID, trace_id)
            c.text(LINK_SPAN_ID, span_id)
            c.text(LINK_TRACE_STATE, trace_state)
            c.map(LINK_ATTR_LENGTHS, LINK_ATTR_KEYS, LINK_ATTR_VALUES, link_attrs)
    return 0

# cython: language_level=3
"""Where a slots class keeps a field, for the compiled modules that read or write span views'
slots directly (``streams/_otlp_scan.pyx`` builds views, ``streams/_pack_columns.pyx`` packs
them).

A ``__slots__`` field lives at a fixed offset inside the object, which its member descriptor
records; reading or writing there is what the descriptor does, minus the call. Only a plain
object slot qualifies (``T_OBJECT_EX``: unset reads raise AttributeError). Inline, so each
module compiles its own copy.
"""


from cpython.object cimport PyObject


cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    int T_OBJECT_EX


cdef inline Py_ssize_t slot_offset(object cls, str name) except -2:
    """The byte offset of field ``name`` in instances of ``cls``, or -1 when it is not a plain
    object slot declared on ``cls`` itself."""
    import types
    descr = cls.__dict__.get(name)
    if type(descr) is not types.MemberDescriptorType:
        return -1
    if (<PyMemberDescrObject*>descr).d_member.type != T_OBJECT_EX:
        return -1
    return (<PyMemberDescrObject*>descr).d_member.offset


cdef inline bint slot_offsets(object cls, object names, Py_ssize_t* out) except -1:
    """:func:`slot_offset` of each of ``names`` into ``out``, in order; False (``out`` partly
    written) as soon as one is not a plain object slot."""
    cdef Py_ssize_t i = 0, offset
    for name in names:
        offset = slot_offset(cls, name)
        if offset < 0:
            return False
        out[i] = offset
        i += 1
    return True


cdef inline object slot_or_attribute(object obj, Py_ssize_t offset, bint direct, str name):
    """Field ``name`` of ``obj``: from its slot at ``offset`` when ``direct`` (``obj`` is of the
    class the offsets were taken from) and the slot is set, else by attribute (which raises
    AttributeError for an unset slot, as the descriptor would)."""
    cdef PyObject* value
    if direct:
        value = (<PyObject**>((<char*><PyObject*>obj) + offset))[0]
        if value != NULL:
            return <object>value
    return getattr(obj, name)

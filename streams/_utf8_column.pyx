# cython: language_level=3, boundscheck=False, wraparound=False
"""A list of str -> one Arrow utf8 column (data, int32 offsets), in one compiled loop.

Why: packing kept spans writes 24 string columns per message, and joining, encoding and
measuring them in Python was a tenth of a keep-all streams worker (py-spy on the running stack,
docs/perf.md). Here each string's UTF-8 is read where CPython already keeps it (an ASCII
string's own buffer), summed, and copied once. :func:`streams.packed_batch._utf8` is the
reference it is tested against, and what runs where this module is not built.
"""

from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL

ABI = 1


def utf8_column(list values):
    """(UTF-8 data, little-endian int32 offsets) of ``values``; OverflowError past 2 GiB, and
    UnicodeEncodeError for a lone surrogate, as ``str.encode`` raises."""
    cdef Py_ssize_t n = PyList_GET_SIZE(values), i, size
    cdef int64_t total = 0
    cdef const char* text
    cdef object item
    cdef bytes offsets = PyBytes_FromStringAndSize(NULL, 4 * (n + 1))
    cdef int32_t* off = <int32_t*>PyBytes_AS_STRING(offsets)
    off[0] = 0
    for i in range(n):
        item = <object>PyList_GET_ITEM(values, i)
        if not isinstance(item, str):
            raise TypeError(f"utf8 column: {type(item).__name__} is not str")
        PyUnicode_AsUTF8AndSize(item, &size)
        total += size
        if total > 2147483647:
            raise OverflowError("span_batch v3: a string column exceeds 2 GiB")
        off[i + 1] = <int32_t>total
    cdef bytes data = PyBytes_FromStringAndSize(NULL, total)
    cdef char* out = PyBytes_AS_STRING(data)
    cdef int64_t at = 0
    for i in range(n):
        text = PyUnicode_AsUTF8AndSize(<object>PyList_GET_ITEM(values, i), &size)
        memcpy(out + at, text, size)
        at += size
    return data, offsets

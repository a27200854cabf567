# cython: language_level=3, boundscheck=False, wraparound=False
"""Kafka's murmur2, compiled (``core/partitioning.py`` holds the reference).

Why: every trace id is hashed once by ingest (which partition gets it) and a sample of them
again by streams (whether producers routed them as ingest would), and random trace ids miss
any cache. In Python the 16-byte hash cost ~3.5 µs, 1.4 % of the streams worker's samples
keep-all at 50k spans/s (py-spy, 2026-12-03); here it is a few nanoseconds.
``tests/unit/test_partitioning.py`` holds the two equal on any bytes.
"""

from libc.stdint cimport uint32_t
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE


def murmur2(bytes key not None):
    """Kafka's murmur2 of ``key`` as an unsigned 32-bit value (the reference's result)."""
    cdef const unsigned char* data = <const unsigned char*>PyBytes_AS_STRING(key)
    cdef Py_ssize_t length = PyBytes_GET_SIZE(key), i, whole = length & ~3
    cdef uint32_t m = 0x5BD1E995
    cdef uint32_t h = <uint32_t>0x9747B28C ^ <uint32_t>length
    cdef uint32_t k
    for i in range(0, whole, 4):
        k = (<uint32_t>data[i] | (<uint32_t>data[i + 1] << 8) | (<uint32_t>data[i + 2] << 16)
             | (<uint32_t>data[i + 3] << 24))
        k *= m
        k ^= k >> 24
        k *= m
        h = (h * m) ^ k
    cdef Py_ssize_t extra = length & 3
    if extra == 3:
        h ^= <uint32_t>data[whole + 2] << 16
    if extra >= 2:
        h ^= <uint32_t>data[whole + 1] << 8
    if extra >= 1:
        h ^= data[whole]
        h *= m
    h ^= h >> 13
    h *= m
    h ^= h >> 15
    return h

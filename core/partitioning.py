"""Trace-id -> partition mapping identical to Kafka's default (Java) partitioner.

Every span of a trace must reach the same partition whether it came through ingest or was
published straight to Kafka by a Collector keyed by trace id. Kafka's default partitioner hashes
the key with murmur2 and takes ``toPositive(hash) % partitions``; we do the same on the 16 raw
trace-id bytes so both paths agree (librdkafka calls this partitioner ``murmur2_random``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import cast

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes | bytearray) -> int:
    """Kafka's murmur2 as an unsigned 32-bit value (compiled where built: :data:`_FAST`)."""
    if _FAST is not None and type(data) is bytes:
        return _FAST(data)  # bytes only: anything else is hashed by the reference
    return murmur2_reference(data)


def murmur2_reference(data: bytes | bytearray) -> int:
    """Kafka's murmur2 in Python: the reference ``core/_murmur2.pyx`` is tested against, and
    the hash wherever that is not built."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length & ~3
    for i in range(0, whole, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra == 3:
        h ^= data[whole + 2] << 16
    if extra >= 2:
        h ^= data[whole + 1] << 8
    if extra >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def _load_fast() -> Callable[[bytes], int] | None:
    try:
        from core import _murmur2  # type: ignore[attr-defined]
    except ImportError:
        return None
    return cast(Callable[[bytes], int], _murmur2.murmur2)


_FAST = _load_fast()


def murmur2_signed(data: bytes) -> int:
    """The value Java's ``Utils.murmur2`` returns (a signed int), for cross-checking."""
    h = murmur2(data)
    return h - (1 << 32) if h & 0x80000000 else h


@lru_cache(maxsize=65536)
def partition_for_key(key: bytes, partitions: int) -> int:
    """Kafka's ``toPositive(murmur2(key)) % partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# --- Collector compatibility --------------------------------------------------------------
# The OTel Collector's Kafka exporter (franz-go since it dropped Sarama) partitions keyed
# records with ``StickyKeyPartitioner(SaramaCompatHasher(fnv1a32))`` and, with
# ``partition_traces_by_id``, keys each single-trace message with the trace id as a 32-char
# lowercase *hex string*. Neither the hash nor the key bytes match Kafka's default, and the
# exporter has no option to change its partitioner, so when Collectors publish straight to
# ``otlp_spans`` ingest must adopt their mapping instead (``ingest_partitioner=collector``).

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a32(data: bytes) -> int:
    """32-bit FNV-1a, the hash Sarama (and so the Collector) uses for keyed messages."""
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


def sarama_partition(key: bytes, partitions: int) -> int:
    """Sarama's reduction: ``abs(int32(hash) % n)`` with Go's truncating remainder."""
    h = fnv1a32(key)
    signed = h - (1 << 32) if h & 0x80000000 else h
    return abs(signed) % partitions


@lru_cache(maxsize=65536)
def collector_partition_for_trace(trace_id: bytes, partitions: int) -> int:
    """Partition the Collector's Kafka exporter picks for a trace (key = hex trace id)."""
    return sarama_partition(trace_id.hex().encode(), partitions)


def murmur2_partition_for_trace(trace_id: bytes, partitions: int) -> int:
    """Kafka's default partitioner on the 16 raw trace-id bytes (librdkafka murmur2_random)."""
    return partition_for_key(trace_id, partitions)


def collector_murmur2_partition_for_trace(trace_id: bytes, partitions: int) -> int:
    """The Collector's Kafka exporter with ``record_partitioner`` ``sticky_key`` and the
    ``murmur2`` hasher: Kafka's murmur2 on the *hex* trace-id key (not the raw bytes)."""
    return partition_for_key(trace_id.hex().encode(), partitions)


PARTITIONERS: dict[str, Callable[[bytes, int], int]] = {
    "murmur2": murmur2_partition_for_trace,
    "collector": collector_partition_for_trace,
    "collector_murmur2": collector_murmur2_partition_for_trace,
}
# Partitioners whose producers key messages with the hex trace id (the Collector's exporter).
HEX_KEYED = frozenset({"collector", "collector_murmur2"})


def message_key(trace_id: bytes, partitioner: str) -> bytes:
    """The Kafka key ingest writes, shaped like the key of the producers it must agree with."""
    return trace_id.hex().encode() if partitioner in HEX_KEYED else trace_id

"""Trace-id hashing for probabilistic sampling, shared by every component that samples.

Ingest (head sampling) and the streams tail sampler must agree on which trace ids fall inside a
percentage, otherwise a trace kept at the edge could be dropped later (or the reverse). Both
import this module: the decision depends only on the 16 trace-id bytes and a salt, never on the
process, the partition or the time.
"""

from __future__ import annotations

import hashlib

_SPACE = 1 << 64


def trace_id_hash(trace_id: bytes, salt: str = "") -> int:
    """A stable, well-mixed unsigned 64-bit hash of the trace id (blake2b, keyed by the salt)."""
    key = salt.encode()[:64]
    return int.from_bytes(hashlib.blake2b(trace_id, digest_size=8, key=key).digest(), "big")


def in_sample(trace_id: bytes, percentage: float, salt: str = "") -> bool:
    """True when the trace id falls in the lowest ``percentage`` % of the hash space."""
    if percentage >= 100:
        return True
    if percentage <= 0:
        return False
    return trace_id_hash(trace_id, salt) < int(_SPACE * percentage / 100)

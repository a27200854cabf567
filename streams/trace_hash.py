"""Trace-id hashing for probabilistic sampling, shared by every component that samples.

Ingest (head sampling) and the streams tail sampler must agree on which trace ids fall inside a
percentage, otherwise a trace kept at the edge could be dropped later (or the reverse). Without
a salt the decision is the OTel consistent-probability rule ingest uses (randomness = the low
56 bits of the trace id, keep iff it reaches the ratio's threshold), so a tail policy at p% keeps
exactly the traces an ingest node at p% would keep, and a stricter one keeps a subset. With a
``hash_salt`` (the OTel tail_sampling option) the decision is deliberately independent: a keyed
blake2b of the trace id.
"""

from __future__ import annotations

import hashlib

from core.consistent_sampling import randomness, ratio_threshold

_SPACE = 1 << 64


def trace_id_hash(trace_id: bytes, salt: str = "") -> int:
    """A stable, well-mixed unsigned 64-bit hash of the trace id (blake2b, keyed by the salt)."""
    key = salt.encode()[:64]
    return int.from_bytes(hashlib.blake2b(trace_id, digest_size=8, key=key).digest(), "big")


def in_sample(trace_id: bytes, percentage: float, salt: str = "") -> bool:
    """True when the trace id falls inside ``percentage`` % of traces (see module doc)."""
    if percentage >= 100:
        return True
    if percentage <= 0:
        return False
    if salt:
        return trace_id_hash(trace_id, salt) < int(_SPACE * percentage / 100)
    return randomness(trace_id, {}) >= ratio_threshold(percentage / 100)

"""Garbage-collector settings for the streams worker's allocation pattern.

The worker allocates a dict per span (plus a service-graph half) and keeps them alive for
``decision_wait`` and the graph wait: ~4 GC-tracked objects per span, several hundred thousand
live at 25k spans/s. CPython counts a young generation as allocations minus deallocations, so
while that buffer fills, every ``GEN0_THRESHOLD`` new live objects trigger a young collection
that walks all of them, and every 20th also walks the older generation.

Measured on this 2-core machine with the load generator's traces at 25k spans/s per worker
(5 s decision wait, ~600k spans, ``bench/streams_gc.py``; figures in docs/perf.md): CPython's
default (700) spends 2.0 s of 7.0 in GC, 50k 0.9 s of 5.9 (45 young and 2 older
collections), 200k 0.2 s of 5.3 (4 young collections, each a ~50 ms pause): 1.33x the
default's spans/s and 1.12x the previous 50k. Reference cycles are rare here (plain dicts,
lists and slotted records), so collecting less often costs little memory, and the older
generations still run so cyclic garbage is reclaimed.

Since then the two most numerous of those objects are not tracked at all: the compiled pass
leaves its span views out of the collector and the compiled graph's halves are ``no_gc`` (both
can never be in a cycle). ``bench/streams_gc.py --policy keep-all``: 0.15-0.19 s of GC per
run against 0.06-0.07 s, ~5 % of the worker's path.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 200_000


def tune_gc() -> None:
    gc.set_threshold(GEN0_THRESHOLD, 20, 20)

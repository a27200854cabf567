"""Build the ``pipeline_counters`` record (``CounterBatch``, topic pipeline.accounting).

Every component that publishes counter deltas builds the record here, so the identity that
makes a republished batch collapse in ``pipeline_counters`` (component, instance, seq, and the
day of the time) is written the same way by all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def counter_batch(
    component: str,
    instance: str,
    seq: int,
    time_unix_nano: int,
    counts: Mapping[tuple[str, str], int],
) -> dict[str, Any]:
    """The record for ``counts`` ((name, reason) -> delta; zero deltas left out)."""
    return {
        "component": component,
        "instance": instance,
        "seq": seq,
        "time_unix_nano": time_unix_nano,
        "counters": [
            {"tenant_id": "", "name": name, "reason": reason, "value": value}
            for (name, reason), value in sorted(counts.items())
            if value
        ],
    }

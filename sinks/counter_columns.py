"""Avro pipeline-accounting batches -> rows and the Arrow table of ``pipeline_counters``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

_NS = pa.timestamp("ns")


def counter_rows(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """A decoded ``CounterBatch`` -> one row per counter delta, carrying the batch identity."""
    head = {
        "component": batch["component"],
        "instance": batch["instance"],
        "seq": batch["seq"],
        "time": batch["time_unix_nano"],
    }
    return [{**head, **c} for c in batch["counters"]]


def pipeline_counters_arrow(rows: Sequence[dict[str, Any]]) -> pa.Table:
    def col(key: str) -> list[Any]:
        return [r[key] for r in rows]

    return pa.table(
        {
            "TimeUnix": pa.array(col("time"), pa.int64()).cast(_NS),
            "Component": pa.array(col("component"), pa.string()),
            "Instance": pa.array(col("instance"), pa.string()),
            "Seq": pa.array(col("seq"), pa.int64()),
            "TenantId": pa.array(col("tenant_id"), pa.string()),
            "Name": pa.array(col("name"), pa.string()),
            "Reason": pa.array(col("reason"), pa.string()),
            "Value": pa.array(col("value"), pa.int64()),
        }
    )

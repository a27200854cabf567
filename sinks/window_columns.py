"""Avro RED and service-graph window batches -> rows and Arrow tables.

Both topics carry per-window series with a latency histogram over ``bucket_bounds_ms``. A
series whose histogram does not fit its bounds would corrupt every quantile summed over it,
so such a record is rejected as a whole (it goes to the DLQ) rather than stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from sinks.otel_names import SPAN_KIND_NAMES, STATUS_CODE_NAMES, enum_name

_NS = pa.timestamp("ns")


class InvalidRecord(ValueError):
    """A record that decodes but breaks the contract; stored nowhere, sent to the DLQ."""


def check_histogram(bounds: Sequence[float], counts: Sequence[int], what: str) -> None:
    if len(counts) != len(bounds) + 1:
        raise InvalidRecord(
            f"{what}: {len(counts)} bucket counts for {len(bounds)} bounds (want bounds + 1)"
        )
    if any(b >= a for a, b in zip(bounds[1:], bounds, strict=False)):
        raise InvalidRecord(f"{what}: bucket bounds not strictly increasing")
    if any(c < 0 for c in counts):
        raise InvalidRecord(f"{what}: negative bucket count")


def check_totals(item: dict[str, Any], what: str) -> None:
    for name in ("calls", "errors", "duration_sum_ns", "duration_max_ns"):
        if item[name] < 0:
            raise InvalidRecord(f"{what}: negative {name}")


def _window(batch: dict[str, Any]) -> tuple[int, int, str, list[float]]:
    start, end = batch["window_start_unix_nano"], batch["window_end_unix_nano"]
    if end < start:
        raise InvalidRecord("window ends before it starts")
    return start, end, batch["source"], list(batch["bucket_bounds_ms"])


def red_rows(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """A decoded ``RedBatch`` -> one validated row per series (window fields copied in)."""
    start, end, source, bounds = _window(batch)
    rows = []
    for s in batch["series"]:
        what = f"series {s['service_name']}/{s['span_name']}"
        check_histogram(bounds, s["bucket_counts"], what)
        check_totals(s, what)
        rows.append({**s, "start": start, "end": end, "source": source, "bounds": bounds})
    return rows


def edge_rows(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """A decoded ``EdgeBatch`` -> one validated row per edge."""
    start, end, source, bounds = _window(batch)
    rows = []
    for e in batch["edges"]:
        check_histogram(
            bounds, e["bucket_counts"], f"edge {e['client_service']}->{e['server_service']}"
        )
        rows.append({**e, "start": start, "end": end, "source": source, "bounds": bounds})
    return rows


def _col(rows: Sequence[dict[str, Any]], key: str) -> list[Any]:
    return [r[key] for r in rows]


def _histogram_columns(rows: Sequence[dict[str, Any]]) -> dict[str, pa.Array]:
    return {
        "Calls": pa.array(_col(rows, "calls"), pa.uint64()),
        "Errors": pa.array(_col(rows, "errors"), pa.uint64()),
        "DurationSumNs": pa.array(_col(rows, "duration_sum_ns"), pa.uint64()),
        "DurationMaxNs": pa.array(_col(rows, "duration_max_ns"), pa.uint64()),
        "BucketBoundsMs": pa.array(_col(rows, "bounds"), pa.list_(pa.float64())),
        "BucketCounts": pa.array(_col(rows, "bucket_counts"), pa.list_(pa.uint64())),
        "Source": pa.array(_col(rows, "source"), pa.string()),
    }


def red_metrics_arrow(rows: Sequence[dict[str, Any]]) -> pa.Table:
    columns = {
        "TimeUnix": pa.array(_col(rows, "start"), pa.int64()).cast(_NS),
        "WindowEnd": pa.array(_col(rows, "end"), pa.int64()).cast(_NS),
        "TenantId": pa.array(_col(rows, "tenant_id"), pa.string()),
        "ServiceName": pa.array(_col(rows, "service_name"), pa.string()),
        "SpanName": pa.array(_col(rows, "span_name"), pa.string()),
        "SpanKind": pa.array([enum_name(SPAN_KIND_NAMES, r["span_kind"]) for r in rows]),
        "StatusCode": pa.array([enum_name(STATUS_CODE_NAMES, r["status_code"]) for r in rows]),
        "Overflow": pa.array(_col(rows, "overflow"), pa.bool_()),
        **_histogram_columns(rows),
    }
    return pa.table(columns)


def service_graph_arrow(rows: Sequence[dict[str, Any]]) -> pa.Table:
    columns = {
        "TimeUnix": pa.array(_col(rows, "start"), pa.int64()).cast(_NS),
        "WindowEnd": pa.array(_col(rows, "end"), pa.int64()).cast(_NS),
        "TenantId": pa.array(_col(rows, "tenant_id"), pa.string()),
        "ClientService": pa.array(_col(rows, "client_service"), pa.string()),
        "ServerService": pa.array(_col(rows, "server_service"), pa.string()),
        "ConnectionType": pa.array(_col(rows, "connection_type"), pa.string()),
        **_histogram_columns(rows),
    }
    return pa.table(columns)

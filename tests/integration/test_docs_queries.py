"""Every query of docs/queries.md, read from the file, against data stored by the writers.

The expected answers are computed independently in Python from the same input records, so a
query that drifts from the schema or computes the wrong thing fails here.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.clickhouse import connect
from core.settings import Settings
from schemas import avro_codec
from sinks.clickhouse_store import INSERT_SETTINGS
from sinks.decoding import decode_message
from sinks.writers import WRITERS
from tests.integration.sink_data import (
    BOUNDS_MS,
    T0,
    counter_batch,
    edge_batch,
    red_batch,
    span_batch,
)
from tracehouse.span_tables import span_message

DOC = Path(__file__).resolve().parents[2] / "docs" / "queries.md"
HOUR = {"start": "2025-11-24 16:00:00.000", "end": "2025-11-24 17:00:00.000"}
WINDOWS = (0, 10, 50, 70, 100)  # minutes after T0: two hours of RED data


def doc_queries() -> dict[str, str]:
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S)
    out = {}
    for block in blocks:
        name = re.match(r"-- query: (\w+)\n", block)
        assert name, f"every SQL block in {DOC.name} needs a '-- query: name' first line"
        out[name.group(1)] = block
    return out


def histogram_quantile(q: float, bounds: list[float], counts: list[int], max_ms: float) -> float:
    """Reference implementation of the documented estimate (independent of the SQL UDF)."""
    total = sum(counts)
    if total == 0:
        return math.nan
    rank, cum = q * total, 0
    for i, c in enumerate(counts):
        if cum + c >= rank:
            lower = bounds[i - 1] if i else 0.0
            upper = min(bounds[i], max_ms) if i < len(bounds) else max_ms
            return lower + max(0.0, upper - lower) * (rank - cum) / c
        cum += c
    raise AssertionError("unreachable")


def _insert(client: Any, stream: str, records: list[dict[str, Any]]) -> list[Any]:
    """Insert the fixture records as the sink would; returns their rows (spans: the span
    fixtures themselves, which the queries' expectations are computed from)."""
    writer = WRITERS[stream]
    if stream == "spans":
        # Spans take the pipeline's path: OTLP -> streams' encoder -> the sink's decoder.
        rows = [row for rec in records for row in rec["spans"]]
        decoded = decode_message(stream, span_message(rows))
        assert decoded.table is not None, decoded
        client.insert_arrow(writer.table, decoded.table, settings=INSERT_SETTINGS)
        return rows
    # Through Avro and back, as the sink sees them (fills the schema's defaults).
    assert writer.rows is not None and writer.arrow is not None
    decoded_records = [
        avro_codec.decode(writer.avro_schema, avro_codec.encode(writer.avro_schema, rec))
        for rec in records
    ]
    window_rows = [row for rec in decoded_records for row in writer.rows(rec)]
    client.insert_arrow(writer.table, writer.arrow(window_rows))
    return window_rows


def with_deployments(batch: dict[str, Any]) -> dict[str, Any]:
    """The fixture spans with a version and an environment per trace, as SDKs report them."""
    for row in batch["spans"]:
        trace = int(row["trace_id"], 16)
        row["resource_attributes"] = {
            **row["resource_attributes"],
            "service.version": f"1.{trace % 3}",
            "deployment.environment": ("prod", "staging")[trace % 2],
        }
    return batch


@pytest.fixture
def loaded(pipeline_settings: Settings) -> tuple[Any, dict[str, list[Any]]]:
    client = connect(pipeline_settings.clickhouse_url, pipeline_settings.clickhouse_database)
    data = {
        "spans": _insert(client, "spans", [with_deployments(span_batch(0, 40, 5))]),
        "red": _insert(client, "red", [red_batch(w, f"otlp_spans/{w % 2}") for w in WINDOWS]),
        "edges": _insert(client, "edges", [edge_batch(w) for w in range(4)]),
    }
    return client, data


def test_every_documented_query_is_tested() -> None:
    assert set(doc_queries()) == {
        "find_trace",
        "slowest_operations",
        "error_rate_by_service",
        "latency_quantiles",
        "p99_over_time",
        "top_attributes",
        "error_hot_spots",
        "p99_by_version",
        "traces_through_pair",
        "attribute_cardinality",
        "service_graph",
        "pipeline_accounting",
    }


def test_span_queries(loaded: tuple[Any, dict[str, list[Any]]]) -> None:
    client, data = loaded
    q = doc_queries()
    spans = data["spans"]

    trace_id = f"{3:032x}"
    rows = client.query(q["find_trace"], parameters={"trace_id": trace_id}).result_rows
    mine = sorted((s for s in spans if s["trace_id"] == trace_id), key=lambda s: s["span_id"])
    assert [r[1] for r in rows] == [s["span_id"] for s in mine]
    assert [r[6] for r in rows] == [
        (s["end_time_unix_nano"] - s["start_time_unix_nano"]) / 1e6 for s in mine
    ]

    durations: dict[tuple[str, str], list[int]] = defaultdict(list)
    for s in spans:
        durations[(s["service_name"], s["name"])].append(
            s["end_time_unix_nano"] - s["start_time_unix_nano"]
        )
    want = sorted(
        (
            (svc, op, len(d), sorted(d)[int(0.99 * len(d))] / 1e6, max(d) / 1e6)
            for (svc, op), d in durations.items()
        ),
        key=lambda r: (-r[3], r[0], r[1]),
    )[:10]
    got = client.query(q["slowest_operations"], parameters=HOUR).result_rows
    assert [tuple(r) for r in got] == want

    service = "cart"
    pairs = Counter(
        (k, v) for s in spans if s["service_name"] == service for k, v in s["attributes"].items()
    )
    want_attrs = sorted(
        ((k, v, n) for (k, v), n in pairs.items()), key=lambda r: (-r[2], r[0], r[1])
    )
    got = client.query(q["top_attributes"], parameters={**HOUR, "service": service}).result_rows
    assert [tuple(r) for r in got] == want_attrs[:20]
    empty = client.query(
        q["top_attributes"],
        parameters={
            "start": "2025-11-25 00:00:00.000",
            "end": "2025-11-26 00:00:00.000",
            "service": service,
        },
    ).result_rows
    assert empty == []


def _p99_ms(durations: list[int]) -> float:
    return sorted(durations)[int(0.99 * len(durations))] / 1e6


def _epoch_us(at: datetime) -> int:
    """Microseconds since the epoch of a DateTime64 read back (naive values are UTC)."""
    return round((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1e6)


def _duration(s: dict[str, Any]) -> int:
    return int(s["end_time_unix_nano"] - s["start_time_unix_nano"])


def test_analyst_span_queries(loaded: tuple[Any, dict[str, list[Any]]]) -> None:
    client, data = loaded
    q = doc_queries()
    spans = data["spans"]
    error = {s["span_id"] for s in spans if s["status_code"] == 2}

    service = "cart"
    pairs: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for s in spans:
        if s["service_name"] == service:
            for kv in s["attributes"].items():
                pairs[kv][0] += 1
                pairs[kv][1] += s["span_id"] in error
    want_hot = sorted(
        ((k, v, n, e, round(e / n, 4)) for (k, v), (n, e) in pairs.items() if e),
        key=lambda r: (-r[4], -r[3], r[0], r[1]),
    )[:20]
    got = client.query(q["error_hot_spots"], parameters={**HOUR, "service": service})
    assert want_hot and [tuple(r) for r in got.result_rows] == want_hot

    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        res = s["resource_attributes"]
        key = (s["service_name"], res["service.version"], res["deployment.environment"])
        groups[key].append(s)
    want_versions = [
        (*key, len(g), sum(s["span_id"] in error for s in g), _p99_ms([_duration(s) for s in g]))
        for key, g in sorted(groups.items())
    ]
    got = client.query(q["p99_by_version"], parameters=HOUR).result_rows
    assert len(want_versions) > 6 and [tuple(r) for r in got] == want_versions

    by_id = {(s["trace_id"], s["span_id"]): s for s in spans}

    def through(caller: str, callee: str) -> list[tuple[str, int, int, float]]:
        calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in spans:
            parent = by_id.get((s["trace_id"], s["parent_span_id"]))
            if parent and parent["service_name"] == caller and s["service_name"] == callee:
                calls[s["trace_id"]].append(s)
        rows = [
            (
                t,
                min(by_id[(t, c["parent_span_id"])]["start_time_unix_nano"] for c in cs),
                len(cs),
                max(_duration(c) for c in cs) / 1e6,
            )
            for t, cs in calls.items()
        ]
        return sorted(rows, key=lambda r: (r[1], r[0]))

    for caller, callee in (("frontend", "cart"), ("payments", "frontend"), ("cart", "cart")):
        want_pairs = through(caller, callee)
        got = client.query(
            q["traces_through_pair"], parameters={**HOUR, "caller": caller, "callee": callee}
        ).result_rows
        assert [(r[0], r[2], r[3]) for r in got] == [(w[0], w[2], w[3]) for w in want_pairs]
        assert [_epoch_us(r[1]) for r in got] == [w[1] // 1000 for w in want_pairs]
    assert through("frontend", "cart")  # the fixture has such calls

    values: dict[str, set[str]] = defaultdict(set)
    counts: Counter[str] = Counter()
    for s in spans:
        for k, v in s["attributes"].items():
            values[k].add(v)
            counts[k] += 1
    want_card = sorted(
        ((k, len(v), counts[k]) for k, v in values.items()), key=lambda r: (-r[1], r[0])
    )
    got = client.query(q["attribute_cardinality"], parameters=HOUR).result_rows
    assert [tuple(r) for r in got] == want_card


def test_red_queries(loaded: tuple[Any, dict[str, list[Any]]]) -> None:
    client, data = loaded
    q = doc_queries()
    red = [r for r in data["red"] if r["start"] < T0 + 3600 * 10**9]  # the first hour only

    by_service: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in red:
        by_service[r["service_name"]][0] += r["calls"]
        by_service[r["service_name"]][1] += r["errors"]
    want = sorted(
        ((svc, c, e, e / c, c / 3600) for svc, (c, e) in by_service.items()),
        key=lambda r: (-r[3], r[0]),
    )
    got = client.query(q["error_rate_by_service"], parameters=HOUR).result_rows
    assert [(r[0], r[1], r[2]) for r in got] == [w[:3] for w in want]
    assert [r[3] for r in got] == pytest.approx([w[3] for w in want])
    assert [r[4] for r in got] == pytest.approx([w[4] for w in want])

    series: dict[tuple[str, str], list[Any]] = {}
    for r in red:
        acc = series.setdefault((r["service_name"], r["span_name"]), [0, [0] * 10, 0])
        acc[0] += r["calls"]
        acc[1] = [a + b for a, b in zip(acc[1], r["bucket_counts"], strict=True)]
        acc[2] = max(acc[2], r["duration_max_ns"])
    got = client.query(q["latency_quantiles"], parameters=HOUR).result_rows
    assert [(r[0], r[1]) for r in got] == sorted(series)
    for svc, op, calls, buckets, max_ms, p50, p90, p99 in got:
        want_calls, want_buckets, want_max = series[(svc, op)]
        assert (calls, list(buckets), max_ms) == (want_calls, want_buckets, want_max / 1e6)
        for level, value in ((0.5, p50), (0.9, p90), (0.99, p99)):
            assert value == pytest.approx(
                histogram_quantile(level, BOUNDS_MS, want_buckets, max_ms)
            )
        assert p50 <= p90 <= p99 <= max_ms

    service = "payments"
    hours: dict[int, list[Any]] = {}
    for r in data["red"]:
        if r["service_name"] != service:
            continue
        acc = hours.setdefault((r["start"] - T0) // (3600 * 10**9), [0, 0, [0] * 10, 0])
        acc[0] += r["calls"]
        acc[1] += r["errors"]
        acc[2] = [a + b for a, b in zip(acc[2], r["bucket_counts"], strict=True)]
        acc[3] = max(acc[3], r["duration_max_ns"])
    got = client.query(
        q["p99_over_time"],
        parameters={
            "start": "2025-11-24 00:00:00",
            "end": "2025-11-25 00:00:00",
            "service": service,
        },
    ).result_rows
    assert len(got) == len(hours) == 2
    for (hour, calls, error_ratio, p99), (h, (c, e, b, m)) in zip(
        got, sorted(hours.items()), strict=True
    ):
        assert int(hour.timestamp()) == T0 // 10**9 + h * 3600
        assert calls == c and error_ratio == pytest.approx(e / c)
        assert p99 == pytest.approx(histogram_quantile(0.99, BOUNDS_MS, b, m / 1e6))

    edges: dict[tuple[str, str], list[Any]] = {}
    for e in data["edges"]:
        acc = edges.setdefault((e["client_service"], e["server_service"]), [0, 0, [0] * 10, 0])
        acc[0] += e["calls"]
        acc[1] += e["errors"]
        acc[2] = [a + b for a, b in zip(acc[2], e["bucket_counts"], strict=True)]
        acc[3] = max(acc[3], e["duration_max_ns"])
    got = client.query(q["service_graph"], parameters=HOUR).result_rows
    assert {(r[0], r[1]) for r in got} == set(edges)
    for client_svc, server_svc, calls, error_ratio, p99 in got:
        c, e, b, m = edges[(client_svc, server_svc)]
        assert calls == c and error_ratio == pytest.approx(e / c)
        assert p99 == pytest.approx(histogram_quantile(0.99, BOUNDS_MS, b, m / 1e6))


def test_pipeline_accounting_balances(loaded: tuple[Any, dict[str, list[Any]]]) -> None:
    client, data = loaded
    stored = len(data["spans"])
    batch = counter_batch("streams-0", 1)
    batch["counters"] = [
        {"tenant_id": "", "name": "spans_received", "reason": "", "value": stored + 82},
        {"tenant_id": "", "name": "spans_sampled_out", "reason": "", "value": 60},
        {"tenant_id": "", "name": "spans_evicted", "reason": "buffer_full", "value": 4},
        {"tenant_id": "", "name": "spans_rejected", "reason": "too_large", "value": 5},
        {"tenant_id": "", "name": "spans_rejected", "reason": "bad_request", "value": 10},
        {"tenant_id": "", "name": "spans_duplicate", "reason": "", "value": 3},
    ]
    _insert(client, "accounting", [batch, batch])  # published twice: must count once
    got = client.query(doc_queries()["pipeline_accounting"]).result_rows
    reasons = {"too_large": 5, "bad_request": 10}
    assert got == [(stored + 82, stored, 60, 4, 15, 3, reasons, True)]
    _insert(client, "accounting", [{**batch, "seq": 2, "counters": batch["counters"][:1]}])
    assert not client.query(doc_queries()["pipeline_accounting"]).result_rows[0][7]

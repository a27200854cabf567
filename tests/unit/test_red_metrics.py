"""Histogram buckets (spanmetrics defaults, le semantics), RED series and the cardinality cap."""

from __future__ import annotations

from streams.histogram import DEFAULT_BOUNDS_MS, Histogram, bounds_ns
from streams.red_metrics import RedAggregator
from streams.span_views import SpanView
from tests.span_view_factory import span_view

MS = 1_000_000


def rec(service: str, ms: float, status: int = 0, name: str = "op", kind: int = 2) -> SpanView:
    return span_view(
        service_name=service,
        name=name,
        kind=kind,
        status_code=status,
        start_time_unix_nano=0,
        end_time_unix_nano=int(ms * MS),
    )


def test_default_bounds_are_spanmetrics() -> None:
    assert DEFAULT_BOUNDS_MS == (
        2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000,
    )  # fmt: skip


def test_histogram_bucket_edges() -> None:
    edges = bounds_ns(DEFAULT_BOUNDS_MS)
    h = Histogram(edges)
    for ms in (0, 2, 2.000001, 15000, 15001, -5):
        h.observe(int(ms * MS), ms == 2)
    f = h.as_fields()
    buckets = f["bucket_counts"]
    assert isinstance(buckets, list) and len(buckets) == len(DEFAULT_BOUNDS_MS) + 1
    assert buckets[0] == 3  # 0, 2 (le) and the negative clamped to 0
    assert buckets[1] == 1  # just above 2
    assert buckets[15] == 1 and buckets[16] == 1  # 15000 and +Inf
    assert sum(buckets) == f["calls"] == h.calls == 6
    assert f["errors"] == 1
    assert f["duration_max_ns"] == 15001 * MS
    assert f["duration_sum_ns"] == int((2 + 2.000001 + 15000 + 15001) * MS)


def test_red_series_by_dimensions() -> None:
    agg = RedAggregator()
    agg.add([rec("a", 1), rec("a", 3, status=2), rec("a", 5, status=2), rec("b", 100, kind=3)])
    out = agg.drain("raw/0", 10, 20)
    assert out["source"] == "raw/0" and out["window_end_unix_nano"] == 20
    assert len(out["bucket_bounds_ms"]) + 1 == len(out["series"][0]["bucket_counts"])
    by = {(s["service_name"], s["status_code"]): s for s in out["series"]}
    assert by[("a", 0)]["calls"] == 1 and by[("a", 0)]["errors"] == 0
    assert by[("a", 2)]["calls"] == 2 and by[("a", 2)]["errors"] == 2
    assert by[("a", 2)]["duration_max_ns"] == 5 * MS
    assert by[("b", 0)]["span_kind"] == 3
    assert agg.empty()  # drained = new window


def test_cardinality_cap_overflows_and_counts() -> None:
    agg = RedAggregator(max_series=3)
    agg.add([rec("a", 1, name=f"op{i}") for i in range(10)])
    assert agg.overflow_spans == 7
    out = agg.drain("raw/0", 0, 1)
    normal = [s for s in out["series"] if not s["overflow"]]
    overflow = [s for s in out["series"] if s["overflow"]]
    assert len(normal) == 3 and len(overflow) == 1
    assert overflow[0]["calls"] == 7
    assert sum(s["calls"] for s in out["series"]) == 10
    # Known series keep counting after the cap is hit.
    agg2 = RedAggregator(max_series=1)
    agg2.add([rec("a", 1), rec("b", 1), rec("a", 1)])
    by = {s["service_name"]: s["calls"] for s in agg2.drain("x", 0, 1)["series"]}
    assert by == {"a": 2, "": 1}

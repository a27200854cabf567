"""RED (rate, errors, duration) aggregation over every span, before sampling.

Runs on all spans so dropping traces never skews rates or latency. Series are keyed by
(tenant, service, span name, span kind, status code) like the spanmetrics connector; past
``max_series`` distinct keys in one window, further spans go to one overflow series (and are
counted), so a span-name explosion cannot exhaust memory or the metrics store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.adjusted_count import adjusted_count
from streams.histogram import DEFAULT_BOUNDS_MS, Histogram, bounds_ns
from streams.span_views import SpanView

STATUS_ERROR = 2
SeriesKey = tuple[str, str, str, int, int]
OVERFLOW_KEY: SeriesKey = ("", "", "", 0, 0)


@dataclass
class RedAggregator:
    max_series: int = 5000
    bounds_ms: tuple[float, ...] = DEFAULT_BOUNDS_MS
    series: dict[SeriesKey, Histogram] = field(default_factory=dict)
    overflow: Histogram | None = None
    overflow_spans: int = 0

    def __post_init__(self) -> None:
        self._edges = bounds_ns(self.bounds_ms)

    def add(self, records: list[SpanView]) -> None:
        series = self.series
        edges = self._edges
        for r in records:
            key = (r.tenant_id, r.service_name, r.name, r.kind, r.status_code)
            hist = series.get(key)
            if hist is None:
                if len(series) >= self.max_series:
                    if self.overflow is None:
                        self.overflow = Histogram(edges)
                    hist = self.overflow
                    self.overflow_spans += 1
                else:
                    hist = series[key] = Histogram(edges)
            hist.observe(
                r.end_time_unix_nano - r.start_time_unix_nano,
                r.status_code == STATUS_ERROR,
                # Inline fast path: unsampled non-root spans weigh 1 without a call.
                adjusted_count(r) if r.trace_state or not r.parent_span_id else 1.0,
            )

    def empty(self) -> bool:
        return not self.series and self.overflow is None

    def drain(self, source: str, start_ns: int, end_ns: int) -> dict[str, Any]:
        """The window as a ``red_metrics`` record; the aggregator starts a new window."""
        rows: list[dict[str, Any]] = [
            {
                "tenant_id": k[0],
                "service_name": k[1],
                "span_name": k[2],
                "span_kind": k[3],
                "status_code": k[4],
                "overflow": False,
                **h.as_fields(),
            }
            for k, h in self.series.items()
        ]
        if self.overflow is not None:
            rows.append(
                {
                    "tenant_id": "",
                    "service_name": "",
                    "span_name": "",
                    "span_kind": 0,
                    "status_code": 0,
                    "overflow": True,
                    **self.overflow.as_fields(),
                }
            )
        self.series = {}
        self.overflow = None
        self.overflow_spans = 0
        return {
            "source": source,
            "window_start_unix_nano": start_ns,
            "window_end_unix_nano": end_ns,
            "bucket_bounds_ms": [float(b) for b in self.bounds_ms],
            "series": rows,
        }

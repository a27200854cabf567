"""Capped span reads of whole traces, shared by the v1 (Jaeger JSON) and api_v3 (OTLP) stores.

A read of any number of traces is ONE ClickHouse statement (``trace_spans.sql``,
``v3_trace_spans.sql``, completed here with the caps):

- the time range comes from the ``otel_traces_trace_id_ts`` lookup table as a scalar subquery
  (ClickHouse evaluates it before analysing the outer query, so partition and primary-key
  pruning see constants), not from a round trip of its own;
- the spans stored per trace ride along each row as ``count() OVER (PARTITION BY TraceId)``,
  computed before the cut, for the truncation warning;
- one trace (or a level known in advance) is cut by ``ORDER BY ... LIMIT n BY TraceId``
  (:func:`level_sql`): with one trace the level is the cap whatever the count;
- several traces are cut by window functions (:func:`water_filled_sql`): ``Rank`` (a span's
  place in its trace by start time) and ``Upto`` (spans of all traces with a rank up to this
  one's) give the same cut as :func:`per_trace_limit`'s water-filling, which otherwise needs
  every trace's count before the read. These windows sort every matching row with its payload
  (a 100,000-span trace: about twice the ClickHouse time and memory of ``LIMIT n BY``), which
  is why one trace does not take this form.

The span statements end with a ``Stored`` column; :func:`counted` strips it and records it, so
``stored`` is complete once the rows have been consumed (renderers read it only when they
write the traces out). The v1 multi-id lookup, which also reads the archive, still counts
first: live and archived traces share one budget (query/store.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from query.params import MAX_TIME_NS

# A trace's spans may start a little before the lookup table's Start (clock skew between
# services); widen the range scanned by this much.
RANGE_SLACK_NS = 60_000_000_000
# Rows per block of a span read: ClickHouse's default (65,409) would hand over a whole capped
# trace as one block of Python objects; small blocks let the API turn rows into JSON text and
# drop them as they arrive.
SPAN_BLOCK_ROWS = 2048


def per_trace_limit(span_counts: Sequence[int], budget: int, cap: int) -> int:
    """The largest L <= cap with sum(min(count, L)) <= budget ("water-filling"), at least 1.

    One L serves every trace of a response through ``LIMIT L BY TraceId``: traces with up to
    L spans come back whole, larger ones are cut to their first L spans, so a search of many
    small traces and one huge trace still shows the small ones completely.
    """
    remaining = budget
    counts = sorted(span_counts)
    for i, count in enumerate(counts):
        left = len(counts) - i
        if count * left > remaining:
            return max(1, min(cap, remaining // left))
        remaining -= count
    return max(1, cap)


@dataclass(frozen=True)
class SpanRead:
    """Span rows of some traces (streamed; iterate once) and the spans stored per trace.

    ``stored`` fills in as ``rows`` is consumed (each row carries its trace's count).
    """

    rows: Iterator[Sequence[Any]] = field(default_factory=lambda: iter(()))
    stored: dict[str, int] = field(default_factory=dict)


def counted(rows: Iterator[Sequence[Any]], stored: dict[str, int]) -> Iterator[Sequence[Any]]:
    """Rows without their trailing ``Stored`` column, recorded per trace id (column 0)."""
    for row in rows:
        stored[row[0]] = int(row[-1])
        yield row[:-1]


# Completions of a span statement (query/sql/*trace_spans.sql, which ends with its WHERE). They
# are fixed text around the statement, never a marker substituted inside it.
_ORDER = "ORDER BY TraceId, StartNs, SpanId\n"
_LEVEL_TAIL = _ORDER + "LIMIT {per_trace:UInt32} BY TraceId\nLIMIT {max_rows:UInt32}\n"
_WATER_HEAD = """SELECT * EXCEPT (Rank, Upto)
FROM
(
    -- Upto: spans of all these traces with a Rank at most this span's (the default frame,
    -- RANGE ... CURRENT ROW, includes equal ranks): what a per-trace level of Rank costs.
    SELECT *, count() OVER (ORDER BY Rank) AS Upto
    FROM
    (
        SELECT *, row_number() OVER (PARTITION BY TraceId ORDER BY StartNs, SpanId) AS Rank
        FROM
        (
"""
_WATER_TAIL = (
    """        )
    )
)
-- The largest level <= per_trace whose spans fit in max_rows; a trace's first span stays.
WHERE Rank <= {per_trace:UInt32} AND (Upto <= {max_rows:UInt32} OR Rank = 1)
"""
    + _ORDER
    + "LIMIT {max_rows:UInt32}\n"
)


def level_sql(prefix: str, spans: str) -> str:
    """The span statement cut at the level ``per_trace`` (and ``max_rows`` in all)."""
    return prefix + spans + _LEVEL_TAIL


def water_filled_sql(prefix: str, spans: str) -> str:
    """The span statement cut as per_trace_limit would cut it (cap ``per_trace``, budget
    ``max_rows``), without knowing the counts first."""
    return prefix + _WATER_HEAD + spans + _WATER_TAIL


class SpanReads:
    """The ClickHouse calls behind every span read (one client, no session state)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def rows(self, text: str, params: dict[str, Any]) -> list[Any]:
        return list(self.client.query(text, parameters=params).result_rows)

    def stream(self, text: str, params: dict[str, Any]) -> Generator[Sequence[Any]]:
        """Rows in blocks of SPAN_BLOCK_ROWS, fetched as the consumer iterates."""
        with self.client.query_rows_stream(
            text, parameters=params, settings={"max_block_size": SPAN_BLOCK_ROWS}
        ) as stream:
            yield from stream

    def first_or_none(self, text: str, params: dict[str, Any]) -> SpanRead | None:
        """Stream a span statement; None (and the stream closed) when it returns no row.

        The first block is fetched here so a missing trace is known before a response starts.
        """
        rows = self.stream(text, params)
        first = next(rows, None)
        if first is None:
            rows.close()
            return None
        stored: dict[str, int] = {}
        return SpanRead(counted(itertools.chain([first], rows), stored), stored)

    def capped(
        self,
        spans_sql: tuple[str, str],
        tenant: str,
        trace_ids: list[str],
        max_per_trace: int,
        max_total: int,
        start_ns: int = 0,
        end_ns: int = MAX_TIME_NS,
    ) -> SpanRead | None:
        """Spans of the traces stored in otel_traces within the caps; None if none is stored.

        ``spans_sql``: the statement as :func:`level_sql` and as :func:`water_filled_sql`.
        ``start_ns``/``end_ns`` narrow the range the lookup table gives (api_v3 GetTrace). The
        first block is fetched here, so "not found" is known before a response starts.
        """
        if not trace_ids or start_ns > end_ns:
            return None
        params: dict[str, Any] = {
            "trace_ids": trace_ids,
            "tenant": tenant,
            "slack_ns": RANGE_SLACK_NS,
            "start_ns": start_ns,
            "end_ns": end_ns,
            "max_rows": max_total,
        }
        params["range_ids"] = trace_ids  # the range from the lookup table, in-statement
        text = spans_sql[0] if len(trace_ids) == 1 else spans_sql[1]
        return self.first_or_none(text, {**params, "per_trace": max_per_trace})


@dataclass(frozen=True)
class TraceCounts:
    """A trace_span_counts.sql answer: spans per trace and the first and last start time."""

    spans: dict[str, int]
    first_ns: int = 0
    last_ns: int = MAX_TIME_NS

    @classmethod
    def of(cls, rows: Sequence[Sequence[Any]]) -> TraceCounts:
        if not rows:
            return cls({})
        spans = {str(r[0]): int(r[1]) for r in rows}
        return cls(spans, min(int(r[2]) for r in rows), max(int(r[3]) for r in rows))

    def span_params(self, tenant: str, limit: int, max_total: int) -> dict[str, Any]:
        """Parameters of a span statement over these traces, bounded by the spans' own times
        (no lookup-table read: ``range_ids`` empty)."""
        return {
            "trace_ids": list(self.spans),
            "range_ids": [],
            "tenant": tenant,
            "slack_ns": RANGE_SLACK_NS,
            "start_ns": self.first_ns,
            "end_ns": self.last_ns,
            "per_trace": limit,
            "max_rows": max_total,
        }

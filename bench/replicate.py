"""Grow a loaded span set to 10M spans inside ClickHouse, for the storage and query benchmarks.

Generating and inserting spans in Python runs at ~8k spans/s here, so 10M spans would take
20+ minutes per database. ClickHouse copies them in seconds: each round doubles ``otel_traces``
(and ``red_metrics``, so the metrics API sees the same traffic) with ``INSERT ... SELECT``,
giving every copied span fresh ids and moving it in time. The materialized views (trace-id
lookup, hourly RED) see these inserts as they would see the sink's.

What a copy keeps and changes, and why that is fair for the figures:
- Ids: ``TraceId``, ``SpanId``, ``ParentSpanId`` and link ids are replaced by MD5-derived hex
  of the same width, keyed by the round and (for span ids) the trace, so parent links stay
  intact and every id is as random as an SDK's. Ids are what costs most on disk; copying them
  would flatter compression.
- Time: the copy is moved back by a fixed offset per round and wrapped into the original
  window, so the window keeps its length and its density grows as in a busier system. A
  trace that straddles the wrap point is split in two (one in ~10^5 here).
- Everything else (names, attributes, durations, statuses) repeats the base set. Attribute
  values therefore repeat more than in real traffic, which favours compression of those columns
  (they are ~25 % of the bytes); the bench's README says so next to the figures.
"""

from __future__ import annotations

from typing import Any

_NEW_TRACE_ID = "if({t} = '', '', lower(hex(MD5(concat({t}, ':{r}')))))"
_NEW_SPAN_ID = "if({s} = '', '', lower(hex(substring(MD5(concat({s}, {t}, ':{r}')), 1, 8))))"


def _shift(column: str, shift_ns: int, start_ns: int, window_ns: int) -> str:
    """``column`` (DateTime64(9)) moved back ``shift_ns``, wrapped into [start, start+window)."""
    moved = f"toUnixTimestamp64Nano({column}) - {shift_ns}"
    return (
        f"fromUnixTimestamp64Nano(if({moved} < {start_ns}, {moved} + {window_ns}, {moved}), 'UTC')"
    )


def span_copy_sql(round_no: int, shift_ns: int, start_ns: int, window_ns: int) -> str:
    """One doubling of ``otel_traces``: every row once more, with new ids and a shifted time."""
    t, r = "TraceId", round_no
    ts = _shift("Timestamp", shift_ns, start_ns, window_ns)
    # Events of a span stay at the same distance from the span's start.
    event_ts = (
        "arrayMap(e -> fromUnixTimestamp64Nano(toUnixTimestamp64Nano(e)"
        f" + toUnixTimestamp64Nano({ts}) - toUnixTimestamp64Nano(Timestamp), 'UTC'),"
        " `Events.Timestamp`)"
    )
    link_trace = _NEW_TRACE_ID.format(t="lt", r=r)
    link_span = _NEW_SPAN_ID.format(s="ls", t="lt", r=r)
    return (
        "INSERT INTO otel_traces SELECT * REPLACE ("
        f"{ts} AS Timestamp, "
        f"{_NEW_TRACE_ID.format(t=t, r=r)} AS TraceId, "
        f"{_NEW_SPAN_ID.format(s='SpanId', t=t, r=r)} AS SpanId, "
        f"{_NEW_SPAN_ID.format(s='ParentSpanId', t=t, r=r)} AS ParentSpanId, "
        f"{event_ts} AS `Events.Timestamp`, "
        f"arrayMap(lt -> {link_trace}, `Links.TraceId`) AS `Links.TraceId`, "
        f"arrayMap((ls, lt) -> {link_span}, `Links.SpanId`, `Links.TraceId`) AS `Links.SpanId`"
        ") FROM otel_traces"
    )


def red_copy_sql(shift_ns: int, start_ns: int, window_ns: int) -> str:
    """One doubling of ``red_metrics`` with the same time shift as the spans' round."""
    start = _shift("TimeUnix", shift_ns, start_ns, window_ns)
    length = "toUnixTimestamp64Nano(WindowEnd) - toUnixTimestamp64Nano(TimeUnix)"
    return (
        "INSERT INTO red_metrics SELECT * REPLACE ("
        f"{start} AS TimeUnix, "
        f"fromUnixTimestamp64Nano(toUnixTimestamp64Nano({start}) + {length}, 'UTC') AS WindowEnd"
        ") FROM red_metrics"
    )


def double(client: Any, rounds: int, start_ns: int, window_ns: int, with_red: bool = False) -> int:
    """Double the stored spans ``rounds`` times; returns the span count afterwards.

    Round r moves its copy back by window / 2^r (12 h, 6 h, ... of a day), so no two rounds
    land their copies on the same instants.
    """
    for round_no in range(1, rounds + 1):
        shift_ns = window_ns >> round_no or 1
        client.command(
            span_copy_sql(round_no, shift_ns, start_ns, window_ns),
            settings={"max_insert_threads": 2, "max_threads": 2},
        )
        if with_red:
            client.command(red_copy_sql(shift_ns, start_ns, window_ns))
    return int(client.command("SELECT count() FROM otel_traces"))

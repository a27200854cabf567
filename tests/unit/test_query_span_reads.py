"""Round trips of a capped span read (query.span_reads), against a recording client.

The SQL itself runs against ClickHouse in tests/integration/test_query_*; here only which
statements go out, with which parameters, and what is made of their rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from query.span_reads import SpanReads, TraceCounts, per_trace_limit
from query.store import span_sql


class RecordingClient:
    """Answers each statement by its SQL file name; records (name, parameters) in order."""

    def __init__(self, answers: dict[str, list[Sequence[Any]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _name(self, text: str) -> str:
        level, water_filled = span_sql("trace_spans")
        return {level: "level", water_filled: "water_filled"}[text]

    def query(self, text: str, parameters: dict[str, Any]) -> Any:
        name = self._name(text)
        self.calls.append((name, parameters))
        return type("Result", (), {"result_rows": self.answers[name]})()

    @contextmanager
    def query_rows_stream(
        self, text: str, parameters: dict[str, Any], settings: dict[str, Any]
    ) -> Iterator[Iterator[Sequence[Any]]]:
        name = self._name(text)
        self.calls.append((name, parameters))
        yield iter(self.answers[name])


def _read(client: RecordingClient, ids: list[str], cap: int = 3, budget: int = 10) -> Any:
    return SpanReads(client).capped(span_sql("trace_spans"), "", ids, cap, budget)


def test_one_trace_is_one_statement_and_its_count_rides_along() -> None:
    client = RecordingClient({"level": [("t1", "s1", 5), ("t1", "s2", 5)]})
    read = _read(client, ["t1"])
    assert read is not None
    assert [r for r in read.rows] == [("t1", "s1"), ("t1", "s2")]
    assert read.stored == {"t1": 5}
    [(name, params)] = client.calls
    assert name == "level" and params["range_ids"] == ["t1"]  # lookup in-statement
    assert (params["per_trace"], params["max_rows"]) == (3, 10)


def test_one_missing_trace_is_none_after_one_statement() -> None:
    client = RecordingClient({"level": []})
    assert _read(client, ["t1"]) is None
    assert [n for n, _ in client.calls] == ["level"]


def test_several_traces_are_one_statement_too() -> None:
    client = RecordingClient({"water_filled": [("t1", "a", 7), ("t2", "b", 1)]})
    read = _read(client, ["t1", "t2", "t3"], cap=20, budget=6)
    assert read is not None and list(read.rows) == [("t1", "a"), ("t2", "b")]
    assert read.stored == {"t1": 7, "t2": 1}
    [(name, params)] = client.calls
    assert name == "water_filled" and params["trace_ids"] == params["range_ids"]
    assert (params["per_trace"], params["max_rows"]) == (20, 6)


def test_counted_ranges_bound_the_span_read_without_a_lookup() -> None:
    counts = TraceCounts.of([("t1", 10, 1_000, 9_000), ("t2", 1, 500, 500)])
    assert counts.spans == {"t1": 10, "t2": 1}
    params = counts.span_params("", per_trace_limit([10, 1], 6, 20), 6)
    assert params["trace_ids"] == ["t1", "t2"] and params["range_ids"] == []
    assert (params["start_ns"], params["end_ns"], params["per_trace"]) == (500, 9_000, 5)

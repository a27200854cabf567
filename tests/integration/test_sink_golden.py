"""The golden spans (tests/unit/test_span_golden.py) through a real sink into a real ClickHouse:
what is read back from ``otel_traces`` equals the hand-written rows, value by value.

The unit test pins the Arrow table; this one pins what ClickHouse makes of it (DateTime64(9)
nanoseconds, LowCardinality strings, maps, Nested events and links, non-ASCII text), so a type
change on either side cannot slip through.
"""

from __future__ import annotations

from typing import Any

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from streams.span_batch_messages import encode_span_batches
from streams.span_views import span_views
from tests.integration.helpers import wait_until
from tests.integration.sink_data import produce, start_sink
from tests.unit.test_span_golden import DEFAULT_TENANT, EXPECTED_ROWS, golden_traces

# Times as integer nanoseconds: a Python datetime would drop the last three digits.
_COLUMNS = {
    "Timestamp": "toUnixTimestamp64Nano(Timestamp)",
    "Events.Timestamp": "arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`)",
}


def _read_back(client: Any) -> list[dict[str, Any]]:
    names = list(EXPECTED_ROWS[0])
    select = ", ".join(_COLUMNS.get(n, f"`{n}`") for n in names)
    result = client.query(f"SELECT {select} FROM otel_traces ORDER BY Timestamp, SpanId")
    return [dict(zip(names, row, strict=True)) for row in result.result_rows]


def test_golden_spans_read_back_from_clickhouse_equal_the_hand_written_rows(
    services: LocalStack, pipeline_settings: Settings
) -> None:
    s = pipeline_settings
    [payload] = encode_span_batches(span_views(golden_traces(), DEFAULT_TENANT)).payloads
    produce(s.kafka_bootstrap, s.topics.sampled_spans, [(0, payload)])
    stack = LocalStack(s, services.run_dir / s.clickhouse_database, say=lambda _m: None)
    client = connect(s.clickhouse_url, s.clickhouse_database)
    try:
        start_sink(stack, free_port())
        wait_until(lambda: client.command("SELECT count() FROM otel_traces"), lambda n: n == 3, 30)
    finally:
        stack.stop()
    rows = _read_back(client)
    assert len(rows) == len(EXPECTED_ROWS)
    for got, want in zip(rows, EXPECTED_ROWS, strict=True):
        for name, value in want.items():
            assert got[name] == value, (want["SpanId"], name)

"""Tag searches with and without the attribute item text indexes, on the real ClickHouse.

The search builders add ``has(SpanAttributeItems, 'k=v')`` only where the spans table has the
items' text indexes (query/attribute_indexes.py). Checked here on both index families: the
detection itself, that both forms of every tag search answer the same on the same rows, and
that on the text layout the indexed form reads fewer rows for a pair no span has (the reason
it exists; a form the index cannot answer reads the whole window).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from core.clickhouse import connect
from deploy.local.stack import LocalStack
from query.attribute_indexes import ItemIndexes, has_item_text_indexes
from query.params import TraceQuery
from query.search_sql import search_query
from schemas.migrations import migrate
from sinks.batching import PartitionBatch
from sinks.clickhouse_store import BatchStore
from tracehouse.demo_traces import make_request
from tracehouse.span_tables import otel_traces_table, span_facts

NOW_NS = 1_764_000_000_000_000_000
HOUR_NS = 3_600_000_000_000


def _demo() -> trace_pb2.TracesData:
    data = trace_pb2.TracesData.FromString(
        make_request(traces=300, seed=5, now_ns=NOW_NS).SerializeToString()
    )
    # A pair that is one text as an item ('a=b=c') under two different keys, and one rare pair.
    firsts: dict[bytes, trace_pb2.Span] = {}
    for rs in data.resource_spans:
        if rs.resource.attributes[0].value.string_value != "frontend":
            continue  # service.name comes first in the demo's resources
        for ss in rs.scope_spans:
            for span in ss.spans:
                firsts.setdefault(span.trace_id, span)
    spans = list(firsts.values())  # one span of each of three traces
    spans[0].attributes.add(key="a=b").value.string_value = "c"
    spans[1].attributes.add(key="a").value.string_value = "b=c"
    spans[2].attributes.add(key="rare").value.string_value = "needle"
    return data


@pytest.fixture(scope="module", params=[True, False], ids=["text", "bloom"])
def layout(request: pytest.FixtureRequest, services: LocalStack) -> Iterator[tuple[Any, bool]]:
    admin = connect(services.settings.clickhouse_url, "default")
    db = f"th_items_{uuid.uuid4().hex[:8]}"
    migrate(admin, db, text_indexes=request.param)
    client = connect(services.settings.clickhouse_url, db)
    data = _demo()
    records = span_facts(data)
    batch = PartitionBatch("t", 0, 0)
    batch.add(0, records, len(records))
    BatchStore(client, db).insert("otel_traces", otel_traces_table(data), batch)
    yield client, request.param
    admin.command(f"DROP DATABASE `{db}` SYNC")


def _search(client: Any, tags: dict[str, str], item_index: bool) -> tuple[list[str], int]:
    q = TraceQuery(
        service="frontend",
        tags=tags,
        start_ns=NOW_NS - 24 * HOUR_NS,
        end_ns=NOW_NS + HOUR_NS,
        limit=1000,
    )
    text, params = search_query("", q, item_index=item_index)
    result = client.query(text, parameters=params)
    return [str(r[0]) for r in result.result_rows], int(result.summary["read_rows"])


def test_the_detection_names_the_layout(layout: tuple[Any, bool]) -> None:
    client, text_indexes = layout
    assert has_item_text_indexes(client) is text_indexes
    assert ItemIndexes(client)() is text_indexes


@pytest.mark.parametrize(
    "tags",
    [
        {"a=b": "c"},
        {"a": "b=c"},
        {"rare": "needle"},
        {"rare": "absent"},
        {"http.route": "/checkout"},
        {"deployment.environment": "demo"},
        {"missing": ""},
        {"error": "true"},
        {"http.route": "/checkout", "error": "true"},
        {"service.name": "frontend"},
    ],
)
def test_both_forms_answer_the_same(layout: tuple[Any, bool], tags: dict[str, str]) -> None:
    client, _ = layout
    plain, _ = _search(client, tags, item_index=False)
    indexed, _ = _search(client, tags, item_index=True)
    assert indexed == plain


def test_the_exact_map_test_tells_apart_keys_whose_items_are_the_same_text(
    layout: tuple[Any, bool],
) -> None:
    client, _ = layout
    one, _ = _search(client, {"a=b": "c"}, item_index=True)
    other, _ = _search(client, {"a": "b=c"}, item_index=True)
    assert len(one) == 1 and len(other) == 1 and one != other


def test_the_text_index_prunes_a_pair_no_span_has(layout: tuple[Any, bool]) -> None:
    client, text_indexes = layout
    if not text_indexes:
        pytest.skip("the bloom layout has no item index to prune with")
    found, plain_rows = _search(client, {"rare": "absent"}, item_index=False)
    assert found == []
    _, indexed_rows = _search(client, {"rare": "absent"}, item_index=True)
    # Only the event-attribute scan (no index) still reads the window.
    assert indexed_rows < plain_rows

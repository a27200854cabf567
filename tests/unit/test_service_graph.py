"""Edge joining: client/server, producer/consumer, parent/child, late halves and expiry."""

from __future__ import annotations

from typing import Any

from streams.service_graph import ServiceGraph
from streams.span_views import SpanView
from tests.span_view_factory import span_view

MS = 1_000_000
SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = 2, 3, 4, 5, 1


def rec(
    span: str, service: str, kind: int, parent: str = "", ms: float = 1, status: int = 0,
    trace: str = "t1", attrs: dict[str, str] | None = None,
) -> SpanView:  # fmt: skip
    return span_view(
        trace_id=trace.encode(),
        span_id=span.encode(),
        parent_span_id=parent.encode(),
        service_name=service,
        kind=kind,
        status_code=status,
        start_time_unix_nano=0,
        end_time_unix_nano=int(ms * MS),
        attributes=attrs,
    )


def edges(g: ServiceGraph) -> dict[tuple[str, str, str], dict[str, Any]]:
    out = g.drain("raw/0", 0, 1)["edges"]
    return {(e["client_service"], e["server_service"], e["connection_type"]): e for e in out}


def test_client_server_pair_in_one_batch() -> None:
    g = ServiceGraph()
    g.add([rec("c", "shop", CLIENT, ms=30), rec("s", "pay", SERVER, parent="c", ms=20)], 0)
    e = edges(g)[("shop", "pay", "")]
    assert e["calls"] == 1 and e["errors"] == 0
    assert e["duration_sum_ns"] == 30 * MS  # latency as the client saw it


def test_server_before_client_across_messages() -> None:
    g = ServiceGraph()
    g.add([rec("s", "pay", SERVER, parent="c", status=2)], 0)
    assert not g.edges
    g.add([rec("c", "shop", CLIENT)], 1)
    e = edges(g)[("shop", "pay", "")]
    assert e["errors"] == 1


def test_producer_consumer_and_parent_child() -> None:
    g = ServiceGraph()
    g.add(
        [
            rec("p", "orders", PRODUCER),
            rec("k", "billing", CONSUMER, parent="p", ms=7),
            rec("i", "audit", INTERNAL, parent="k", ms=3),
            rec("j", "billing", INTERNAL, parent="k"),  # same service: no edge
        ],
        0,
    )
    e = edges(g)
    assert set(e) == {
        ("orders", "billing", "messaging_system"),
        ("billing", "audit", "parent_child"),
    }
    assert e[("orders", "billing", "messaging_system")]["duration_sum_ns"] == 7 * MS


def test_same_span_ids_in_other_traces_do_not_join() -> None:
    g = ServiceGraph()
    g.add(
        [rec("c", "shop", CLIENT, trace="t1"), rec("s", "pay", SERVER, parent="c", trace="t2")], 0
    )
    assert not g.edges


def test_expiry_drops_unpaired_and_makes_virtual_nodes() -> None:
    g = ServiceGraph(wait_seconds=5)
    g.add([rec("s", "pay", SERVER, parent="missing")], 0)
    g.add([rec("c", "shop", CLIENT, attrs={"db.system": "postgresql"})], 1)
    g.add([rec("c2", "shop", CLIENT)], 1)  # no peer attribute: nothing to draw
    g.expire(4)
    assert g.waiting() == 5 - 0 - 1  # nothing old enough yet (3 spans + 1 orphan)
    g.expire(6.5)
    assert g.expired_unpaired == 1
    assert g.waiting() == 0
    e = edges(g)
    assert set(e) == {("shop", "postgresql", "virtual_node")}
    # A late server after expiry cannot pair any more.
    g.add([rec("s2", "pay", SERVER, parent="c")], 7)
    assert not g.edges


def test_max_items_bounds_memory() -> None:
    g = ServiceGraph(max_items=10)
    g.add([rec(f"s{i}", "a", INTERNAL) for i in range(25)], 0)
    assert g.waiting() == 10
    assert g.dropped_full == 15

"""The compiled service-graph join (streams/_service_graph.pyx) against the Python reference.

Both graphs get the same operations (adds of span batches, relinks, expiries, drains) with
values at every limit: parents before and after children, copies, cross-tenant pairs, durations
negative and beyond 64 bits, unknown kinds, weighted spans, a bound small enough to drop
halves. Every drained record, counter and waiting count must be equal, in the same order.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.service_graph import COMPILED, ServiceGraph
from streams.span_views import SpanView
from tests.span_view_factory import span_view

pytestmark = pytest.mark.skipif(not COMPILED, reason="compiled service graph not built")

IDS = st.sampled_from([b"a", b"b", b"c"])
SpanArgs = dict[str, Any]

span_args = st.fixed_dictionaries(
    {
        "tenant_id": st.sampled_from(["", "", "", "t2"]),
        "trace_id": st.sampled_from([b"T1", b"T1", b"T2"]),
        "span_id": IDS,
        "parent_span_id": st.sampled_from([b"", b"a", b"b", b"b", b"c"]),
        "trace_state": st.sampled_from(["", "ot=th:8", "ot=th:zz", "ot=th:fffffffffffff"]),
        "kind": st.sampled_from([3, 2, 3, 2, 3, 2, 4, 5, 0, 1, 6, -1, 2**31 - 1]),
        "service_name": st.sampled_from(["shop", "pay", "shop", "pay", "db", ""]),
        "start_time_unix_nano": st.sampled_from([0, 5, 2**63, 2**64 - 1]),
        "end_time_unix_nano": st.one_of(
            st.integers(0, 10**10), st.sampled_from([0, 3, 2**63 + 1, 2**64 - 1])
        ),
        "status_code": st.sampled_from([0, 1, 2, 3]),
        "attributes": st.sampled_from(
            [None, {"peer.service": "redis"}, {"db.system": "pg"}, {"sampler.type": "x"}]
        ),
    }
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(span_args, max_size=8), st.floats(0, 30)),
        st.tuples(st.just("relink"), st.sampled_from([b"T1", b"T2"]), IDS, IDS),
        st.tuples(st.just("expire"), st.floats(0, 60)),
        st.tuples(st.just("drain")),
    ),
    max_size=25,
)


def _views(batch: list[SpanArgs]) -> list[SpanView]:
    # Fresh views for each graph: adjusted_count caches its answer in the view.
    return [span_view(**args) for args in batch]


def _state(g: ServiceGraph) -> tuple[Any, ...]:
    return (g.expired_unpaired, g.cross_tenant, g.dropped_full, g.waiting())


@settings(max_examples=500, deadline=None)
@given(ops=operations, max_items=st.sampled_from([2, 5, 100_000]))
def test_compiled_join_equals_the_reference(ops: list[tuple[Any, ...]], max_items: int) -> None:
    graphs = [
        ServiceGraph(wait_seconds=10, max_items=max_items, compiled=flag) for flag in (False, True)
    ]
    for op in ops:
        out: list[Any] = []
        for g in graphs:
            if op[0] == "add":
                g.add(_views(op[1]), op[2])
            elif op[0] == "relink":
                g.relink(op[1], op[2], op[3])
            elif op[0] == "expire":
                g.expire(op[1])
            else:
                out.append(g.drain("raw/0", 0, 1))
            out.append(_state(g))
        reference, compiled = out[: len(out) // 2], out[len(out) // 2 :]
        assert compiled == reference, op
    assert graphs[1].drain("raw/0", 0, 1) == graphs[0].drain("raw/0", 0, 1)


class LooseView:
    """A view without slots: the compiled join reads it by attribute, not by slot."""

    def __init__(self, view: SpanView) -> None:
        for f in dataclasses.fields(SpanView):
            setattr(self, f.name, getattr(view, f.name))


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.tuples(st.lists(span_args, max_size=8), st.floats(0, 30)), max_size=8))
def test_views_of_another_class_join_as_span_views_do(
    batches: list[tuple[list[SpanArgs], float]],
) -> None:
    graphs = [ServiceGraph(wait_seconds=10, compiled=flag) for flag in (False, True, True)]
    for batch, now in batches:
        graphs[0].add(_views(batch), now)
        graphs[1].add(_views(batch), now)
        graphs[2].add([LooseView(v) for v in _views(batch)], now)  # type: ignore[misc]
    drained = [g.drain("raw/0", 0, 1) for g in graphs]
    assert drained[1] == drained[0] and drained[2] == drained[0]
    assert [_state(g) for g in graphs[1:]] == [_state(graphs[0])] * 2


def test_span_views_are_read_from_their_slots() -> None:
    from streams import _service_graph  # type: ignore[attr-defined]

    assert _service_graph.use_layout(SpanView)
    assert not _service_graph.use_layout(LooseView)
    _service_graph.use_layout(SpanView)


def test_a_client_that_never_meets_its_server_becomes_a_virtual_node_both_ways() -> None:
    for flag in (False, True):
        g = ServiceGraph(wait_seconds=1, compiled=flag)
        g.add(_views([{"span_id": b"c", "kind": 3, "attributes": {"peer.service": "redis"}}]), 0)
        g.expire(5)
        [edge] = g.drain("raw/0", 0, 1)["edges"]
        assert (edge["client_service"], edge["server_service"]) == ("svc", "redis")
        assert edge["connection_type"] == "virtual_node"


def test_the_compiled_graph_refuses_to_start_without_its_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import streams.service_graph as module

    monkeypatch.setattr(module, "_COMPILED", None)
    with pytest.raises(ValueError, match="not built"):
        ServiceGraph(compiled=True)
    assert ServiceGraph(compiled=False).waiting() == 0

"""Service-graph edges from span pairs, joined across messages within an expiry.

A caller and its callee usually reach the worker in different messages (different services
export separately), so every span waits up to ``wait_seconds`` for its partner: a child waits for
its parent and a parent stays findable for late children. Traces are partitioned by trace id, so
both halves always reach the same worker. Memory is bounded by ``max_items``; the oldest waiting
halves are dropped first and counted.

Pairs become edges as follows: client -> server is a request/response edge (latency seen by the
client), producer -> consumer a ``messaging_system`` edge (latency of the consumer), any other
parent -> child across two services a ``parent_child`` edge. A client span that never finds its
server but names ``peer.service`` (or ``db.system``) yields a ``virtual_node`` edge on expiry,
because uninstrumented backends are otherwise invisible.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from streams.adjusted_count import adjusted_count
from streams.histogram import DEFAULT_BOUNDS_MS, Histogram, bounds_ns
from streams.span_views import SpanView, first_attribute

log = logging.getLogger(__name__)

# The build of streams/_service_graph.pyx this side was written against.
ABI = 2


def _load() -> ModuleType | None:
    try:
        from streams import _service_graph  # type: ignore[attr-defined]
    except ImportError as exc:
        log.warning("streams: compiled service graph not built (%s); Python join only", exc)
        return None
    if getattr(_service_graph, "ABI", None) != ABI:
        log.warning("streams: compiled service graph is a stale build; rebuild with make setup")
        return None
    _service_graph.use_layout(SpanView)
    return _service_graph


_COMPILED = _load()
# Whether ServiceGraph.add runs the compiled join (the same result, ADR 0015's rule: the
# Python code here stays the reference, tests/unit/test_service_graph_compiled.py).
COMPILED = _COMPILED is not None

KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = 2, 3, 4, 5
STATUS_ERROR = 2
PEER_KEYS = ("peer.service", "db.system")

EdgeKey = tuple[str, str, str, str]  # tenant, client, server, connection type


def _peer_of(view: SpanView) -> str:
    return first_attribute(view, PEER_KEYS)


@dataclass(slots=True)
class _Half:
    tenant: str
    service: str
    kind: int
    duration_ns: int
    error: bool
    born: float
    peer: str = ""
    paired: bool = False
    weight: float = 1.0  # adjusted count (streams/adjusted_count.py)


@dataclass
class ServiceGraph:
    wait_seconds: float = 10.0
    max_items: int = 100_000
    bounds_ms: tuple[float, ...] = DEFAULT_BOUNDS_MS
    edges: dict[EdgeKey, Histogram] = field(default_factory=dict)
    expired_unpaired: int = 0
    # Halves (or orphan lists) forgotten to stay within max_items; published as
    # graph_dropped_full so a graph missing edges under load is visible, not silent.
    dropped_full: int = 0
    # Parent/child pairs whose spans belong to different tenants: counted, never an edge.
    cross_tenant: int = 0
    # Join with streams/_service_graph.pyx when built (False: this module's Python join).
    compiled: bool = COMPILED

    def __post_init__(self) -> None:
        if self.compiled and _COMPILED is None:
            raise ValueError("the compiled service graph is not built")
        self._edges_ns = bounds_ns(self.bounds_ms)
        # (trace id, span id) -> the span, for children that arrive later.
        self._spans: OrderedDict[tuple[bytes, bytes], _Half] = OrderedDict()
        # (trace id, parent span id) -> children that arrived before their parent.
        self._orphans: OrderedDict[tuple[bytes, bytes], list[_Half]] = OrderedDict()

    def add(self, records: list[SpanView], now: float) -> None:
        if self.compiled:
            assert _COMPILED is not None
            _COMPILED.add(self, records, now, _peer_of)
            self._bound()
            return
        spans, orphans = self._spans, self._orphans
        clients: list[tuple[_Half, SpanView]] = []
        for r in records:
            kind = r.kind
            # Positionally, every field: keyword arguments cost a third more per span.
            me = _Half(
                r.tenant_id,
                r.service_name,
                kind,
                max(0, r.end_time_unix_nano - r.start_time_unix_nano),
                r.status_code == STATUS_ERROR,
                now,
                "",
                False,
                adjusted_count(r) if r.trace_state or not r.parent_span_id else 1.0,
            )
            if kind == KIND_CLIENT:
                clients.append((me, r))
            trace = r.trace_id
            parent_id = r.parent_span_id
            if parent_id:
                parent = spans.get((trace, parent_id))
                if parent is not None:
                    self._pair(parent, me)
                else:
                    orphans.setdefault((trace, parent_id), []).append(me)
            key = (trace, r.span_id)
            waiting = orphans.pop(key, None)
            if waiting:
                for child in waiting:
                    self._pair(me, child)
            spans[key] = me
        # A client's peer name only matters if it never meets its server (a virtual node), and
        # scanning attributes is the dearest step here: look only at clients still unpaired
        # after their own message, while their spans are still at hand.
        for half, r in clients:
            if not half.paired:
                half.peer = first_attribute(r, PEER_KEYS)
        self._bound()

    def relink(self, trace: Any, old_parent: Any, new_parent: Any) -> None:
        """Children waiting for ``old_parent``, now known to be missing from the trace, belong
        under ``new_parent`` instead (``streams/zipkin_links.py``): pair them now if it is here,
        else let them wait for it."""
        waiting = self._orphans.pop((trace, old_parent), None)
        if not waiting:
            return
        parent = self._spans.get((trace, new_parent))
        if parent is None:
            self._orphans.setdefault((trace, new_parent), []).extend(waiting)
            return
        for child in waiting:
            self._pair(parent, child)

    def _pair(self, parent: _Half, child: _Half) -> None:
        if parent.tenant != child.tenant:
            # An edge belongs to a tenant only when both of its spans do: otherwise one tenant
            # would see (and could write) another tenant's service names in its map.
            self.cross_tenant += 1
            return
        if parent.service == child.service:
            return
        if parent.kind == KIND_CLIENT and child.kind == KIND_SERVER:
            conn, latency = "", parent.duration_ns
        elif parent.kind == KIND_PRODUCER and child.kind == KIND_CONSUMER:
            conn, latency = "messaging_system", child.duration_ns
        else:
            conn, latency = "parent_child", child.duration_ns
        parent.paired = True
        self._observe(
            (parent.tenant, parent.service, child.service, conn),
            latency,
            parent.error or child.error,
            # One call per sampled pair; both halves share the trace's sampling, and a Jaeger
            # SDK weighs only its root, so the heavier half is the trace's weight.
            max(parent.weight, child.weight),
        )

    def _observe(self, key: EdgeKey, latency_ns: int, error: bool, weight: float = 1.0) -> None:
        hist = self.edges.get(key)
        if hist is None:
            hist = self.edges[key] = self._new_histogram()
        hist.observe(latency_ns, error, weight)

    def _new_histogram(self) -> Histogram:
        return Histogram(self._edges_ns)

    def _bound(self) -> None:
        while len(self._spans) > self.max_items:
            self._retire(self._spans.popitem(last=False)[1])
            self.dropped_full += 1
        while len(self._orphans) > self.max_items:
            self._orphans.popitem(last=False)
            self.dropped_full += 1

    def _retire(self, half: _Half) -> None:
        if half.kind == KIND_CLIENT and not half.paired and half.peer:
            self._observe((half.tenant, half.service, half.peer, "virtual_node"), half.duration_ns,
                          half.error, half.weight)  # fmt: skip

    def expire(self, now: float) -> None:
        """Forget halves older than the wait; unpaired ones are counted or become virtual edges."""
        limit = now - self.wait_seconds
        spans, orphans = self._spans, self._orphans
        # Pop from the front and put back the first half still waiting: one C call per expired
        # half instead of a fresh iterator each (this runs over every span once).
        while spans:
            key, half = spans.popitem(last=False)
            if half.born > limit:
                spans[key] = half
                spans.move_to_end(key, last=False)
                break
            self._retire(half)
        while orphans:
            key, children = orphans.popitem(last=False)
            if children[0].born > limit:
                orphans[key] = children
                orphans.move_to_end(key, last=False)
                break
            self.expired_unpaired += len(children)

    def waiting(self) -> int:
        return len(self._spans) + len(self._orphans)

    def drain(self, source: str, start_ns: int, end_ns: int) -> dict[str, Any]:
        """The edges observed since the last drain as a ``graph_edges`` record."""
        rows = [
            {
                "tenant_id": k[0],
                "client_service": k[1],
                "server_service": k[2],
                "connection_type": k[3],
                **h.as_fields(),
            }
            for k, h in self.edges.items()
        ]
        self.edges = {}
        return {
            "source": source,
            "window_start_unix_nano": start_ns,
            "window_end_unix_nano": end_ns,
            "bucket_bounds_ms": [float(b) for b in self.bounds_ms],
            "edges": rows,
        }

# cython: language_level=3, boundscheck=False, wraparound=False
"""The service graph's per-span join, compiled (streams/service_graph.py holds the reference).

Why: ``ServiceGraph.add`` runs for every span before sampling, and in Python it was the largest
single step of the streams worker (18 % of its samples keep-all at 20k spans/s, 2026-12-02):
a dataclass per span, a tuple key, up to three dict operations and three method calls per
pair. Here a half is a C struct inside an extension object and the pairing is one C function;
the state (the two ordered maps, the edges, the counters) stays on the Python object, so
``relink``, ``expire`` and ``drain`` are shared code, and the property tests hold both ways of
adding equal (tests/unit/test_service_graph_compiled.py).
"""

cimport cython
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject

from core.slots cimport slot_offsets, slot_or_attribute

from streams.adjusted_count import adjusted_count

# Bumped whenever the Python side must change with this file (streams/service_graph.py).
ABI = 2

# The view fields the join reads, by their slot (core/slots.pxd): a span view's attribute
# read through its descriptor was a third of the join's time. Views of any other class are
# read by attribute.
_VIEW_FIELDS = (
    "tenant_id", "service_name", "kind", "start_time_unix_nano", "end_time_unix_nano",
    "status_code", "trace_state", "trace_id", "span_id", "parent_span_id",
)
cdef enum:
    V_TENANT, V_SERVICE, V_KIND, V_START, V_END, V_STATUS, V_TRACE_STATE, V_TRACE, V_SPAN,
    V_PARENT, NVIEW
cdef Py_ssize_t _OFFSETS[NVIEW]
cdef object _LAYOUT_OF = None


def use_layout(cls):
    """Read the views of ``cls`` from their slots, if its layout allows; returns whether."""
    global _LAYOUT_OF
    _LAYOUT_OF = cls if slot_offsets(cls, _VIEW_FIELDS, _OFFSETS) else None
    return _LAYOUT_OF is not None


cdef inline object _field(object view, int i, bint direct):
    return slot_or_attribute(view, _OFFSETS[i], direct, _VIEW_FIELDS[i])


cdef inline object _lookup(object mapping, object key):
    """``mapping.get(key)`` for a dict or an OrderedDict (a dict subclass whose items live in
    the dict itself; only its order is kept aside), without the method call."""
    cdef PyObject* found = PyDict_GetItem(mapping, key)
    return <object>found if found != NULL else None

KIND_SERVER = 2
KIND_CLIENT = 3
KIND_PRODUCER = 4
KIND_CONSUMER = 5
STATUS_ERROR = 2


@cython.no_gc
cdef class Half:
    """One span waiting for its partner: what an edge needs of it (same fields as the
    reference ``_Half``).

    Not tracked by the cycle collector: a half holds only strings and numbers, so it can never
    be part of a cycle, and the graph keeps a few hundred thousand of them alive for its wait,
    which every collection of their generation would otherwise walk."""

    cdef public str tenant
    cdef public str service
    cdef public object kind  # any int a decoder let through: never a C overflow
    cdef public object duration_ns
    cdef public bint error
    cdef public double born
    cdef public str peer
    cdef public bint paired
    cdef public double weight

    def __init__(self, str tenant, str service, kind, duration_ns, bint error,
                 double born, str peer="", bint paired=False, double weight=1.0):
        self.tenant = tenant
        self.service = service
        self.kind = kind
        self.duration_ns = duration_ns
        self.error = error
        self.born = born
        self.peer = peer
        self.paired = paired
        self.weight = weight


cdef inline Half _half(r, double now, bint direct):
    cdef Half me = Half.__new__(Half)
    me.tenant = _field(r, V_TENANT, direct)
    me.service = _field(r, V_SERVICE, direct)
    me.kind = _field(r, V_KIND, direct)
    duration = _field(r, V_END, direct) - _field(r, V_START, direct)
    me.duration_ns = duration if duration > 0 else 0
    me.error = _field(r, V_STATUS, direct) == STATUS_ERROR
    me.born = now
    me.peer = ""
    me.paired = False
    if _field(r, V_TRACE_STATE, direct) or not _field(r, V_PARENT, direct):
        me.weight = adjusted_count(r)
    else:
        me.weight = 1.0
    return me


cdef inline void _pair(graph, dict edges, Half parent, Half child):
    """The reference's ``_pair`` and ``_observe`` in one (the same rules, the same order)."""
    cdef str conn
    if parent.tenant != child.tenant:
        graph.cross_tenant += 1
        return
    if parent.service == child.service:
        return
    if parent.kind == KIND_CLIENT and child.kind == KIND_SERVER:
        conn = ""
        latency = parent.duration_ns
    elif parent.kind == KIND_PRODUCER and child.kind == KIND_CONSUMER:
        conn = "messaging_system"
        latency = child.duration_ns
    else:
        conn = "parent_child"
        latency = child.duration_ns
    parent.paired = True
    key = (parent.tenant, parent.service, child.service, conn)
    hist = edges.get(key)
    if hist is None:
        hist = graph._new_histogram()
        edges[key] = hist
    hist.observe(
        latency,
        parent.error or child.error,
        parent.weight if parent.weight > child.weight else child.weight,
    )


def add(graph, list records, double now, peer_of):
    """``ServiceGraph.add`` for ``records``: join each span with its waiting partner.

    ``peer_of(view)`` names a client's peer (``first_attribute`` of the peer keys), asked only
    for clients still unpaired after their own message, as the reference does.
    """
    spans = graph._spans
    orphans = graph._orphans
    cdef dict edges = graph.edges
    cdef list clients = []
    cdef list waiting
    cdef Half me, parent, child
    cdef bint direct
    for r in records:
        direct = _LAYOUT_OF is not None and type(r) is _LAYOUT_OF
        me = _half(r, now, direct)
        if me.kind == KIND_CLIENT:
            clients.append((me, r))
        trace = _field(r, V_TRACE, direct)
        parent_id = _field(r, V_PARENT, direct)
        if parent_id:
            key = (trace, parent_id)
            found = _lookup(spans, key)
            if found is not None:
                _pair(graph, edges, <Half>found, me)
            else:
                waiting = _lookup(orphans, key)
                if waiting is None:
                    orphans[key] = [me]
                else:
                    waiting.append(me)
        key = (trace, _field(r, V_SPAN, direct))
        # Most spans have no child waiting: look before paying for the method call.
        found = orphans.pop(key, None) if _lookup(orphans, key) is not None else None
        if found:
            for child in found:
                _pair(graph, edges, me, child)
        spans[key] = me
    for me, r in clients:
        if not me.paired:
            me.peer = peer_of(r)

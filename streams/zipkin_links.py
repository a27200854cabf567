"""Shared Zipkin server halves whose client half never arrived get their declared parent back.

Ingest gives the server half of a shared Zipkin span a derived id with the client half (same
Zipkin id) as parent (``ingest/zipkin.py``), which is how Zipkin links them. py_zipkin marks
every server span that joined an incoming context ``shared``, also when the caller minted a
fresh id for it (``create_http_headers_for_new_span``): no client half has that id, the parent
does not exist and the server's whole subtree would be cut off. Only the whole trace tells the
two cases apart, so this runs when streams decides a trace: a server span whose parent is not
in the trace and that carries ``zipkin.parent_id`` (the parent Zipkin declared) is re-parented
to it. Spans arriving after the decision are stored as they came.
"""

from __future__ import annotations

from streams.span_views import SpanView, first_attribute

KIND_SERVER = 2
ZIPKIN_PARENT_ID = ("zipkin.parent_id",)


def needs_whole_trace(records: list[SpanView]) -> bool:
    """Whether these spans hold a shared server half this module may have to re-parent, so
    their trace must wait for its decision even where the policies know it at once
    (keep-all decides on arrival, ``streams.partition_processor``)."""
    return any(r.kind == KIND_SERVER and first_attribute(r, ZIPKIN_PARENT_ID) for r in records)


def relink_orphaned_shared_servers(records: list[SpanView]) -> list[tuple[bytes, bytes]]:
    """Re-parent orphaned shared server halves in place; returns (old parent, new parent)."""
    ids = {r.span_id for r in records}
    moved: list[tuple[bytes, bytes]] = []
    for r in records:
        parent = r.parent_span_id
        if not parent or parent in ids or r.kind != KIND_SERVER:
            continue
        declared = first_attribute(r, ZIPKIN_PARENT_ID)
        try:
            new_parent = bytes.fromhex(declared)
        except ValueError:
            continue
        if len(new_parent) == 8 and new_parent != parent:
            r.parent_span_id = new_parent
            moved.append((parent, new_parent))
    return moved

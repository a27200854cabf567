"""Query-time trace adjusters (pure): what Jaeger's query service does to a trace it returns.

Stored spans are kept exactly as received; these functions correct, for display only, what the
Jaeger UI would otherwise draw wrongly. Each records a warning on the span it changed, so a user
can tell adjusted from recorded data (``raw=true`` on the API skips them all):

- :func:`dedupe_span_ids` — Zipkin clients reuse one span id for the client and the server
  side of a call ("shared spans"); the UI needs unique ids. The server span gets a fresh id
  and the shared id becomes its parent, and the server span's children follow it.
- :func:`correct_clock_skew` — hosts' clocks differ, so a child recorded on another host can
  start before its parent. Across a host boundary, a child that does not fit inside its parent
  is moved to the middle of the parent (network latency assumed equal both ways); a child that
  lasted longer than its parent (async work or a timed-out parent) is only moved so it does not
  start before the parent. The shift applies to the child's whole same-host subtree, since those
  spans share the child's clock. Shifts larger than ``max_delta_ns`` are not applied but
  reported, as are spans whose parent is missing (they are treated as roots).
- :func:`sort_tags_and_logs` — tags by key and logs by time, so two renderings of one span
  compare equal and the log list reads in order.

The adjusters work on :class:`SpanNode`, a few fields per span, not on the span's JSON, so a
20,000-span trace is adjusted without holding every span as a dict (query/jaeger_model.py keeps
span JSON text and re-renders only the spans an adjuster changed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

HOST_KEYS = ("host.id", "host.ip", "host.name")
# Jaeger's query service applies no skew correction unless configured; tracehouse corrects
# shifts up to one minute, beyond which the clocks are too far apart to guess the cause.
DEFAULT_MAX_CLOCK_SKEW_NS = 60_000_000_000
MAX_SPAN_ID = 2**64 - 1


@dataclass(slots=True)
class SpanNode:
    """What the adjusters need of one span; they change span_id, parent_id, shift_ns, warnings."""

    span_id: str
    parent_id: str  # "" for a root
    kind: str  # as rendered in span.kind ("server", "client", ...) or ""
    host: str  # host key of the span's resource, "" if unknown
    start_ns: int
    duration_ns: int
    shift_ns: int = 0
    warnings: list[str] = field(default_factory=list)
    # Set when span_id or parent_id was changed (the JSON must be re-rendered).
    relinked: bool = False

    @property
    def changed(self) -> bool:
        return self.relinked or self.shift_ns != 0 or bool(self.warnings)


def host_key(resource: dict[str, str]) -> str:
    """The resource's host identity: host.id, else host.ip, else host.name (Jaeger's order).

    host.ip stored as a JSON array (an OTLP array value) counts by its first address.
    """
    for key in HOST_KEYS:
        value = resource.get(key)
        if value:
            if key == "host.ip" and value.startswith("["):
                first = value[1:].split(",", 1)[0].strip().strip('"')
                if first and first != "]":
                    return first
                continue
            return value
    return ""


def format_delta(ns: int) -> str:
    """A signed Go-style duration (Jaeger's warnings print time.Duration values)."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(ns / 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_trim(ns / 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{_trim(rest / 1e9)}s"
    if hours:
        text = f"{hours}h{minutes}m{text}"
    elif minutes:
        text = f"{minutes}m{text}"
    return sign + text


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def dedupe_span_ids(spans: Sequence[SpanNode]) -> None:
    """Give server spans that share their id with a client span a fresh id (Zipkin B3).

    The fresh id is the next unused 64-bit value above the largest id of the trace that was
    assigned so far (starting from 1), so it is deterministic; the server span's parent becomes
    the shared id (the client side), and the server span's own children are re-pointed to it.
    """
    by_id: dict[str, list[SpanNode]] = {}
    for span in spans:
        by_id.setdefault(span.span_id, []).append(span)
    shared = {
        span_id
        for span_id, group in by_id.items()
        if len(group) > 1 and any(s.kind == "client" for s in group)
    }
    if not shared:
        return
    renamed: dict[str, str] = {}
    last = 0
    for span in spans:
        if span.kind != "server" or span.span_id not in shared or span.relinked:
            continue
        new_id = None
        candidate = last + 1
        while candidate <= MAX_SPAN_ID:
            text = f"{candidate:016x}"
            if text not in by_id:
                new_id = text
                break
            candidate += 1
        if new_id is None:  # every 64-bit id taken: unreachable in practice, still no crash
            span.warnings.append("cannot assign unique span ID, too many spans in the trace")
            continue
        last = candidate
        by_id[new_id] = [span]
        renamed[span.span_id] = new_id
        old = span.span_id
        span.parent_id, span.span_id, span.relinked = old, new_id, True
        span.warnings.append(
            f"span ID {old} is shared with a client span (Zipkin); shown as {new_id}"
        )
    moved = {id(span) for span in spans if span.relinked}
    for span in spans:  # children of the shared id now hang below the server side
        new_parent = renamed.get(span.parent_id)
        # A renamed server span keeps the shared id (its client side) as parent. Jaeger
        # re-points it too when two server spans share one id; here both stay below the client.
        if new_parent is not None and id(span) not in moved:
            span.parent_id, span.relinked = new_parent, True


def correct_clock_skew(spans: Sequence[SpanNode], max_delta_ns: int) -> None:
    """Shift children recorded on another host into their parents (see the module docstring).

    Needs unique span ids (run :func:`dedupe_span_ids` first); with duplicates left, the trace
    is not adjusted and the duplicates say why. Iterative (no recursion), so a 20,000-deep chain
    of spans is fine.
    """
    nodes: dict[str, SpanNode] = {}
    for span in spans:
        if span.span_id in nodes:
            span.warnings.append("duplicate span IDs; skipping clock skew adjustment")
        else:
            nodes[span.span_id] = span
    children: dict[str, list[SpanNode]] = {}
    roots: list[SpanNode] = []
    for span in nodes.values():
        if not span.parent_id:
            roots.append(span)
        elif span.parent_id in nodes and span.parent_id != span.span_id:
            children.setdefault(span.parent_id, []).append(span)
        else:
            span.warnings.append(
                f"parent span ID={span.parent_id} is not in the trace; "
                "skipping clock skew adjustment"
            )
            roots.append(span)
    # (node, parent, inherited skew (host, delta)); a parent is adjusted before its children.
    stack: list[tuple[SpanNode, SpanNode | None, tuple[str, int]]] = [
        (root, None, (root.host, 0)) for root in reversed(roots)
    ]
    seen: set[int] = set()
    while stack:
        node, parent, (skew_host, delta) = stack.pop()
        if id(node) in seen:  # a parent cycle (a -> b -> a) is cut, not followed forever
            continue
        seen.add(id(node))
        if parent is not None and (node.host != skew_host or not node.host):
            skew_host, delta = node.host, _skew(node, parent)
        _apply(node, delta, max_delta_ns)
        for child in reversed(children.get(node.span_id, [])):
            stack.append((child, node, (skew_host, delta)))
    for span in nodes.values():  # spans only reachable through a cycle
        if id(span) not in seen:
            span.warnings.append("span is part of a parent cycle; skipping clock skew adjustment")


def _skew(child: SpanNode, parent: SpanNode) -> int:
    """The shift that puts ``child`` inside ``parent`` (already adjusted), or 0 if it fits."""
    p_start = parent.start_ns + parent.shift_ns
    c_start = child.start_ns
    if child.duration_ns > parent.duration_ns:
        return p_start - c_start if c_start < p_start else 0
    if c_start >= p_start and c_start + child.duration_ns <= p_start + parent.duration_ns:
        return 0
    latency = (parent.duration_ns - child.duration_ns) // 2
    return p_start + latency - c_start


def _apply(node: SpanNode, delta: int, max_delta_ns: int) -> None:
    if delta == 0:
        return
    if abs(delta) > max_delta_ns:
        node.warnings.append(
            f"max clock skew adjustment delta of {format_delta(max_delta_ns)} exceeded; "
            f"not applying calculated delta of {format_delta(delta)}"
        )
        return
    node.shift_ns = delta
    node.warnings.append(f"This span's timestamps were adjusted by {format_delta(delta)}")


def adjust(spans: Sequence[SpanNode], max_delta_ns: int = DEFAULT_MAX_CLOCK_SKEW_NS) -> None:
    """Every structural adjuster, in Jaeger's order (ids unique before the skew tree is built)."""
    dedupe_span_ids(spans)
    correct_clock_skew(spans, max_delta_ns)


def sort_tags_and_logs(span: dict[str, Any]) -> list[str]:
    """Sort a Jaeger JSON span's tags by key and logs by time, in place; warnings for logs.

    Only logs out of time order are reported: they were recorded in an order that contradicts
    their timestamps, which a reader may want to know. Tag order carries no meaning (storage
    keeps the SDK's insertion order and the API appends the tags it derives), so sorting tags
    is silent: a warning on nearly every span would bury the warnings that matter. Sorting is
    stable, so equal keys and equal times keep their stored order.
    """
    span["tags"] = sorted(span.get("tags") or [], key=lambda t: t["key"])
    logs = span.get("logs") or []
    times = [log["timestamp"] for log in logs]
    if times == sorted(times):
        return []
    span["logs"] = sorted(logs, key=lambda log: log["timestamp"])
    return ["logs were not in time order; sorted by timestamp"]


class AdjustingTraceWriter:
    """What the v1 (Jaeger JSON) and v3 (OTLP JSON) trace writers share: the stored span
    counts that mark a trace truncated, and whether (and with which skew bound) the adjusters
    run. Subclasses set up their own per-trace state in :meth:`_start`.
    """

    def __init__(
        self,
        stored: Mapping[str, int] | None = None,
        *,
        adjusted: bool = True,
        max_clock_skew_ns: int = DEFAULT_MAX_CLOCK_SKEW_NS,
    ) -> None:
        # Spans stored per trace: a trace with fewer spans added is marked truncated. Kept by
        # reference and read only when traces are written: a store fills it as rows stream.
        self._stored: Mapping[str, int] = {} if stored is None else stored
        self._adjusted = adjusted
        self._max_skew = max_clock_skew_ns
        self._start()

    def _start(self) -> None:
        """Initialise the writer's own state (called once, at the end of ``__init__``)."""

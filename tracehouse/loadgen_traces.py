"""Realistic synthetic traces for load generation: fan-out call trees, errors, slow and late spans.

Calls follow a fixed layered topology (:func:`call_topology`): a tree under the entry service
whose leaves share one backend, so the service map looks like a real system. Pure and
deterministic: a :class:`TraceGenerator` built from the same profile and seed yields the
same traces (the same bytes for the same ``now_ns``), so a benchmark or a test can be replayed
exactly. Each call in a tree is a CLIENT span in the caller's service plus a SERVER span in the
callee's, which is what the service graph pairs. A fraction of traces hold back their last spans
as *late* spans that the sender delivers seconds later, to exercise the tail sampler's decision
cache. One attribute (``user.id``) draws from a configurable number of distinct values so
attribute cardinality is a knob. I/O lives in ``bench/loadgen.py``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tracehouse.otlp_build import ServiceScopes, kv

SERVICE_NAMES = (
    "frontend", "checkout", "cart", "payment", "inventory", "shipping", "catalog", "search",
    "recommendation", "ads", "currency", "email", "auth", "user", "review", "pricing",
    "fraud", "notification", "warehouse", "ledger",
)  # fmt: skip
OPERATIONS = ("GET /api", "POST /api", "Lookup", "Update", "List", "Reserve", "Quote")
MAX_SERVICES = len(SERVICE_NAMES)
MIN_SERVICES = 2
SERVER = trace_pb2.Span.SPAN_KIND_SERVER
CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT
ERROR = trace_pb2.Status.STATUS_CODE_ERROR


@dataclass(frozen=True)
class LoadProfile:
    """Shape of the generated traces; every rate is a probability in [0, 1]."""

    services: int = 10
    max_fanout: int = 3  # calls a server span makes: 0..max_fanout
    max_depth: int = 4  # call levels below the root
    max_spans: int = 40  # per trace, bounds the tree
    error_rate: float = 0.01  # per trace: its deepest server span fails and the error propagates
    slow_rate: float = 0.01  # per trace: the root takes 50x longer (tail-latency policies)
    late_trace_rate: float = 0.05  # traces that hold some spans back
    late_share: float = 0.3  # of such a trace's spans (the last ones), at least one
    cardinality: int = 1000  # distinct user.id values
    attributes: int = 4  # string attributes per span besides user.id

    def __post_init__(self) -> None:
        if not MIN_SERVICES <= self.services <= MAX_SERVICES:
            raise ValueError(f"services must be {MIN_SERVICES}..{MAX_SERVICES}")
        if self.max_fanout < 1 or self.max_depth < 1 or self.max_spans < 2:
            raise ValueError("max_fanout and max_depth >= 1, max_spans >= 2")
        if self.cardinality < 1 or self.attributes < 0:
            raise ValueError("cardinality >= 1, attributes >= 0")
        for name in ("error_rate", "slow_rate", "late_trace_rate", "late_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")


@dataclass
class GeneratedTrace:
    """One trace's spans (with their service), in start order; the last ``late`` are late."""

    trace_id: bytes
    spans: list[tuple[str, trace_pb2.Span]] = field(default_factory=list)
    late: int = 0

    @property
    def on_time(self) -> list[tuple[str, trace_pb2.Span]]:
        return self.spans[: len(self.spans) - self.late]

    @property
    def late_spans(self) -> list[tuple[str, trace_pb2.Span]]:
        return self.spans[len(self.spans) - self.late :]


@dataclass
class Batch:
    """One export request's worth of traces plus the request carrying their late spans."""

    request: trace_service_pb2.ExportTraceServiceRequest
    spans: int
    late_request: trace_service_pb2.ExportTraceServiceRequest | None
    late_spans: int
    trace_ids: list[bytes]


class TraceGenerator:
    def __init__(self, profile: LoadProfile | None = None, seed: int = 1) -> None:
        self.profile = profile or LoadProfile()
        self.rng = random.Random(seed)
        self.services = SERVICE_NAMES[: self.profile.services]
        self.callees = call_topology(self.services)

    def trace(self, start_ns: int) -> GeneratedTrace:
        """One call tree starting at ``start_ns``."""
        p, rng = self.profile, self.rng
        out = GeneratedTrace(rng.randbytes(16))
        slow = rng.random() < p.slow_rate
        error = rng.random() < p.error_rate
        duration = rng.randint(5_000_000, 200_000_000) * (50 if slow else 1)
        root = self._span(out, self.services[0], SERVER, b"", start_ns, duration)
        # Breadth-first: (server span, its service, depth); calls fit inside their parent.
        frontier = [(root, self.services[0], 0)]
        deepest_server = root
        while frontier:
            parent, service, depth = frontier.pop(0)
            if depth >= p.max_depth:
                continue
            span_len = parent.end_time_unix_nano - parent.start_time_unix_nano
            for _ in range(rng.randint(0 if depth else 1, p.max_fanout)):
                if len(out.spans) + 2 > p.max_spans:
                    break
                callees = self.callees[service]
                if not callees:
                    break
                callee = rng.choice(callees)
                offset = int(span_len * rng.uniform(0.01, 0.3))
                call_len = max(1000, int(span_len * rng.uniform(0.1, 0.6)))
                begin = parent.start_time_unix_nano + offset
                client = self._span(out, service, CLIENT, parent.span_id, begin, call_len)
                server_len = max(500, int(call_len * rng.uniform(0.7, 0.95)))
                server = self._span(
                    out, callee, SERVER, client.span_id, begin + (call_len - server_len) // 2,
                    server_len,
                )  # fmt: skip
                frontier.append((server, callee, depth + 1))
                deepest_server = server
        if error:
            _fail_up(out, deepest_server)
        if len(out.spans) > 1 and rng.random() < p.late_trace_rate:
            out.late = min(len(out.spans) - 1, max(1, round(len(out.spans) * p.late_share)))
        return out

    def _span(
        self, out: GeneratedTrace, service: str, kind: int, parent: bytes, start: int, length: int
    ) -> trace_pb2.Span:
        p, rng = self.profile, self.rng
        span = trace_pb2.Span(
            trace_id=out.trace_id,
            span_id=rng.randbytes(8),
            parent_span_id=parent,
            name=rng.choice(OPERATIONS),
            kind=kind,  # type: ignore[arg-type]
            start_time_unix_nano=start,
            end_time_unix_nano=start + length,
        )
        span.attributes.append(kv("user.id", f"user-{rng.randrange(p.cardinality)}"))
        for i in range(p.attributes):
            span.attributes.append(kv(f"app.attr{i}", f"{service}-v{i}"))
        out.spans.append((service, span))
        return span

    def batch(self, traces: int, now_ns: int) -> Batch:
        """``traces`` traces that started up to 2 s before ``now_ns``, as two export requests."""
        generated = [self.trace(now_ns - self.rng.randint(0, 2_000_000_000)) for _ in range(traces)]
        on_time = [s for t in generated for s in t.on_time]
        late = [s for t in generated for s in t.late_spans]
        return Batch(
            request=build_request(on_time),
            spans=len(on_time),
            late_request=build_request(late) if late else None,
            late_spans=len(late),
            trace_ids=[t.trace_id for t in generated],
        )


def call_topology(services: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Who may call whom: a fixed layered graph, so service maps look like real systems.

    Service i calls services 2i+1 and 2i+2 (a tree under the entry service ``services[0]``),
    and every other leaf also calls the last service, a shared backend (a database-like
    dependency with fan-in). No cycles, no service calling every other.
    """
    n = len(services)
    backend = services[-1]
    out: dict[str, tuple[str, ...]] = {backend: ()}
    for i, name in enumerate(services[:-1]):
        children = [services[c] for c in (2 * i + 1, 2 * i + 2) if c < n - 1]
        out[name] = tuple(children) if children else (backend,)
    return out


def _fail_up(out: GeneratedTrace, failed: trace_pb2.Span) -> None:
    """Mark ``failed`` and its ancestors as errors, as an exception propagating to the root."""
    by_id = {span.span_id: span for _, span in out.spans}
    span: trace_pb2.Span | None = failed
    while span is not None:
        span.status.code = ERROR
        span.status.message = "upstream failed"
        span = by_id.get(span.parent_span_id)


def build_request(
    spans: list[tuple[str, trace_pb2.Span]],
) -> trace_service_pb2.ExportTraceServiceRequest:
    """Group spans by service into one ResourceSpans each, as an SDK per service would send."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    scope = ServiceScopes(request, "load", "tracehouse.loadgen")
    for service, span in spans:
        scope(service).spans.append(span)
    return request


def span_count(request: trace_service_pb2.ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)

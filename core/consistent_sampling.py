"""Consistent probability head sampling at ingest (off by default).

Follows the OTel consistent-probability-sampling spec: a trace's 56-bit randomness ``R`` is
the ``rv`` sub-key of the ``ot`` tracestate entry when present, else the low 56 bits of the
trace id; a sampler with threshold ``T`` keeps the trace iff ``R >= T``, where
``T = 2**56 - round(ratio * 2**56)``. Because R is a property of the trace, every span of a
trace gets the same decision on every ingest node, so traces stay whole. A span that arrives with an
``ot=th`` threshold was already sampled upstream; when our threshold is stricter we rewrite
``th`` so downstream adjusted counts stay right, otherwise the span passes unchanged.
"""

from __future__ import annotations

from opentelemetry.proto.trace.v1 import trace_pb2

MAX_THRESHOLD = 1 << 56


def ratio_threshold(ratio: float) -> int:
    """Rejection threshold for a sampling ratio in (0, 1]; 0 keeps everything."""
    if not 0 < ratio <= 1:
        raise ValueError(f"sampling ratio must be in (0, 1], got {ratio}")
    # 2**56 - round(p * 2**56): exact for every p whose scaled value is an integer.
    return MAX_THRESHOLD - round(ratio * MAX_THRESHOLD)


def encode_threshold(threshold: int) -> str:
    """``th`` value: 14 hex digits with trailing zeros removed ("0" for keep-all)."""
    text = format(threshold, "014x").rstrip("0")
    return text or "0"


def parse_ot(trace_state: str) -> dict[str, str]:
    """The sub-keys of the ``ot`` tracestate entry, e.g. {"th": "c", "rv": "..."}."""
    for member in trace_state.split(","):
        key, sep, value = member.strip().partition("=")
        if sep and key == "ot":
            out: dict[str, str] = {}
            for part in value.split(";"):
                k, s, v = part.partition(":")
                if s:
                    out[k] = v
            return out
    return {}


def _hex56(text: str | None) -> int | None:
    if text is None or not 1 <= len(text) <= 14:
        return None
    try:
        return int(text.ljust(14, "0"), 16)
    except ValueError:
        return None


def randomness(trace_id: bytes, ot: dict[str, str]) -> int:
    rv = ot.get("rv")
    if rv is not None and len(rv) == 14:
        value = _hex56(rv)
        if value is not None:
            return value
    return int.from_bytes(trace_id[9:16], "big")


def with_threshold(trace_state: str, threshold: int) -> str:
    """``trace_state`` with ``ot=th`` set to ``threshold``, other entries kept in order."""
    th = f"th:{encode_threshold(threshold)}"
    members = [m.strip() for m in trace_state.split(",") if m.strip()]
    for i, member in enumerate(members):
        key, _, value = member.partition("=")
        if key == "ot":
            parts = [p for p in value.split(";") if p and not p.startswith("th:")]
            members[i] = "ot=" + ";".join([th, *parts])
            # The spec puts the modified entry first (most recently updated vendor).
            members.insert(0, members.pop(i))
            return ",".join(members)
    return ",".join([f"ot={th}", *members])


def keep_span(span_trace_id: bytes, trace_state: str, threshold: int) -> tuple[bool, str | None]:
    """(keep?, new trace_state or None when unchanged)."""
    ot = parse_ot(trace_state) if trace_state else {}
    if randomness(span_trace_id, ot) < threshold:
        return False, None
    incoming = _hex56(ot.get("th"))
    if incoming is not None and incoming >= threshold:
        return True, None
    return True, with_threshold(trace_state, threshold)


def sample(data: trace_pb2.TracesData, threshold: int) -> int:
    """Drop spans of unsampled traces from a ``TracesData`` in place; returns spans dropped."""
    if threshold <= 0:
        return 0
    dropped = 0
    for rs in data.resource_spans:
        for ss in rs.scope_spans:
            kept: list[trace_pb2.Span] = []
            for span in ss.spans:
                keep, state = keep_span(span.trace_id, span.trace_state, threshold)
                if keep:
                    if state is not None:
                        span.trace_state = state
                    kept.append(span)
            if len(kept) != len(ss.spans):
                dropped += len(ss.spans) - len(kept)
                # Copy before clearing: clearing the repeated field releases the originals.
                copies = []
                for src in kept:
                    copy = trace_pb2.Span()
                    copy.CopyFrom(src)
                    copies.append(copy)
                del ss.spans[:]
                ss.spans.extend(copies)
    return dropped

"""Which Zipkin JSON model a span list is written in, decided by its shape.

Zipkin v1 and v2 JSON are both arrays of objects with ``traceId``/``id``/``name``, so a v1 body
posted to ``/api/v2/spans`` (zipkin-js ``HttpLogger``'s default encoder does exactly that) used
to be read as v2 and stored with empty service names, kind INTERNAL and its tags lost. Each
model has fields the other does not:

- v1: ``binaryAnnotations``, and ``annotations`` whose items carry an ``endpoint``;
- v2: ``localEndpoint``, ``remoteEndpoint``, ``kind``, ``tags``, ``shared``.

A span with neither (ids, name and times only) reads the same in both models. A body with
marks of one model sent to the other's endpoint is refused whole with a 400 that names the
model and the endpoint to use: guessing would store a different span than the client meant.
"""

from __future__ import annotations

from typing import Any

from ingest.errors import BodyError

V1_FIELDS = ("binaryAnnotations",)
V2_FIELDS = ("localEndpoint", "remoteEndpoint", "kind", "tags", "shared")
WRONG_VERSION = "zipkin_wrong_version"
MIXED_VERSIONS = "zipkin_mixed_versions"
_ENDPOINT = {1: "/api/v1/spans", 2: "/api/v2/spans"}


def _marks(span: Any) -> tuple[str | None, str | None]:
    """(a v1 field this span has, a v2 field this span has), each None when absent."""
    if not isinstance(span, dict):
        return None, None
    v1 = next((f for f in V1_FIELDS if f in span), None)
    if v1 is None:
        annotations = span.get("annotations")
        if isinstance(annotations, list) and any(
            isinstance(a, dict) and "endpoint" in a for a in annotations
        ):
            v1 = "annotations[].endpoint"
    v2 = next((f for f in V2_FIELDS if f in span), None)
    return v1, v2


def body_version(spans: list[Any]) -> int | None:
    """1 or 2 when some span has a field only that model has, None when no span tells.

    Raises BodyError(400, ``zipkin_mixed_versions``) when the body has marks of both.
    """
    seen_v1: str | None = None
    seen_v2: str | None = None
    for span in spans:
        v1, v2 = _marks(span)
        seen_v1 = seen_v1 or v1
        seen_v2 = seen_v2 or v2
        if seen_v1 and seen_v2:
            raise BodyError(
                400,
                MIXED_VERSIONS,
                f"body mixes Zipkin v1 ({seen_v1}) and v2 ({seen_v2}) span fields; "
                "send each version to its own endpoint",
            )
    if seen_v1:
        return 1
    return 2 if seen_v2 else None


def require_version(spans: list[Any], expected: int) -> None:
    """Raise BodyError(400, ``zipkin_wrong_version``) when the body is the other model."""
    found = body_version(spans)
    if found is not None and found != expected:
        field = next(m for s in spans for m in _marks(s)[found - 1 : found] if m)
        raise BodyError(
            400,
            WRONG_VERSION,
            f"body is Zipkin v{found} JSON (a span has {field!r}) but was sent to "
            f"{_ENDPOINT[expected]}; send it to {_ENDPOINT[found]}",
        )

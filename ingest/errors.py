"""Errors every receiver maps to its protocol's status codes (HTTP status, gRPC code)."""

from __future__ import annotations

import json
from typing import Any


class BodyError(Exception):
    """The request body cannot be used: ``status`` is the HTTP code, ``reason`` the metric label."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def parse_json_body(body: bytes) -> Any:
    """The JSON document of a request body; undecodable text or JSON is a 400 ``invalid_json``,
    the same reason label for every JSON receiver."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BodyError(400, "invalid_json", f"body is not valid JSON: {exc}") from exc


class Unauthenticated(Exception):
    """No or unknown bearer token / API key while auth is on."""


class RateLimited(Exception):
    """The tenant's span budget is spent; the client should retry after ``retry_after`` s."""

    def __init__(self, tenant: str, retry_after: float) -> None:
        super().__init__(f"tenant {tenant!r} is over its span rate limit")
        self.tenant = tenant
        self.retry_after = retry_after

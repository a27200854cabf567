"""Errors raised in one component and handled in another (ingest and query share tenancy)."""

from __future__ import annotations


class Unauthenticated(Exception):
    """No or unknown bearer token / API key while auth is on."""


class RateLimited(Exception):
    """The tenant's span budget is spent; the client should retry after ``retry_after`` s."""

    def __init__(self, tenant: str, retry_after: float) -> None:
        super().__init__(f"tenant {tenant!r} is over its span rate limit")
        self.tenant = tenant
        self.retry_after = retry_after

"""Query-side tenancy: the same tokens as ingest, so a tenant reads only what it wrote.

The token -> tenant map is ingest's (``ingest_auth_tokens`` / ``ingest_auth_file``), loaded
with the same code; with no tokens configured auth is off and everyone is tenant "".
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from core.errors import Unauthenticated
from core.settings import Settings
from core.tenancy import TenantConfig, load_config, resolve_tenant, token_from_headers


def tenant_config(settings: Settings) -> TenantConfig:
    return load_config(settings.ingest_auth_tokens, settings.ingest_auth_file, 0, 0)


def resolver(config: TenantConfig) -> Callable[[web.Request], str | None]:
    """A request -> tenant function for query.api.build_app; None means 401."""

    def tenant_of(request: web.Request) -> str | None:
        try:
            return resolve_tenant(config, token_from_headers(request.headers.get))
        except Unauthenticated:
            return None

    return tenant_of

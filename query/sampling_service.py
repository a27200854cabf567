"""Which strategy a (tenant, service) gets, and who may ask: shared by the HTTP and gRPC bindings.

The file says what operators fixed; adaptive sampling (query/adaptive_sampling.py), when on,
replaces the per-operation probabilities of services the file does not name with the ones it
last calculated. Both bindings resolve the tenant the same way: auth off -> tenant ""; auth
on -> the token's tenant, an unknown token refused, and a request without any token served the
file's top-level strategies (Jaeger SDKs cannot send credentials with their sampling poll, and
the top level names no tenant's data).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Protocol

from core.errors import Unauthenticated
from core.tenancy import TenantConfig, resolve_tenant
from query.sampling_file import StrategiesFile
from query.sampling_strategies import MAX_NAME_CHARS, Strategy

SOURCE_FILE, SOURCE_ADAPTIVE, SOURCE_DEFAULT = "file", "adaptive", "default"
# Outcomes counted per binding: ok, bad_request, unauthenticated, error.
SamplingCounters = Counter[tuple[str, str]]


class AdaptiveOverlay(Protocol):
    def strategy(self, tenant: str, service: str, fallback: Strategy) -> Strategy | None: ...


class SamplingService:
    def __init__(
        self,
        strategies: StrategiesFile,
        auth: TenantConfig,
        adaptive: AdaptiveOverlay | None = None,
    ) -> None:
        self.file = strategies
        self.auth = auth
        self.adaptive = adaptive
        self.counters: SamplingCounters = Counter()

    def tenant(self, token: str | None) -> str:
        """The tenant of a request; raises Unauthenticated for a token that is not known."""
        if not self.auth.auth_enabled or token is None:
            return ""
        return resolve_tenant(self.auth, token)

    def strategy(self, tenant: str, service: str) -> Strategy:
        return self.resolve(tenant, service)[0]

    def resolve(self, tenant: str, service: str) -> tuple[Strategy, str]:
        """The strategy SDKs get and where it comes from: ``file`` (the service is named),
        ``adaptive`` (calculated probabilities) or ``default`` (the book's default). One code
        path for the SDK bindings and the UI's overview (query/sampling_overview_http.py)."""
        book = self.file.current.book(tenant)
        fixed = book.for_service(service)
        if service in book.services:
            return fixed, SOURCE_FILE
        if self.adaptive is not None:
            adapted = self.adaptive.strategy(tenant, service, fixed)
            if adapted is not None:
                return adapted, SOURCE_ADAPTIVE
        return fixed, SOURCE_DEFAULT

    def named_services(self, tenant: str) -> list[str]:
        """Services the tenant's strategies file names."""
        return sorted(self.file.current.book(tenant).services)


def check_service(values: list[str]) -> str:
    """The ``service`` parameter, given exactly once (Jaeger's rule); ValueError otherwise."""
    if len(values) != 1:
        raise ValueError("'service' parameter must be provided once")
    if len(values[0]) > MAX_NAME_CHARS:
        raise ValueError(f"'service' is longer than {MAX_NAME_CHARS} characters")
    return values[0]


TokenGetter = Callable[[str], str | None]
__all__ = ["SamplingService", "Unauthenticated", "check_service"]

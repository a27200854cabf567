"""Per-tenant authentication, rate limits and the tenant stamp on every ResourceSpans.

Tokens come from ``ingest_auth_tokens`` (``token=tenant,...``) and/or the YAML file
``ingest_auth_file``; with neither, auth is off and the tenant is "". Every accepted
ResourceSpans gets the resource attribute ``tracehouse.tenant`` set by ingest (overwriting any
client-supplied value, so a tenant cannot write into another tenant's data); streams copy it
into the Avro ``tenant_id`` and the sink into ClickHouse ``TenantId``.

Limits are token buckets in spans/s per tenant so one noisy tenant is answered 429/
RESOURCE_EXHAUSTED with a Retry-After instead of starving the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from core.errors import RateLimited, Unauthenticated

TENANT_ATTRIBUTE = "tracehouse.tenant"
API_KEY_HEADERS = ("x-api-key", "api-key")


@dataclass(frozen=True)
class Limit:
    spans_per_second: float  # 0 = unlimited
    burst: float


@dataclass
class TenantConfig:
    tokens: dict[str, str] = field(default_factory=dict)  # token -> tenant
    limits: dict[str, Limit] = field(default_factory=dict)  # tenant -> limit
    default_limit: Limit = Limit(0, 0)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.tokens)

    def limit_for(self, tenant: str) -> Limit:
        return self.limits.get(tenant, self.default_limit)


def parse_token_list(text: str) -> dict[str, str]:
    """``"tok1=acme, tok2=globex"`` -> {token: tenant}."""
    tokens: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        token, sep, tenant = item.partition("=")
        if not sep or not token.strip() or not tenant.strip():
            raise ValueError(f"auth token entry {item!r} is not token=tenant")
        tokens[token.strip()] = tenant.strip()
    return tokens


def parse_tenant_file(doc: Mapping[str, Any], default_burst_factor: float = 2.0) -> TenantConfig:
    """The YAML layout::

    tenants:
      acme:
        tokens: [secret-1, secret-2]
        spans_per_second: 50000   # optional, else the default limit
        burst: 100000             # optional, default 2 x rate
    """
    config = TenantConfig()
    for tenant, spec in (doc.get("tenants") or {}).items():
        spec = spec or {}
        for token in spec.get("tokens") or []:
            config.tokens[str(token)] = str(tenant)
        if "spans_per_second" in spec:
            rate = float(spec["spans_per_second"])
            burst = float(spec.get("burst", rate * default_burst_factor))
            config.limits[str(tenant)] = Limit(rate, burst)
    return config


def load_config(
    tokens_text: str, auth_file: str, default_rate: float, default_burst: float
) -> TenantConfig:
    config = TenantConfig()
    if auth_file:
        config = parse_tenant_file(yaml.safe_load(Path(auth_file).read_text()) or {})
    config.tokens.update(parse_token_list(tokens_text))
    config.default_limit = Limit(default_rate, default_burst or default_rate * 2)
    return config


def token_from_headers(get: Callable[[str], str | None]) -> str | None:
    """Bearer token from ``Authorization`` or an API key header (case-insensitive getter)."""
    auth = get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for name in API_KEY_HEADERS:
        key = get(name)
        if key:
            return key.strip()
    return None


def resolve_tenant(config: TenantConfig, token: str | None) -> str:
    """The caller's tenant; "" with auth off; raises Unauthenticated for a bad token."""
    if not config.auth_enabled:
        return ""
    if token is None:
        raise Unauthenticated("missing bearer token or API key")
    tenant = config.tokens.get(token)
    if tenant is None:
        raise Unauthenticated("unknown bearer token or API key")
    return tenant


def stamp_tenant(data: trace_pb2.TracesData, tenant: str) -> bool:
    """Set ``tracehouse.tenant`` on every resource (removed when the tenant is ""); returns
    whether ``data`` changed (ingest then cannot publish the request's own bytes)."""
    changed = False
    for rs in data.resource_spans:
        attrs = rs.resource.attributes
        for i in range(len(attrs) - 1, -1, -1):
            if attrs[i].key == TENANT_ATTRIBUTE:
                del attrs[i]
                changed = True
        if tenant:
            attrs.append(
                common_pb2.KeyValue(
                    key=TENANT_ATTRIBUTE, value=common_pb2.AnyValue(string_value=tenant)
                )
            )
            changed = True
    return changed


class TokenBuckets:
    """One token bucket per tenant; ``clock`` is injectable so tests need not sleep."""

    def __init__(self, config: TenantConfig, clock: Callable[[], float] = time.monotonic):
        self._config = config
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, last refill)

    def take(self, tenant: str, spans: int) -> None:
        """Spend ``spans`` tokens or raise RateLimited with the wait until they would exist.

        A request larger than the burst is admitted when the bucket is full (the bucket goes
        into debt), otherwise such a request could never pass.
        """
        limit = self._config.limit_for(tenant)
        if limit.spans_per_second <= 0 or spans <= 0:
            return
        now = self._clock()
        tokens, last = self._state.get(tenant, (limit.burst, now))
        tokens = min(limit.burst, tokens + (now - last) * limit.spans_per_second)
        needed = min(float(spans), limit.burst)
        if tokens < needed:
            self._state[tenant] = (tokens, now)
            raise RateLimited(tenant, (needed - tokens) / limit.spans_per_second)
        self._state[tenant] = (tokens - spans, now)

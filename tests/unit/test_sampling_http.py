"""The HTTP binding of remote sampling, in process: tenants, refusals and counters."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from core.tenancy import TenantConfig
from query.sampling_file import StrategiesFile
from query.sampling_http import build_sampling_app
from query.sampling_service import SamplingService
from query.sampling_strategies import PROBABILISTIC, Strategy, parse_strategies

DOC = {
    "default_strategy": {"type": "probabilistic", "param": 0.1},
    "tenants": {"acme": {"default_strategy": {"type": "probabilistic", "param": 0.7}}},
}


def service_with(doc: Any, auth: TenantConfig, adaptive: Any = None) -> SamplingService:
    file = StrategiesFile("", 0.001)
    file._current = parse_strategies(doc)
    return SamplingService(file, auth, adaptive)


async def fetch(
    svc: SamplingService, path: str, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    async with TestClient(TestServer(build_sampling_app(svc))) as client:
        resp = await client.get(path, headers=headers or {})
        return resp.status, await resp.text()


def test_tenants_by_token_and_anonymous_polls() -> None:
    svc = service_with(DOC, TenantConfig(tokens={"secret": "acme"}))

    async def run() -> None:
        status, body = await fetch(svc, "/sampling?service=a", {"Authorization": "Bearer secret"})
        assert status == 200 and json.loads(body)["probabilisticSampling"]["samplingRate"] == 0.7
        # SDK polls carry no credentials: the file's top level, which names no tenant's data.
        status, body = await fetch(svc, "/sampling?service=a")
        assert status == 200 and json.loads(body)["probabilisticSampling"]["samplingRate"] == 0.1
        status, body = await fetch(svc, "/sampling?service=a", {"x-api-key": "wrong"})
        assert status == 401 and "unknown" in body
        status, body = await fetch(svc, "/metrics")
        assert 'outcome="unauthenticated"} 1' in body and 'outcome="ok"} 2' in body

    asyncio.run(run())


def test_auth_off_ignores_tokens_and_a_failing_overlay_is_a_500() -> None:
    class Broken:
        def strategy(self, tenant: str, service: str, fallback: Strategy) -> Strategy | None:
            raise RuntimeError("boom")

    class Fixed:
        def strategy(self, tenant: str, service: str, fallback: Strategy) -> Strategy | None:
            return Strategy(PROBABILISTIC, 0.42) if service == "adaptive" else None

    async def run() -> None:
        svc = service_with(DOC, TenantConfig())
        status, body = await fetch(svc, "/?service=a", {"Authorization": "Bearer whatever"})
        assert status == 200 and json.loads(body)["probabilisticSampling"]["samplingRate"] == 0.1
        status, body = await fetch(
            service_with(DOC, TenantConfig(), Broken()), "/sampling?service=a"
        )
        assert status == 500 and body == "internal error"
        fixed = service_with(DOC, TenantConfig(), Fixed())
        status, body = await fetch(fixed, "/sampling?service=adaptive")
        assert json.loads(body)["probabilisticSampling"]["samplingRate"] == 0.42
        status, body = await fetch(fixed, "/sampling?service=other")
        assert json.loads(body)["probabilisticSampling"]["samplingRate"] == 0.1

    asyncio.run(run())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["service", "Service", "x", ""]),
            st.text(max_size=1100),
        ),
        max_size=4,
    )
)
def test_any_query_is_answered_200_or_400_and_counted(params: list[tuple[str, str]]) -> None:
    svc = service_with(DOC, TenantConfig())

    async def run() -> int:
        async with TestClient(TestServer(build_sampling_app(svc))) as client:
            resp = await client.get("/sampling", params=params)
            body = await resp.text()
            if resp.status == 200:
                json.loads(body)
            return resp.status

    status = asyncio.run(run())
    services = [v for k, v in params if k == "service"]
    expected = 200 if len(services) == 1 and len(services[0]) <= 1024 else 400
    assert status == expected
    assert sum(svc.counters.values()) == 1

"""Per-tenant auth end to end: ingest stamps the tenant, query and UI API show only its data."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.local.stack import LocalStack
from tests.conftest import running_pipeline
from tests.integration.helpers import wait_until
from tracehouse.demo_traces import make_request

TOKENS = {"tok-acme": "acme", "tok-globex": "globex"}


@pytest.fixture
def tenant_stack(services: LocalStack, tmp_path: Path) -> Iterator[LocalStack]:
    tokens = ",".join(f"{t}={n}" for t, n in TOKENS.items())
    with running_pipeline(services, tmp_path, ingest_auth_tokens=tokens) as stack:
        yield stack


def call(url: str, token: str | None = None, body: bytes | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/x-protobuf"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        url, data=body, headers=headers, method="POST" if body is not None else "GET"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if body is None else raw
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if body is None else raw


def test_each_tenant_sees_only_its_own_traces(tenant_stack: LocalStack) -> None:
    s = tenant_stack.settings
    ingest = f"http://127.0.0.1:{s.ingest_http_port}/v1/traces"
    query = f"http://127.0.0.1:{s.query_http_port}"
    acme = make_request(traces=6, seed=1)
    globex = make_request(traces=4, seed=2)
    assert call(ingest, None, acme.SerializeToString())[0] == 401
    assert call(ingest, "tok-acme", acme.SerializeToString())[0] == 200
    assert call(ingest, "tok-globex", globex.SerializeToString())[0] == 200

    def ids(req: Any) -> set[str]:
        return {
            s.trace_id.hex() for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans
        }

    def visible(token: str) -> set[str]:
        status, body = call(f"{query}/api/traces?service=frontend&limit=100&lookback=1h", token)
        assert status == 200
        return {t["traceID"] for t in body["data"]}

    assert wait_until(lambda: visible("tok-acme"), lambda v: v == ids(acme), timeout=60)
    assert wait_until(lambda: visible("tok-globex"), lambda v: v == ids(globex), timeout=60)
    other = next(iter(ids(globex)))
    assert call(f"{query}/api/traces/{other}", "tok-acme")[0] == 404
    assert call(f"{query}/api/traces/{other}", "tok-globex")[0] == 200
    for token in (None, "wrong"):
        status, body = call(f"{query}/api/services", token)
        assert status == 401 and body["errors"][0]["code"] == 401
    assert call(f"{query}/health")[0] == 200

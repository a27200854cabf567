"""Per-tenant auth and limits end to end, head sampling, and two ingest processes sharing
one set of ports with SO_REUSEPORT."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from core.settings import Settings
from deploy.local.stack import LocalStack
from ingest.grpc_receiver import SERVICE
from tests.conftest import isolated_settings
from tests.integration.ingest_helpers import ch_rows, metric, post, scrape, wait_for_trace_rows
from tracehouse.demo_traces import make_request

PROTOBUF = "application/x-protobuf"


def _ids(req: ExportTraceServiceRequest) -> list[str]:
    return sorted(
        {s.trace_id.hex() for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans}
    )


@pytest.fixture
def pipeline_settings(services: LocalStack, tmp_path: Path) -> Settings:
    """Auth on (two tenants, one limited to 100 spans/s) and 50% consistent head sampling."""
    auth_file = tmp_path / "tenants.yaml"
    auth_file.write_text(
        "tenants:\n"
        "  acme:\n    tokens: [acme-secret]\n"
        "  tiny:\n    tokens: [tiny-secret]\n    spans_per_second: 100\n    burst: 100\n"
    )
    settings = isolated_settings(services).with_(
        ingest_auth_file=str(auth_file),
        ingest_auth_tokens="globex-key=globex",
        ingest_sampling_ratio=0.5,
    )
    LocalStack(settings, services.run_dir, say=lambda _m: None).prepare()
    return settings


def test_tenants_limits_and_sampling(pipeline: LocalStack) -> None:
    s = pipeline.settings
    url = f"http://127.0.0.1:{s.ingest_http_port}/v1/traces"
    acme = make_request(traces=40, seed=1)
    globex = make_request(traces=40, seed=2)

    assert post(url, acme.SerializeToString(), PROTOBUF)[0] == 401
    assert post(url, acme.SerializeToString(), PROTOBUF, {"Authorization": "Bearer nope"})[0] == 401
    status, _, _ = post(
        url, acme.SerializeToString(), PROTOBUF, {"Authorization": "Bearer acme-secret"}
    )
    assert status == 200
    assert post(url, globex.SerializeToString(), PROTOBUF, {"X-API-Key": "globex-key"})[0] == 200

    # tiny: 100 spans/s, burst 100. 15 traces = 75 spans pass, the next 75 are throttled.
    tiny = {"Authorization": "Bearer tiny-secret"}
    assert post(url, make_request(15, seed=3).SerializeToString(), PROTOBUF, tiny)[0] == 200
    status, headers, _ = post(url, make_request(15, seed=4).SerializeToString(), PROTOBUF, tiny)
    assert status == 429 and int(headers["Retry-After"]) >= 1

    # gRPC: same auth and the same (now spent) bucket -> RESOURCE_EXHAUSTED with RetryInfo.
    with grpc.insecure_channel(f"127.0.0.1:{s.ingest_grpc_port}") as channel:
        export = channel.unary_unary(f"/{SERVICE}/Export")
        body = make_request(2, seed=9).SerializeToString()
        with pytest.raises(grpc.RpcError) as info:
            export(body, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The bucket refills at 100 spans/s; back-to-back 100-span requests spend it.
        tiny_md = (("authorization", "Bearer tiny-secret"),)
        burst = make_request(20, seed=8).SerializeToString()
        err: grpc.RpcError | None = None
        for _ in range(5):
            try:
                export(burst, timeout=10, metadata=tiny_md)
            except grpc.RpcError as exc:
                err = exc
                break
        assert err is not None
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(err.trailing_metadata())
        detail = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        retry = error_details_pb2.RetryInfo()
        assert (
            detail.details[0].Unpack(retry) and retry.retry_delay.ToTimedelta().total_seconds() > 0
        )

    m = scrape(s.ingest_http_port)
    sampled_out = metric(m, "tracehouse_ingest_spans_sampled_out_total", protocol="otlp_http")
    accepted = metric(m, "tracehouse_ingest_spans_accepted_total", protocol="otlp_http")
    received = metric(m, "tracehouse_ingest_spans_received_total", protocol="otlp_http")
    limited = metric(
        m, "tracehouse_ingest_spans_rejected_total", protocol="otlp_http", reason="rate_limited"
    )
    assert limited == 75
    assert received == 200 + 200 + 75 + 75
    assert received == accepted + sampled_out + limited
    assert 0.3 < sampled_out / 475 < 0.7  # 50% of traces, whole traces only
    grpc_limited = metric(
        m, "tracehouse_ingest_spans_rejected_total", protocol="otlp_grpc", reason="rate_limited"
    )
    assert grpc_limited >= 100 and grpc_limited % 100 == 0
    per_tenant = {
        t: metric(m, "tracehouse_ingest_tenant_spans_accepted_total", tenant=t)
        for t in ("acme", "globex", "tiny")
    }
    assert per_tenant["acme"] > 0 and per_tenant["globex"] > 0 and per_tenant["tiny"] > 0
    grpc_accepted = metric(m, "tracehouse_ingest_spans_accepted_total", protocol="otlp_grpc")
    assert sum(per_tenant.values()) == accepted + grpc_accepted

    acme_ids, globex_ids = _ids(acme), _ids(globex)
    all_ids = acme_ids + globex_ids + _ids(make_request(15, seed=3))
    rows = wait_for_trace_rows(s, all_ids, int(accepted))
    assert len(rows) == accepted
    tenants = {r[0]: r[10] for r in rows}
    assert {tenants[t] for t in acme_ids if t in tenants} == {"acme"}
    assert {tenants[t] for t in globex_ids if t in tenants} == {"globex"}
    # Whole traces kept or dropped: every stored trace has all 5 spans.
    per_trace: dict[str, int] = {}
    for r in rows:
        per_trace[r[0]] = per_trace.get(r[0], 0) + 1
    assert set(per_trace.values()) == {5}
    # The sampling threshold is recorded in each kept span's tracestate (ot=th:8 for 50%).
    states = ch_rows(
        s,
        "SELECT DISTINCT TraceState FROM otel_traces WHERE TraceId IN {t:Array(String)}",
        t=all_ids,
    )
    assert states == [("ot=th:8",)]


@pytest.fixture
def two_ingests(pipeline_settings: Settings, tmp_path: Path) -> Iterator[LocalStack]:
    stack = LocalStack(pipeline_settings, tmp_path, say=lambda _m: None)
    env = {"TRACEHOUSE_INGEST_REUSE_PORT": "true"}
    health = f"http://127.0.0.1:{pipeline_settings.ingest_http_port}/health"
    try:
        stack.start_component("ingest", health, extra_env=env)
        stack.start_component("ingest", health, extra_env=env)
        yield stack
    finally:
        stack.stop()


def test_two_ingest_processes_share_ports(two_ingests: LocalStack) -> None:
    s = two_ingests.settings
    assert not two_ingests.dead() and len(two_ingests.children) == 2
    # The second process answers once it has bound the port (the first one answered its
    # health check during startup); new connections then spread over both.
    pids: set[int] = set()
    deadline = time.monotonic() + 30
    while len(pids) < 2 and time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{s.ingest_http_port}/health") as resp:
            pids.add(json.loads(resp.read())["pid"])
        time.sleep(0.05)
    assert pids == {c.proc.pid for c in two_ingests.children}
    headers = {"Authorization": "Bearer acme-secret"}
    for seed in range(6):
        body = make_request(traces=5, seed=seed).SerializeToString()
        assert (
            post(f"http://127.0.0.1:{s.ingest_http_port}/v1/traces", body, PROTOBUF, headers)[0]
            == 200
        )
    # Both processes also bound gRPC and Zipkin with SO_REUSEPORT and are still running.
    assert not two_ingests.dead()

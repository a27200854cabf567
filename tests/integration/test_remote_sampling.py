"""Remote sampling with the real samplers: the query process serves a strategies file on
/sampling (5778-style port), /api/sampling (query port) and SamplingManager over gRPC; the npm
JaegerRemoteSampler and the Python jaeger-client fetch it and sample at what it says."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from core.settings import Settings
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from tests.conftest import isolated_settings
from tests.sampling_idl import message

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
STRATEGIES: dict[str, Any] = {
    "default_strategy": {"type": "probabilistic", "param": 0.5},
    "service_strategies": [
        {"service": "py-prob", "type": "probabilistic", "param": 0.25},
        {
            "service": "per-op",
            "type": "probabilistic",
            "param": 0.5,
            "default_lower_bound_traces_per_second": 0,
            "operation_strategies": [
                {"operation": "rare", "type": "probabilistic", "param": 0.9},
                {"operation": "busy", "type": "probabilistic", "param": 0.05},
            ],
        },
        {"service": "py-rate", "type": "ratelimiting", "param": 20},
    ],
}
SPANS = 3000


def within_binomial(sampled: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """|sampled/n - p| within ``sigmas`` standard deviations of Binomial(n, p)/n (one flaky
    run in ~1.7 million at 5 sigma)."""
    return abs(sampled / n - p) <= sigmas * math.sqrt(p * (1 - p) / n) + 1e-12


@pytest.fixture(scope="module")
def sampling_stack(
    services: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Path]]:
    run_dir = tmp_path_factory.mktemp("sampling")
    strategies = run_dir / "strategies.json"
    strategies.write_text(json.dumps(STRATEGIES))
    settings = isolated_settings(services).with_(
        sampling_strategies_file=str(strategies),
        sampling_reload_seconds=0.2,
        # Adaptive on, fast: services the file does not name follow the RED throughput.
        sampling_adaptive=True,
        sampling_calculation_interval_seconds=2,
        sampling_calculation_delay_seconds=0,
        sampling_aggregation_buckets=1,
        sampling_target_samples_per_second=1.0,
        sampling_delta_tolerance=0.0,
    )
    stack = LocalStack(settings, run_dir, say=lambda _m: None)
    stack.prepare()
    try:
        stack.start_component("query", f"http://127.0.0.1:{settings.query_http_port}/health")
        yield settings, strategies
    finally:
        stack.stop()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def test_http_endpoints_answer_jaegers_json(sampling_stack: tuple[Settings, Path]) -> None:
    s, _ = sampling_stack
    for url in (
        f"http://127.0.0.1:{s.sampling_http_port}/sampling?service=py-prob",
        f"http://127.0.0.1:{s.sampling_http_port}/?service=py-prob",
        f"http://127.0.0.1:{s.query_http_port}/api/sampling?service=py-prob",
    ):
        status, ctype, body = get(url)
        assert status == 200 and ctype.startswith("application/json"), (url, body)
        assert json.loads(body) == {
            "strategyType": "PROBABILISTIC",
            "probabilisticSampling": {"samplingRate": 0.25},
        }
    for query in ("", "?service=a&service=b", "?service=" + "x" * 2000):
        status, _, body = get(f"http://127.0.0.1:{s.sampling_http_port}/sampling{query}")
        assert status == 400 and body
    status, _, body = get(f"http://127.0.0.1:{s.sampling_http_port}/metrics")
    assert 'binding="http",outcome="bad_request"} 3' in body


def test_grpc_sampling_manager(sampling_stack: tuple[Settings, Path]) -> None:
    s, _ = sampling_stack
    request_cls = message("SamplingStrategyParameters")
    response_cls = message("SamplingStrategyResponse")
    with grpc.insecure_channel(f"127.0.0.1:{s.sampling_grpc_port}") as channel:
        call = channel.unary_unary(
            "/jaeger.api_v2.SamplingManager/GetSamplingStrategy",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_cls.FromString,
        )
        reply = call(request_cls(serviceName="per-op"), timeout=5)
        assert reply.strategyType == 0
        assert reply.probabilisticSampling.samplingRate == 0.5
        ops = {
            o.operation: o.probabilisticSampling.samplingRate
            for o in reply.operationSampling.perOperationStrategies
        }
        assert ops == {"rare": 0.9, "busy": 0.05}
        assert reply.operationSampling.defaultSamplingProbability == 0.5
        rate = call(request_cls(serviceName="py-rate"), timeout=5)
        assert rate.strategyType == 1 and rate.rateLimitingSampling.maxTracesPerSecond == 20


def node_sampled(endpoint: str, service: str, ops: list[str]) -> dict[str, int]:
    node = shutil.which("node")
    if node is None or not (CLIENTS / "node_modules").is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI must run `make setup` (npm ci in tests/clients)")
        pytest.skip("node or tests/clients/node_modules missing (make setup installs them)")
    out = subprocess.run(
        [node, str(CLIENTS / "remote_sampler.js"), endpoint, service, str(SPANS), *ops],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, int] = json.loads(out.stdout)["sampled"]
    return result


def test_npm_jaeger_remote_sampler_applies_the_strategies(
    sampling_stack: tuple[Settings, Path],
) -> None:
    s, _ = sampling_stack
    endpoint = f"http://127.0.0.1:{s.sampling_http_port}"
    sampled = node_sampled(endpoint, "py-prob", ["any"])
    assert within_binomial(sampled["any"], SPANS, 0.25), sampled
    sampled = node_sampled(endpoint, "per-op", ["rare", "busy", "other"])
    assert within_binomial(sampled["rare"], SPANS, 0.9), sampled
    assert within_binomial(sampled["busy"], SPANS, 0.05), sampled
    assert within_binomial(sampled["other"], SPANS, 0.5), sampled


def jaeger_tracer(settings: Settings, service: str) -> Any:
    from jaeger_client import Config

    config = Config(
        config={
            # No "sampler" section: jaeger-client's default, a RemoteControlledSampler that
            # polls http://<agent>:<sampling_port>/sampling and starts at 0.1 %.
            "sampling_refresh_interval": 1,
            "local_agent": {
                "sampling_port": settings.sampling_http_port,
                "reporting_host": "127.0.0.1",
                "reporting_port": free_port(),
            },
            "logging": False,
        },
        service_name=service,
        validate=True,
    )
    return config.new_tracer()


def wait_for_update(tracer: Any, check: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check(tracer.sampler.sampler):
        assert time.monotonic() < deadline, f"sampler never updated: {tracer.sampler.sampler}"
        time.sleep(0.05)


def py_sampled(tracer: Any, op: str, n: int) -> int:
    hits = 0
    for _ in range(n):
        span = tracer.start_span(op)
        hits += bool(span.is_sampled())
        span.finish()
    return hits


def test_python_jaeger_client_applies_the_strategies(
    sampling_stack: tuple[Settings, Path], main_thread_event_loop: object
) -> None:
    from jaeger_client.sampler import AdaptiveSampler, ProbabilisticSampler, RateLimitingSampler

    s, _ = sampling_stack
    tracer = jaeger_tracer(s, "py-prob")
    try:
        wait_for_update(tracer, lambda sm: isinstance(sm, ProbabilisticSampler) and sm.rate == 0.25)
        assert within_binomial(py_sampled(tracer, "any", SPANS), SPANS, 0.25)
    finally:
        tracer.close()
    tracer = jaeger_tracer(s, "per-op")
    try:
        wait_for_update(tracer, lambda sm: isinstance(sm, AdaptiveSampler))
        assert within_binomial(py_sampled(tracer, "rare", SPANS), SPANS, 0.9)
        assert within_binomial(py_sampled(tracer, "busy", SPANS), SPANS, 0.05)
        assert within_binomial(py_sampled(tracer, "other", SPANS), SPANS, 0.5)
    finally:
        tracer.close()
    tracer = jaeger_tracer(s, "py-rate")
    try:
        wait_for_update(tracer, lambda sm: isinstance(sm, RateLimitingSampler))
        start = time.monotonic()
        hits = 0
        while time.monotonic() - start < 1.0:
            hits += py_sampled(tracer, "any", 100)
        elapsed = time.monotonic() - start
        # 20 traces/s with a bucket of 20: at most 20 + 20 x elapsed, and the bucket is used.
        assert 10 <= hits <= 20 + 20 * elapsed + 1, hits
    finally:
        tracer.close()


def test_a_changed_file_is_served_and_a_broken_one_is_not(
    sampling_stack: tuple[Settings, Path],
) -> None:
    s, path = sampling_stack
    url = f"http://127.0.0.1:{s.sampling_http_port}/sampling?service=new-svc"
    assert json.loads(get(url)[2])["probabilisticSampling"]["samplingRate"] == 0.5
    changed = {**STRATEGIES, "default_strategy": {"type": "probabilistic", "param": 0.125}}
    path.write_text(json.dumps(changed))
    deadline = time.monotonic() + 10
    while json.loads(get(url)[2])["probabilisticSampling"]["samplingRate"] != 0.125:
        assert time.monotonic() < deadline, "strategies file not reloaded"
        time.sleep(0.1)
    path.write_text(
        json.dumps({**changed, "default_strategy": {"type": "probabilistic", "param": 3}})
    )
    deadline = time.monotonic() + 10
    while "reload_errors_total 1" not in get(f"http://127.0.0.1:{s.sampling_http_port}/metrics")[2]:
        assert time.monotonic() < deadline, "broken file not noticed"
        time.sleep(0.1)
    assert json.loads(get(url)[2])["probabilisticSampling"]["samplingRate"] == 0.125
    path.write_text(json.dumps(STRATEGIES))


def test_the_query_process_serves_adaptive_strategies(
    sampling_stack: tuple[Settings, Path],
) -> None:
    """RED rows for a service the file does not name -> per-operation probabilities served."""
    from datetime import UTC, datetime

    from core.clickhouse import connect

    s, _ = sampling_stack
    client = connect(s.clickhouse_url, s.clickhouse_database)
    url = f"http://127.0.0.1:{s.sampling_http_port}/sampling?service=adaptive-svc"
    deadline = time.monotonic() + 30
    while True:
        now = time.time()
        # 40 sampled traces/s of "busy" at the initial probability: 40x the target of 1/s.
        client.insert(
            "red_metrics",
            [
                [
                    datetime.fromtimestamp(now - 0.1, UTC),
                    datetime.fromtimestamp(now, UTC),
                    "",
                    "adaptive-svc",
                    "busy",
                    "SPAN_KIND_SERVER",
                    "STATUS_CODE_UNSET",
                    False,
                    20,
                    0,
                    0,
                    0,
                    [],
                    [],
                    "test",
                ]
            ],
            column_names=[
                "TimeUnix",
                "WindowEnd",
                "TenantId",
                "ServiceName",
                "SpanName",
                "SpanKind",
                "StatusCode",
                "Overflow",
                "Calls",
                "Errors",
                "DurationSumNs",
                "DurationMaxNs",
                "BucketBoundsMs",
                "BucketCounts",
                "Source",
            ],
        )
        doc = json.loads(get(url)[2])
        if "operationSampling" in doc:
            break
        assert time.monotonic() < deadline, doc
        time.sleep(0.5)
    ops = {
        o["operation"]: o["probabilisticSampling"]["samplingRate"]
        for o in doc["operationSampling"]["perOperationStrategies"]
    }
    # Far above the target: the probability drops below the initial 0.001.
    assert 0 < ops["busy"] < s.sampling_initial_probability
    assert doc["operationSampling"]["defaultSamplingProbability"] == s.sampling_initial_probability
    rows = client.query(
        "SELECT count() FROM sampling_probabilities FINAL WHERE ServiceName = 'adaptive-svc'"
    ).result_rows
    assert rows[0][0] >= 1
    # A service the file names is never overridden.
    assert json.loads(get(url.replace("adaptive-svc", "py-prob"))[2])["probabilisticSampling"] == {
        "samplingRate": 0.25
    }


def test_grpc_refuses_garbage_and_long_names_without_harm(
    sampling_stack: tuple[Settings, Path],
) -> None:
    s, _ = sampling_stack
    request_cls = message("SamplingStrategyParameters")
    with grpc.insecure_channel(f"127.0.0.1:{s.sampling_grpc_port}") as channel:
        raw = channel.unary_unary("/jaeger.api_v2.SamplingManager/GetSamplingStrategy")
        for body in (b"\xff\xff\xff", b"\x0a\xff", b"\x0a\x05ab"):
            with pytest.raises(grpc.RpcError) as err:
                raw(body, timeout=5)
            assert err.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
        call = channel.unary_unary(
            "/jaeger.api_v2.SamplingManager/GetSamplingStrategy",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message("SamplingStrategyResponse").FromString,
        )
        with pytest.raises(grpc.RpcError) as err:
            call(request_cls(serviceName="x" * 2000), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Still serving.
        assert (
            call(request_cls(serviceName="py-prob"), timeout=5).probabilisticSampling.samplingRate
            == 0.25
        )

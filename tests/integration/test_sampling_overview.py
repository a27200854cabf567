"""The sampling overview (``GET /api/sampling/strategies``) and the UI's Sampling page, on a
real query process over real ClickHouse.

One stack for the module, auth on with two tenants. The adaptive history is made by the real
calculation (query.adaptive_sampling.AdaptiveSampling.step, the code the query replicas run)
from RED rows of a simulated fleet that samples at whatever was calculated; the strategies
file comes in through settings. The overview must show, per service, exactly what the SDK
endpoint ``/api/sampling`` serves at that moment, the stored probabilities and the observed
throughput, each tenant only its own, and every answer must match query/openapi.yaml.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.stack import LocalStack
from query.adaptive_sampling import AdaptiveSampling, interval_end, knobs_from
from tests import openapi_contract
from tests.conftest import isolated_settings
from tests.integration.test_adaptive_sampling import FALLBACK, RED_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
INTERVAL = 600
INTERVALS = 12
RATES = {"acme": {"GET /busy": 50.0, "GET /rare": 0.5}, "other": {"secret-op": 2.0}}
SERVICE = {"acme": "shop", "other": "vault"}
TOKENS = {"acme": "tok-acme", "other": "tok-other"}
CHECKOUT = {
    "service": "checkout",
    "type": "probabilistic",
    "param": 0.5,
    "default_lower_bound_traces_per_second": 0.5,
    "operation_strategies": [{"operation": "POST /pay", "type": "probabilistic", "param": 0.9}],
}
STRATEGIES = {
    "default_strategy": {"type": "probabilistic", "param": 0.2},
    "service_strategies": [CHECKOUT],
    "tenants": {
        "acme": {
            "default_strategy": {"type": "probabilistic", "param": 0.05},
            "service_strategies": [
                CHECKOUT,
                {"service": "legacy", "type": "ratelimiting", "param": 7},
            ],
        }
    },
}


@dataclass(frozen=True)
class Stack:
    base: str
    settings: Settings
    last_end: int  # the newest interval the test calculated
    calls: dict[tuple[str, str, int], int]  # (tenant, operation, interval end) -> RED calls

    def get(self, path: str, tenant: str | None = "acme") -> tuple[int, Any]:
        status, ctype, body = self.raw(path, tenant)
        doc = openapi_contract.check("GET", path, status, ctype, body)
        return status, doc

    def raw(self, path: str, tenant: str | None = "acme") -> tuple[int, str, bytes]:
        req = urllib.request.Request(self.base + path)
        if tenant:
            req.add_header("Authorization", f"Bearer {TOKENS[tenant]}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", ""), err.read()

    def sdk_strategy(self, service: str, tenant: str | None = "acme") -> Any:
        """What an SDK gets from Jaeger's endpoint on the query port."""
        status, _ctype, body = self.raw(
            f"/api/sampling?service={urllib.parse.quote(service)}", tenant
        )
        assert status == 200, body
        return json.loads(body)


def simulate(settings: Settings) -> tuple[int, dict[tuple[str, str, int], int]]:
    """Twelve intervals of a fleet sampling at the served probabilities, calculated by the real
    adaptive code; returns the last interval end and the RED calls written per interval."""
    knobs = knobs_from(settings)
    client = connect(settings.clickhouse_url, settings.clickhouse_database, session=False)
    replica = AdaptiveSampling(client, knobs, settings.sampling_calculation_delay_seconds)
    last = interval_end(time.time(), knobs, settings.sampling_calculation_delay_seconds)
    calls: dict[tuple[str, str, int], int] = {}
    for i in range(INTERVALS, 0, -1):
        end = last - (i - 1) * INTERVAL
        rows = []
        for tenant, ops in RATES.items():
            served = replica.strategy(tenant, SERVICE[tenant], FALLBACK)
            for op, rate in ops.items():
                p = knobs.initial_probability
                if served is not None and served.per_operation is not None:
                    p = next(
                        o.probability for o in served.per_operation.operations if o.operation == op
                    )
                sampled = max(1, round(rate * INTERVAL * p))
                calls[tenant, op, end] = sampled
                start = end - INTERVAL
                rows.append(
                    [
                        datetime.fromtimestamp(start + 10, UTC),
                        datetime.fromtimestamp(start + 20, UTC),
                        tenant,
                        SERVICE[tenant],
                        op,
                        "SPAN_KIND_SERVER",
                        "STATUS_CODE_UNSET",
                        False,
                        sampled,
                        0,
                        0,
                        0,
                        [],
                        [],
                        "p0",
                    ]
                )
        client.insert("red_metrics", rows, column_names=RED_COLUMNS)
        assert replica.step(end + settings.sampling_calculation_delay_seconds)
    return last, calls


@pytest.fixture(scope="module")
def stack(services: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir = Path(tmp_path_factory.mktemp("sampling-ui"))
    strategies = run_dir / "strategies.json"
    strategies.write_text(json.dumps(STRATEGIES))
    settings = isolated_settings(services).with_(
        ingest_auth_tokens=",".join(f"{tok}={tenant}" for tenant, tok in TOKENS.items()),
        sampling_strategies_file=str(strategies),
        sampling_adaptive=True,
        sampling_calculation_interval_seconds=INTERVAL,
        sampling_calculation_delay_seconds=0.0,
        sampling_aggregation_buckets=3,
        sampling_initial_probability=0.1,
    )
    local = LocalStack(settings, run_dir, say=lambda _m: None)
    local.prepare()
    last, calls = simulate(settings)
    try:
        local.start_component("query", f"http://127.0.0.1:{settings.query_http_port}/health")
        ready = Stack(f"http://127.0.0.1:{settings.query_http_port}", settings, last, calls)
        # The query replica loads the stored probabilities in its first adaptive step, which
        # runs just after its listener is up: wait until it serves them.
        deadline = time.monotonic() + 30
        while "operationSampling" not in ready.sdk_strategy("shop"):
            assert time.monotonic() < deadline, "the query replica never served adaptive rows"
            time.sleep(0.2)
        yield ready
    finally:
        local.stop()
        connect(settings.clickhouse_url, "default").command(
            f"DROP DATABASE IF EXISTS `{settings.clickhouse_database}`"
        )


def stored_history(stack: Stack, tenant: str) -> dict[tuple[str, int], float]:
    client = connect(
        stack.settings.clickhouse_url, stack.settings.clickhouse_database, session=False
    )
    rows = client.query(
        "SELECT SpanName, toUnixTimestamp(IntervalEnd), Probability FROM sampling_probabilities"
        " FINAL WHERE TenantId = {t:String}",
        parameters={"t": tenant},
    ).result_rows
    return {(op, int(e)): float(p) for op, e, p in rows}


def by_service(doc: dict[str, Any]) -> dict[str, Any]:
    return {s["service"]: s for s in doc["data"]["services"]}


def test_overview_shows_what_sdks_get_and_the_history(stack: Stack) -> None:
    before = stack.sdk_strategy("shop")
    status, doc = stack.get("/api/sampling/strategies?lookback=3h")
    after = stack.sdk_strategy("shop")
    assert status == 200
    data = doc["data"]
    assert (data["adaptive"], data["intervalSeconds"], data["truncated"]) == (True, INTERVAL, False)
    assert data["end"] - data["start"] == 3 * 3600
    assert data["default"] == {
        "strategyType": "PROBABILISTIC",
        "probabilisticSampling": {"samplingRate": 0.05},
    }
    services = by_service(doc)
    # acme's file names checkout and legacy; shop has adaptive rows; vault is another tenant's.
    assert sorted(services) == ["checkout", "legacy", "shop"]
    shop = services["shop"]
    assert shop["source"] == "adaptive"
    assert shop["strategy"] in (before, after)  # the same object /api/sampling serves
    assert shop["strategy"]["operationSampling"][
        "defaultLowerBoundTracesPerSecond"
    ] == pytest.approx(1 / 60)
    served = {o["operation"]: o["probabilisticSampling"]["samplingRate"]
              for o in shop["strategy"]["operationSampling"]["perOperationStrategies"]}  # fmt: skip
    stored = stored_history(stack, "acme")
    ops = {o["operation"]: o for o in shop["operations"]}
    assert sorted(ops) == sorted(RATES["acme"])
    for op, o in ops.items():
        assert o["probability"] == served[op]
        # Every interval the test calculated within the lookback, exactly as stored; the query
        # replica may have calculated one more if an interval ended meanwhile.
        mine = {p["time"]: p["probability"] for p in o["history"] if p["time"] <= stack.last_end}
        expected = {e: p for (name, e), p in stored.items()
                    if name == op and data["start"] < e <= stack.last_end}  # fmt: skip
        assert mine == expected and len(mine) == INTERVALS
        assert o["history"][-1]["probability"] == o["probability"]  # the newest row is served
        seen = {p["time"]: p["spansPerSecond"] for p in o["throughput"]}
        for e in mine:
            assert seen[e] == pytest.approx(stack.calls["acme", op, e] / INTERVAL)
    # The adaptive calculation moved both operations toward 1 trace/s: busy down, rare up.
    assert (
        ops["GET /busy"]["history"][-1]["probability"]
        < 0.1
        < ops["GET /rare"]["history"][-1]["probability"]
    )

    checkout = services["checkout"]
    assert checkout["source"] == "file" and checkout["strategy"] == stack.sdk_strategy("checkout")
    assert checkout["strategy"]["operationSampling"]["defaultLowerBoundTracesPerSecond"] == 0.5
    assert [(o["operation"], o["probability"], o["history"]) for o in checkout["operations"]] == [
        ("POST /pay", 0.9, [])
    ]
    legacy = services["legacy"]
    assert legacy["strategy"] == {
        "strategyType": "RATE_LIMITING",
        "rateLimitingSampling": {"maxTracesPerSecond": 7},
    }
    assert legacy["operations"] == []


def test_one_service_unknown_services_and_tenants(stack: Stack) -> None:
    _status, doc = stack.get("/api/sampling/strategies?service=nobody&lookback=1h")
    assert [(s["service"], s["source"], s["operations"]) for s in doc["data"]["services"]] == [
        ("nobody", "default", [])
    ]
    assert doc["data"]["services"][0]["strategy"] == stack.sdk_strategy("nobody")
    odd = "\x00'\"\\%ü" + "\u202e" * 3  # bound as a ClickHouse parameter, shown as given
    _status, doc = stack.get("/api/sampling/strategies?" + urllib.parse.urlencode({"service": odd}))
    assert [(s["service"], s["source"]) for s in doc["data"]["services"]] == [(odd, "default")]
    _status, doc = stack.get("/api/sampling/strategies?service=shop&lookback=1h&prettyPrint=1")
    assert [s["service"] for s in doc["data"]["services"]] == ["shop"]
    # The other tenant sees its own service and the top-level file, never acme's rows.
    _status, doc = stack.get("/api/sampling/strategies?lookback=3h", tenant="other")
    services = by_service(doc)
    assert sorted(services) == ["checkout", "vault"]
    assert services["vault"]["source"] == "adaptive"
    assert [o["operation"] for o in services["vault"]["operations"]] == ["secret-op"]
    assert doc["data"]["default"]["probabilisticSampling"] == {"samplingRate": 0.2}
    # SDKs keep Jaeger's endpoint: no token, the top level, no tenant's adaptive rows.
    assert stack.sdk_strategy("shop", tenant=None) == {
        "strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.2}
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 401),
        ("service=a&service=b", 400),
        ("lookback=1s", 400),
        ("lookback=2000h", 400),
        ("lookback=1.5m", 400),
        ("lookback=bogus", 400),
        ("service=" + "x" * 1025, 400),
    ],
)
def test_rejections_are_documented_envelopes(stack: Stack, query: str, status: int) -> None:
    got, doc = stack.get(
        "/api/sampling/strategies?" + query, tenant=None if status == 401 else "acme"
    )
    assert got == status and doc["errors"][0]["code"] == status


def test_sampling_page(browser: Any, stack: Stack) -> None:
    browser.set_window_size(1400, 1100)
    wait = WebDriverWait(browser, 20)
    browser.get(stack.base + "/")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    browser.execute_script("localStorage.setItem('tracehouse.token', arguments[0])", TOKENS["acme"])
    browser.get(stack.base + "/#/sampling")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".sampling-service")))
    Select(browser.find_element(By.ID, "sampling-lookback")).select_by_value("3h")
    wait.until(
        lambda d: d.find_element(By.ID, "sampling-view").get_attribute("data-lookback") == "3h"
    )
    cards = {
        c.get_attribute("data-service"): c
        for c in browser.find_elements(By.CSS_SELECTOR, ".sampling-service")
    }
    assert sorted(cards) == ["checkout", "legacy", "shop"]
    _status, doc = stack.get("/api/sampling/strategies?lookback=3h")
    api = by_service(doc)
    assert "adaptive" in cards["shop"].text and "rate limiting: 7 traces/s" in cards["legacy"].text
    pay = cards["checkout"].find_element(
        By.CSS_SELECTOR, ".sampling-op[data-operation='POST /pay']"
    )
    assert (
        pay.get_attribute("data-probability") == "0.9" and "0.5 traces/s" in cards["checkout"].text
    )
    for op in api["shop"]["operations"]:
        row = cards["shop"].find_element(
            By.CSS_SELECTOR, f".sampling-op[data-operation='{op['operation']}']"
        )
        assert float(row.get_attribute("data-probability")) == op["probability"]
        chart = row.find_element(By.CSS_SELECTOR, "svg.sampling-chart")
        points = [
            len(line.get_attribute("points").split())
            for line in chart.find_elements(By.TAG_NAME, "polyline")
        ]
        assert points == [len(op["history"]), len(op["throughput"])]
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "sampling.png"))

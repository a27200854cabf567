"""The demo shop end to end: real OTel-instrumented services calling each other over HTTP with
W3C propagation, sampled by tracehouse's remote strategies, stored by the whole pipeline.

Checks: the service graph is the shop's topology (not a complete graph); traces span services
through real context propagation; the frontend's entry operation is sampled at its strategy's
probability, and RED, weighted by the spans' ``ot=th`` adjusted counts, still counts every
request the frontend served.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from core.clickhouse import connect
from deploy.local.stack import LocalStack
from tests.conftest import running_pipeline
from tracehouse.cli import DEMO_STRATEGIES
from tracehouse.shop_demo import Shop
from tracehouse.shop_topology import edges

REQUESTS = 400
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_shop_topology_propagation_and_true_red_under_head_sampling(
    services: LocalStack, tmp_path: Path, browser: Any
) -> None:
    with running_pipeline(
        services,
        tmp_path,
        sampling_strategies_file=str(DEMO_STRATEGIES),
        red_window_seconds=1.0,
        graph_wait_seconds=2.0,
    ) as stack:
        s = stack.settings
        shop = Shop(
            f"http://127.0.0.1:{s.ingest_http_port}",
            f"http://127.0.0.1:{s.sampling_http_port}",
            tmp_path / "shop-logs",
        )
        shop.start()
        try:
            outcomes = shop.drive(REQUESTS, rate=80, seed=3)
        finally:
            shop.stop()  # flushes every service's batch processor
        assert outcomes.get("failed", 0) == 0, outcomes
        client = connect(s.clickhouse_url, s.clickhouse_database)

        def red_calls() -> dict[str, int]:
            rows = client.query(
                "SELECT SpanName, sum(Calls) FROM red_metrics WHERE ServiceName = 'frontend'"
                " GROUP BY SpanName"
            ).result_rows
            return {name: int(n) for name, n in rows}

        def stored_roots() -> dict[str, int]:
            rows = client.query(
                "SELECT SpanName, count() FROM otel_traces WHERE ServiceName = 'frontend'"
                " AND ParentSpanId = '' GROUP BY SpanName"
            ).result_rows
            return {name: int(n) for name, n in rows}

        # Until every checkout trace (sampled at 100 %) is stored and RED has every request.
        deadline = time.monotonic() + 90
        while True:
            roots, red = stored_roots(), red_calls()
            checkout = roots.get("POST /checkout", 0)
            if checkout and checkout == red.get("POST /checkout") and sum(red.values()) >= 360:
                time.sleep(3)  # the last RED windows and edges
                break
            assert time.monotonic() < deadline, (roots, red)
            time.sleep(1)
        roots, red = stored_roots(), red_calls()
        graph = {
            (c, sv)
            for c, sv in client.query(
                "SELECT DISTINCT ClientService, ServerService FROM service_graph_edges"
            ).result_rows
        }
        # The service map is the topology: every observed edge is one of the shop's, and the
        # frontend reaches exactly its four backends.
        assert graph <= edges(), graph - edges()
        assert {sv for c, sv in graph if c == "frontend"} == {
            sv for c, sv in edges() if c == "frontend"
        }
        # Context propagation: a sampled checkout trace reaches payment three hops down.
        deep = client.query(
            "SELECT count() FROM (SELECT TraceId FROM otel_traces GROUP BY TraceId"
            " HAVING has(groupArray(ServiceName), 'frontend') AND"
            " has(groupArray(ServiceName), 'payment'))"
        ).result_rows[0][0]
        assert deep > 0
        # Head sampling by the remote strategy: "GET /" at 0.25, "POST /checkout" at 1.
        served = {"GET /": 0, "GET /product": 0, "POST /checkout": 0}
        # RED counts the requests whatever the sampling: every span weighs 1/p.
        total_red = sum(red.get(op, 0) for op in served)
        assert abs(total_red - REQUESTS) <= 0.15 * REQUESTS, red
        n_root = red.get("GET /", 0)
        kept = roots.get("GET /", 0)
        assert n_root > 0
        p = 0.25
        assert abs(kept / n_root - p) <= 5 * math.sqrt(p * (1 - p) / n_root) + 0.02, (kept, n_root)
        assert roots.get("POST /checkout", 0) == red.get("POST /checkout", -1)
        screenshots(browser, f"http://127.0.0.1:{s.query_http_port}")


def screenshots(browser: Any, base: str) -> None:
    """The demo's service map, a checkout trace's waterfall and the frontend's RED page, as the
    README shows them (docs/screenshots/demo-*.png)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    SHOTS.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(browser, 30)
    browser.get(base + "/#/map")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#map-svg .node")))
    # The 8 services (the UI's map draws services; the database and cache are edges in SQL).
    assert len(browser.find_elements(By.CSS_SELECTOR, "#map-svg .node")) >= 8
    browser.save_screenshot(str(SHOTS / "demo-service-map.png"))
    browser.get(base + "/")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    Select(browser.find_element(By.ID, "service")).select_by_value("checkout")
    browser.find_element(By.ID, "find").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".result")))
    browser.find_elements(By.CSS_SELECTOR, ".result")[0].click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".wf-row")))
    assert len(browser.find_elements(By.CSS_SELECTOR, ".wf-row")) >= 8  # frontend .. payment
    browser.save_screenshot(str(SHOTS / "demo-trace-waterfall.png"))
    browser.get(base + "/#/red")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#red-service option"))
    Select(browser.find_element(By.ID, "red-service")).select_by_value("frontend")
    browser.find_element(By.CSS_SELECTOR, "#red-form button").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#red-summary[data-service='frontend']"))
    browser.save_screenshot(str(SHOTS / "demo-red.png"))

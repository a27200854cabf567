"""The web UI in headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
search, open a trace, check the waterfall, and keep screenshots under docs/screenshots/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"


def test_search_open_trace_waterfall(browser: Any, query_api: tuple[str, list]) -> None:
    base, records = query_api
    wait = WebDriverWait(browser, 20)
    browser.get(base + "/")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    Select(browser.find_element(By.ID, "service")).select_by_value("frontend")
    Select(browser.find_element(By.ID, "lookback")).select_by_value("24h")
    browser.find_element(By.ID, "find").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".result")))
    results = browser.find_elements(By.CSS_SELECTOR, ".result")
    frontend_traces = {r["trace_id"] for r in records if r["service_name"] == "frontend"}
    assert len(results) == min(20, len(frontend_traces))
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "search.png"))

    trace_id = results[0].get_attribute("data-trace-id")
    expected_spans = sum(1 for r in records if r["trace_id"] == trace_id)
    results[0].click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".wf-row")))
    rows = browser.find_elements(By.CSS_SELECTOR, ".wf-row")
    assert len(rows) == expected_spans
    assert browser.find_element(By.ID, "span-count").text == f"{expected_spans} spans"
    assert browser.find_elements(By.CSS_SELECTOR, ".wf-crit"), "critical path is drawn"
    rows[-1].click()
    detail = wait.until(ec.visibility_of_element_located((By.ID, "span-detail")))
    assert rows[-1].get_attribute("data-span-id") in detail.text
    browser.save_screenshot(str(SHOTS / "trace-waterfall.png"))

    browser.get(base + "/#/map")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#map-svg .node")))
    services_with_edges = set()
    by_span = {(r["trace_id"], r["span_id"]): r for r in records}
    for r in records:
        parent = by_span.get((r["trace_id"], r["parent_span_id"]))
        if parent and parent["service_name"] != r["service_name"]:
            services_with_edges |= {parent["service_name"], r["service_name"]}
    assert len(browser.find_elements(By.CSS_SELECTOR, "#map-svg .node")) == len(services_with_edges)
    browser.save_screenshot(str(SHOTS / "service-map.png"))

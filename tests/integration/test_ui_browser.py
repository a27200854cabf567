"""The web UI in headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
search, open a trace, check the waterfall, and keep screenshots under docs/screenshots/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from deploy.local.stack import LocalStack
from tests.integration.query_stack import QueryStack, query_stack

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


# -- all filters, compare, and a service map of 24 services (one stack for these tests) -------

# An hour ago on a whole second: the UI's lookback windows end now.
T0 = (time.time_ns() // 10**9 - 3600) * 10**9
MS = 1_000_000


def ui_span(trace: int, span: int, service: str, name: str, start_ms: float, dur_ms: float,
            parent: int = 0, **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "trace_id": f"c0ffee{trace:026x}",
        "span_id": f"{span:016x}",
        "parent_span_id": f"{parent:016x}" if parent else "",
        "name": name,
        "kind": 2 if not parent else 3,
        "service_name": service,
        "start_time_unix_nano": T0 + int(start_ms * MS),
        "end_time_unix_nano": T0 + int((start_ms + dur_ms) * MS),
        "status_code": 0,
        **extra,
    }


def shop_rows() -> list[dict[str, Any]]:
    """Twelve one-span "shop" traces differing in operation, status code, note and duration."""
    rows = []
    for t in range(12):
        attributes = {
            "http.status_code": (500, 200)[t // 6],
            "note": ("two words", "other")[(t // 2) % 2],
        }
        name, duration = ("checkout", "browse")[t % 2], (50, 50, 500, 5)[t % 4]
        rows.append(ui_span(t, 1, "shop", name, t * 10, duration, attributes=attributes))
    return rows


def compare_rows() -> list[dict[str, Any]]:
    """Two "store" traces: A retries a charge; B calls inventory instead of retrying."""
    a = [
        ui_span(100, 1, "store", "order", 0, 100),
        ui_span(100, 2, "payments", "charge", 10, 20, parent=1),
        ui_span(100, 3, "payments", "charge", 40, 20, parent=1),
    ]
    b = [
        ui_span(101, 1, "store", "order", 200, 100),
        ui_span(101, 2, "payments", "charge", 210, 20, parent=1),
        ui_span(101, 3, "inventory", "reserve", 240, 20, parent=1),
    ]
    return a + b


MAP_EDGES = [
    (f"svc-{p:02d}", f"svc-{c:02d}")
    for p, c in [
        *((0, 1), (0, 2), (0, 3), (1, 4), (1, 5), (2, 6), (2, 7), (3, 8), (3, 9), (4, 10)),
        *((5, 10), (6, 11), (7, 12), (8, 13), (9, 13), (10, 14), (11, 15), (12, 16), (13, 17)),
        *((14, 18), (15, 19), (16, 20), (17, 21), (18, 22), (19, 23), (20, 23), (22, 1)),
    ]
]


def map_rows() -> list[dict[str, Any]]:
    """One two-span trace per call edge: a client span of the caller, a server span below it.

    svc-22 -> svc-01 closes one cycle (01 -> 04 -> 10 -> 14 -> 18 -> 22 -> 01), so exactly one
    edge must be drawn against the flow.
    """
    rows = []
    for i, (parent, child) in enumerate(MAP_EDGES):
        rows.append(ui_span(200 + i, 1, parent, "call", 400 + i, 10))
        rows.append(ui_span(200 + i, 2, child, "serve", 401 + i, 5, parent=1))
    return rows


@pytest.fixture(scope="module")
def ui_stack(
    services: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QueryStack]:
    rows = shop_rows() + compare_rows() + map_rows()
    with query_stack(services, Path(tmp_path_factory.mktemp("ui")), rows) as stack:
        yield stack


def ready(browser: Any, url: str) -> WebDriverWait:
    wait = WebDriverWait(browser, 20)
    browser.get(url)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    return wait


def test_search_with_every_filter_at_once(browser: Any, ui_stack: QueryStack) -> None:
    wait = ready(browser, ui_stack.base + "/")
    Select(browser.find_element(By.ID, "service")).select_by_value("shop")
    wait.until(lambda d: len(Select(d.find_element(By.ID, "operation")).options) > 1)
    Select(browser.find_element(By.ID, "operation")).select_by_value("checkout")
    browser.find_element(By.ID, "tags").send_keys('http.status_code=500 note="two words"')
    browser.find_element(By.ID, "minDuration").send_keys("10ms")
    browser.find_element(By.ID, "maxDuration").send_keys("0.1s")
    Select(browser.find_element(By.ID, "lookback")).select_by_value("6h")
    limit = browser.find_element(By.ID, "limit")
    limit.clear()
    limit.send_keys("1")
    browser.find_element(By.ID, "find").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#result-count")))
    got = [
        r.get_attribute("data-trace-id") for r in browser.find_elements(By.CSS_SELECTOR, ".result")
    ]
    expected = [
        r["trace_id"]
        for r in sorted(shop_rows(), key=lambda r: -r["start_time_unix_nano"])
        if r["name"] == "checkout"
        and r["attributes"]["http.status_code"] == 500
        and r["attributes"]["note"] == "two words"
        and 10 * MS <= r["end_time_unix_nano"] - r["start_time_unix_nano"] <= 100 * MS
    ]
    assert len(expected) == 2 and got == expected[:1]  # the newest of two, as limit=1 asks


def test_compare_two_traces(browser: Any, ui_stack: QueryStack) -> None:
    wait = ready(browser, ui_stack.base + "/")
    Select(browser.find_element(By.ID, "service")).select_by_value("store")
    Select(browser.find_element(By.ID, "lookback")).select_by_value("6h")
    browser.find_element(By.ID, "find").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".pick")))
    picks = browser.find_elements(By.CSS_SELECTOR, ".pick")
    assert len(picks) == 2 and not browser.find_element(By.ID, "compare").is_enabled()
    for pick in picks:
        pick.click()
    assert browser.current_url.endswith("#/search") or "#/trace" not in browser.current_url
    browser.find_element(By.ID, "compare").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".cmp-row")))
    sides = {
        p.get_attribute("data-side"): p.text
        for p in browser.find_elements(By.CSS_SELECTOR, ".compare-head .panel")
    }
    newest_first = [f"c0ffee{101:026x}", f"c0ffee{100:026x}"]
    assert newest_first[0] in sides["a"] and newest_first[1] in sides["b"]
    rows = {
        (r.get_attribute("data-service"), r.get_attribute("data-operation")): (
            int(r.get_attribute("data-a")), int(r.get_attribute("data-b")), r.get_attribute("class")
        )
        for r in browser.find_elements(By.CSS_SELECTOR, ".cmp-row")
    }  # fmt: skip
    # A is the newest trace (B of the data: inventory instead of a retried charge).
    assert rows == {
        ("inventory", "reserve"): (1, 0, "cmp-row only-a"),
        ("payments", "charge"): (1, 2, "cmp-row changed"),
        ("store", "order"): (1, 1, "cmp-row same"),
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "compare.png"))


def test_service_map_of_24_services_is_layered_and_legible(
    browser: Any, ui_stack: QueryStack
) -> None:
    browser.set_window_size(1600, 1300)
    wait = ready(browser, ui_stack.base + "/#/map")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#map-svg .node")))
    nodes = browser.execute_script(
        """return [...document.querySelectorAll('#map-svg .node')].map((g) => {
             const c = g.querySelector('circle').getBoundingClientRect();
             const t = g.querySelector('text').getBoundingClientRect();
             return {name: g.dataset.service, layer: +g.dataset.layer, x: c.x + c.width / 2,
                     y: c.y + c.height / 2, label: [t.left, t.top, t.right, t.bottom],
                     circle: [c.left, c.top, c.right, c.bottom]};
           });"""
    )
    services = {s for edge in MAP_EDGES for s in edge}
    assert len(services) == 24  # plus the compare test's three services
    assert {n["name"] for n in nodes} == services | {"store", "payments", "inventory"}
    by_name = {n["name"]: n for n in nodes}
    back = {
        (e.get_attribute("data-parent"), e.get_attribute("data-child"))
        for e in browser.find_elements(By.CSS_SELECTOR, "#map-svg .edge.back")
    }
    assert len(back) == 1  # the one cycle has one edge drawn against the flow
    for parent, child in MAP_EDGES:
        if (parent, child) not in back:  # callers left of callees
            assert by_name[parent]["layer"] < by_name[child]["layer"], (parent, child)
            assert by_name[parent]["x"] < by_name[child]["x"]
    layers = {n["layer"] for n in nodes}
    assert len(layers) >= 5
    for layer in layers:  # one column per layer
        assert len({round(n["x"]) for n in nodes if n["layer"] == layer}) == 1

    def overlap(a: list[float], b: list[float]) -> bool:
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    boxes = [n["label"] for n in nodes] + [n["circle"] for n in nodes]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not overlap(a, b), (a, b)
    browser.save_screenshot(str(SHOTS / "service-map-layered.png"))

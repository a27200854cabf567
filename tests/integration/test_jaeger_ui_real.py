"""A Jaeger UI build served by tracehouse (issue 14, "bring your own Jaeger UI").

``test_query_process_serves_a_ui_build`` always runs: the query process started the way
`tracehouse up` starts it gets ``query.ui_dir`` / ``query.ui_config`` through the environment
and serves a small fake build (written here, holding the placeholders a Jaeger UI build's
index.html has) at ``/`` with the injection, its own UI at ``/tracehouse/`` and the API
unchanged.

``test_feature`` is the acceptance walk of the real Jaeger UI and only runs when
``TRACEHOUSE_JAEGER_UI_DIR`` names a build made from Jaeger's public source (docs/jaeger-ui.md
says how; the project never ships one, so CI skips it). It starts the whole pipeline with that
build, sends demo traces through ingest (so RED metrics and the service graph exist too), and
drives the UI in headless Chromium feature by feature: one test per feature, so the pytest
report is the feature table of docs/jaeger-ui.md. Each leaves a 1280x800 screenshot in
docs/screenshots/jaeger-ui-<version>-<feature>.png (the version is read from the build path)
and, on failure, names the API calls that failed.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from core.settings import Settings
from deploy.local.stack import LocalStack
from tests.conftest import running_pipeline
from tests.integration.helpers import wait_until
from tracehouse.demo_traces import make_request, post_otlp_http

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
JAEGER_UI_DIR = os.environ.get("TRACEHOUSE_JAEGER_UI_DIR", "")
_version = re.search(r"v\d+\.\d+\.\d+", JAEGER_UI_DIR)
VERSION = _version.group(0) if _version else "custom"
WIDTH, HEIGHT = 1280, 800
WAIT_SECONDS = 20
# A search result, in the list layout or the table layout (v2.20 shows uploads as a table).
RESULT = ".ResultItem, tr.ant-table-row[data-row-key]"

FAKE_INDEX = """<!doctype html><html><head><base href="/" />
<script>
  // JAEGER_CONFIG_JS
  function cfg() { const JAEGER_CONFIG = DEFAULT_CONFIG; return JAEGER_CONFIG; }
  function caps() {
    const JAEGER_STORAGE_CAPABILITIES = DEFAULT_STORAGE_CAPABILITIES;
    const JAEGER_BACKEND_CAPABILITIES = DEFAULT_BACKEND_CAPABILITIES;
  }
  function version() { const JAEGER_VERSION = DEFAULT_VERSION; return JAEGER_VERSION; }
</script><script src="./static/main.js"></script></head><body></body></html>
"""


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.headers.get_content_type(), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read().decode()


def test_query_process_serves_a_ui_build(
    services: LocalStack, pipeline_settings: Settings, tmp_path: Path
) -> None:
    build = tmp_path / "build"
    (build / "static").mkdir(parents=True)
    (build / "index.html").write_text(FAKE_INDEX)
    (build / "static" / "main.js").write_text("window.fakeUi = 1;")
    config = tmp_path / "ui-config.json"
    config.write_text('{"dependencies": {"menuEnabled": true}}')
    settings = pipeline_settings.with_(query_ui_dir=str(build), query_ui_config=str(config))
    stack = LocalStack(settings, tmp_path / "run", say=lambda _m: None)
    base = f"http://127.0.0.1:{settings.query_http_port}"
    try:
        stack.start_component("query", f"{base}/health")
        for path in ("/", "/search", "/trace/0123456789abcdef"):
            status, kind, page = _get(base + path)
            assert (status, kind) == (200, "text/html"), path
            assert 'JAEGER_CONFIG = {"dependencies":{"menuEnabled":true}};' in page
            assert re.search(r'JAEGER_VERSION = \{"gitCommit":"","gitVersion":"tracehouse', page)
            assert "JAEGER_BACKEND_CAPABILITIES = {" in page
        assert _get(base + "/static/main.js")[::2] == (200, "window.fakeUi = 1;")
        assert _get(base + "/static/none.js")[0] == 404
        status, kind, own = _get(base + "/tracehouse/")
        assert status == 200 and "<title>tracehouse</title>" in own
        status, kind, body = _get(base + "/api/services")
        assert (status, kind) == (200, "application/json") and "data" in json.loads(body)
        assert _get(base + "/api/no-such-endpoint")[0] == 404
    finally:
        stack.stop()


# --- the real Jaeger UI -------------------------------------------------------------------------


@dataclass
class Walk:
    """What the features need: the UI's address, demo trace ids, files to upload."""

    base: str
    trace_ids: list[str]
    operation: str
    files: dict[str, Path] = field(default_factory=dict)


@pytest.fixture(scope="module")
def walk(services: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    if not JAEGER_UI_DIR:
        pytest.skip("set TRACEHOUSE_JAEGER_UI_DIR to a Jaeger UI build (docs/jaeger-ui.md)")
    run_dir = tmp_path_factory.mktemp("jaeger-ui")
    with running_pipeline(
        services,
        run_dir,
        query_ui_dir=JAEGER_UI_DIR,
        red_window_seconds=1.0,
        graph_wait_seconds=1.0,
        streams_tick_seconds=0.2,
    ) as stack:
        s = stack.settings
        sent = 0
        for seed in (31, 32):
            request = make_request(traces=40, seed=seed)
            post_otlp_http(
                f"http://127.0.0.1:{s.ingest_http_port}/v1/traces", request.SerializeToString()
            )
            sent += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        base = f"http://127.0.0.1:{s.query_http_port}"

        def api(path: str) -> Any:
            return json.loads(_get(base + path)[2])

        search = "/api/traces?service=frontend&lookback=1h&limit=1500"
        wait_until(lambda: api(search).get("data") or [], lambda d: len(d) >= 20)
        wait_until(lambda: api("/api/dependencies").get("data") or [], bool)
        traces = api(search)["data"]
        big = sorted(traces, key=lambda t: -len(t["spans"]))
        ids = [t["traceID"] for t in big[:2]]
        operation = big[0]["spans"][0]["operationName"]
        files = {"jaeger": run_dir / "trace.json", "otlp": run_dir / "trace-otlp.json"}
        files["jaeger"].write_text(json.dumps({"data": [big[0]]}))
        files["otlp"].write_text(json.dumps(_otlp_json(big[1])))
        time.sleep(2)  # a few more RED windows for the Monitor charts
        yield Walk(base, ids, operation, files)


def _otlp_json(trace: dict[str, Any]) -> dict[str, Any]:
    """One Jaeger-JSON trace as OTLP/JSON (hex ids, as the OTLP spec's JSON mapping has them)."""
    by_process: dict[str, list[dict[str, Any]]] = {}
    for span in trace["spans"]:
        parent = next((r["spanID"] for r in span.get("references", [])), "")
        start_ns = span["startTime"] * 1000
        by_process.setdefault(span["processID"], []).append(
            {
                "traceId": span["traceID"].rjust(32, "0"),
                "spanId": span["spanID"],
                "parentSpanId": parent,
                "name": span["operationName"],
                "kind": 2,
                "startTimeUnixNano": str(start_ns),
                "endTimeUnixNano": str(start_ns + span["duration"] * 1000),
            }
        )
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {
                            "key": "service.name",
                            "value": {"stringValue": trace["processes"][pid]["serviceName"]},
                        }
                    ]
                },
                "scopeSpans": [{"scope": {"name": "upload"}, "spans": spans}],
            }
            for pid, spans in by_process.items()
        ]
    }


@pytest.fixture
def ui(browser: Any) -> Any:
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    browser.execute_cdp_cmd("Network.enable", {})
    return browser


def _visible(drv: Any, css: str, count: int = 1) -> list[Any]:
    """Wait until ``count`` elements match ``css`` and are displayed; returns them."""
    return WebDriverWait(drv, WAIT_SECONDS).until(
        lambda d: (
            (found := [e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()])
            and len(found) >= count
            and found
        )
    )


def _failed_api_calls(drv: Any) -> list[str]:
    """API requests of the page that did not succeed, from the page's resource timings."""
    script = """
      return performance.getEntriesByType('resource')
        .filter(e => e.name.includes('/api/') && e.responseStatus >= 400)
        .map(e => e.responseStatus + ' ' + e.name);
    """
    return list(drv.execute_script(script) or [])


def _search(drv: Any, walk: Walk, **params: str) -> list[Any]:
    query = {"service": "frontend", "lookback": "1h", "limit": "20", **params}
    drv.get(f"{walk.base}/search?{urllib.parse.urlencode(query)}")
    return _visible(drv, RESULT)


def _trace_view(drv: Any, walk: Walk, label: str, css: str) -> None:
    drv.get(f"{walk.base}/trace/{walk.trace_ids[0]}")
    _visible(drv, ".span-row")
    button = drv.find_element(By.CSS_SELECTOR, "button.AltViewOptions")
    # v2.14 opens this menu on hover, v2.20 on click: do both.
    ActionChains(drv).move_to_element(button).click(button).perform()
    menu_item = WebDriverWait(drv, WAIT_SECONDS).until(
        lambda d: d.find_element(By.XPATH, f"//li//a[normalize-space()='{label}']")
    )
    drv.execute_script("arguments[0].click();", menu_item)  # menus animate over each other
    _visible(drv, css)


def search_form(drv: Any, walk: Walk) -> None:
    """Pick the service in the form and press Find Traces, as a user does."""
    drv.get(f"{walk.base}/search")
    WebDriverWait(drv, WAIT_SECONDS).until(
        lambda d: "(0)" not in d.find_element(By.CSS_SELECTOR, ".SearchForm--labelCount").text
    )
    _visible(drv, "form .ant-select")[0].click()  # the first select is the service
    drv.switch_to.active_element.send_keys("frontend", Keys.ENTER)
    drv.find_element(By.XPATH, "//button[normalize-space()='Find Traces']").click()
    _visible(drv, RESULT)


def search_operation(drv: Any, walk: Walk) -> None:
    _search(drv, walk, operation=walk.operation)


def search_tags(drv: Any, walk: Walk) -> None:
    _search(drv, walk, tags=json.dumps({"retry": "false"}))


def search_two_tags(drv: Any, walk: Walk) -> None:
    _search(drv, walk, tags=json.dumps({"retry": "false", "http.route": walk.operation}))


def search_min_duration(drv: Any, walk: Walk) -> None:
    _search(drv, walk, minDuration="1ms")


def search_max_duration(drv: Any, walk: Walk) -> None:
    _search(drv, walk, maxDuration="10s")


def search_min_max_duration(drv: Any, walk: Walk) -> None:
    _search(drv, walk, minDuration="1ms", maxDuration="10s")


def search_limit(drv: Any, walk: Walk) -> None:
    assert len(_search(drv, walk, limit="3")) == 3


def search_all_filters(drv: Any, walk: Walk) -> None:
    _search(
        drv,
        walk,
        operation=walk.operation,
        tags=json.dumps({"retry": "false"}),
        minDuration="1us",
        maxDuration="100s",
        limit="5",
        lookback="2h",
    )


def trace_timeline(drv: Any, walk: Walk) -> None:
    drv.get(f"{walk.base}/trace/{walk.trace_ids[0]}")
    _visible(drv, ".span-row", count=2)


def trace_graph(drv: Any, walk: Walk) -> None:
    _trace_view(drv, walk, "Trace Graph", ".TraceGraph--dag")


def trace_statistics(drv: Any, walk: Walk) -> None:
    _trace_view(drv, walk, "Trace Statistics", ".TraceStatisticsHeader")
    _visible(drv, "table tbody tr")


def trace_flamegraph(drv: Any, walk: Walk) -> None:
    _trace_view(
        drv, walk, "Trace Flamegraph", ".Flamegraph-wrapper canvas, .Flamegraph-wrapper svg"
    )


def trace_json(drv: Any, walk: Walk) -> None:
    """The "Trace JSON" menu entry opens this API URL; it must be pretty-printed JSON."""
    drv.get(f"{walk.base}/api/traces/{walk.trace_ids[0]}?prettyPrint=true")
    text = drv.find_element(By.TAG_NAME, "body").text
    assert json.loads(text)["data"][0]["traceID"] == walk.trace_ids[0]
    assert "\n  " in text, "prettyPrint=true is not pretty-printed"


def compare(drv: Any, walk: Walk) -> None:
    a, b = walk.trace_ids
    drv.get(f"{walk.base}/trace/{a}...{b}?cohort={a}&cohort={b}")
    _visible(drv, ".DiffNode--body")


def system_architecture(drv: Any, walk: Walk) -> None:
    drv.get(f"{walk.base}/dependencies")
    _visible(drv, ".DependencyGraph--graphWrapper svg, .DependencyGraph--graphWrapper canvas")


def monitor(drv: Any, walk: Walk) -> None:
    drv.get(f"{walk.base}/monitor")
    _visible(drv, "tr.ant-table-row")  # the operations of the selected service, with metrics
    page = drv.find_element(By.TAG_NAME, "body").text
    for problem in ("fetch data", "No data yet"):
        assert problem not in page, problem


def _upload(drv: Any, walk: Walk, name: str) -> None:
    drv.get(f"{walk.base}/search")
    tab = WebDriverWait(drv, WAIT_SECONDS).until(
        lambda d: d.find_element(By.XPATH, "//*[@role='tab' and normalize-space()='Upload']")
    )
    tab.click()
    drv.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(walk.files[name]))
    _visible(drv, RESULT)


def upload_jaeger_json(drv: Any, walk: Walk) -> None:
    _upload(drv, walk, "jaeger")


def upload_otlp_json(drv: Any, walk: Walk) -> None:
    _upload(drv, walk, "otlp")


FEATURES: dict[str, Callable[[Any, Walk], None]] = {
    "search-form": search_form,
    "search-operation": search_operation,
    "search-tags": search_tags,
    "search-two-tags": search_two_tags,
    "search-min-duration": search_min_duration,
    "search-max-duration": search_max_duration,
    "search-min-max-duration": search_min_max_duration,
    "search-limit": search_limit,
    "search-all-filters": search_all_filters,
    "trace-timeline": trace_timeline,
    "trace-graph": trace_graph,
    "trace-statistics": trace_statistics,
    "trace-flamegraph": trace_flamegraph,
    "trace-json": trace_json,
    "compare": compare,
    "system-architecture": system_architecture,
    "monitor": monitor,
    "upload-jaeger-json": upload_jaeger_json,
    "upload-otlp-json": upload_otlp_json,
}


@pytest.mark.parametrize("feature", FEATURES)
def test_feature(walk: Walk, ui: Any, feature: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"jaeger-ui-{VERSION}-{feature}.png"
    try:
        FEATURES[feature](ui, walk)
    except Exception as exc:
        failed = _failed_api_calls(ui)
        raise AssertionError(
            f"{feature} failed on {ui.current_url}: {type(exc).__name__} {str(exc)[:300]}; "
            f"failed API calls: {failed or 'none'}"
        ) from exc
    finally:
        time.sleep(0.5)  # let charts and transitions settle for the screenshot
        ui.save_screenshot(str(shot))

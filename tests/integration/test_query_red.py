"""RED and dependencies through the whole pipeline: ingest -> streams -> sink -> query API.

Every span is counted by the streams workers before sampling; the query API must report the
same calls and errors per service as were sent, whatever the sampling policy drops.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from deploy.local.stack import LocalStack
from tests.conftest import running_pipeline
from tests.integration.helpers import wait_until
from tracehouse.demo_traces import make_request, post_otlp_http

DROP_MOST = """
policies:
  - name: errors-only
    type: status_code
    status_code: {status_codes: [ERROR]}
decision_wait: 1s
"""


@pytest.fixture
def red_stack(services: LocalStack, tmp_path: Path) -> Iterator[LocalStack]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(DROP_MOST)
    with running_pipeline(
        services,
        tmp_path,
        sampling_policy_file=str(policy),
        red_window_seconds=1.0,
        graph_wait_seconds=1.0,
        streams_tick_seconds=0.2,
    ) as stack:
        yield stack


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def test_red_counts_all_spans_despite_sampling(red_stack: LocalStack, browser: Any) -> None:
    s = red_stack.settings
    request = make_request(traces=60, seed=21)
    post_otlp_http(f"http://127.0.0.1:{s.ingest_http_port}/v1/traces", request.SerializeToString())
    data = trace_pb2.TracesData.FromString(request.SerializeToString())
    calls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for rs in data.resource_spans:
        service = rs.resource.attributes[0].value.string_value
        for ss in rs.scope_spans:
            for span in ss.spans:
                calls[service] += 1
                errors[service] += span.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert sum(errors.values()) > 0
    # Expected service-graph edges: every cross-service parent/child pair (client -> server).
    owner = {
        span.span_id: rs.resource.attributes[0].value.string_value
        for rs in data.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    }
    edges: Counter[tuple[str, str]] = Counter()
    for rs in data.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                parent = owner.get(span.parent_span_id)
                child = rs.resource.attributes[0].value.string_value
                if parent and parent != child:
                    edges[(parent, child)] += 1
    base = f"http://127.0.0.1:{s.query_http_port}"
    end_us = time.time_ns() // 1000 + 60_000_000
    start_us = end_us - 3_600_000_000

    def summary() -> dict[str, tuple[int, int]]:
        body = get(f"{base}/api/red/summary?start={start_us}&end={end_us}")
        out: Counter[str] = Counter()
        errs: Counter[str] = Counter()
        for item in body["data"]:
            out[item["service"]] += item["calls"]
            errs[item["service"]] += item["errors"]
        return {k: (out[k], errs[k]) for k in out}

    expected = {k: (calls[k], errors[k]) for k in calls}
    assert wait_until(summary, lambda got: got == expected, timeout=90) == expected

    # The time series of one service adds up to the same totals, with quantiles in range.
    service = max(calls, key=lambda k: calls[k])
    body = get(f"{base}/api/red?service={service}&start={start_us}&end={end_us}")
    overall = next(x for x in body["data"]["series"] if x["operation"] == "")
    assert sum(p["calls"] for p in overall["points"]) == calls[service]
    for p in overall["points"]:
        assert p["p50"] is not None and 0 <= p["p50"] <= p["p90"] <= p["p99"]
        assert p["rate"] == pytest.approx(p["calls"] / body["data"]["step"])
    per_op = [x for x in body["data"]["series"] if x["operation"]]
    assert sum(p["calls"] for x in per_op for p in x["points"]) == calls[service]
    # Hour steps read the hourly rollup (materialized view): same totals.
    hourly = get(f"{base}/api/red?service={service}&start={start_us}&end={end_us}&step=3600")
    assert hourly["data"]["step"] == 3600
    rolled = next(x for x in hourly["data"]["series"] if x["operation"] == "")
    assert sum(p["calls"] for p in rolled["points"]) == calls[service]

    # Only error traces were stored, yet the dependency graph comes from all spans.
    stored = get(f"{base}/api/traces?service=frontend&limit=1000&start={start_us}&end={end_us}")
    assert len(stored["data"]) < 60
    deps = wait_until(
        lambda: get(f"{base}/api/dependencies?endTs={end_us // 1000}&lookback=3600000")["data"],
        lambda d: sum(x["callCount"] for x in d) > 0,
        timeout=60,
    )
    assert {(d["parent"], d["child"]) for d in deps} <= {
        (a, b) for a in calls for b in calls if a != b
    }

    # The RED page shows the same numbers: one summary row per operation of the service.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(base + "/#/red")
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#red-service option"))
    Select(browser.find_element(By.ID, "red-service")).select_by_value(service)
    browser.find_element(By.CSS_SELECTOR, "#red-form button").click()
    wait.until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#red-summary[data-service='{service}']")
    )
    rows = browser.find_elements(By.CSS_SELECTOR, "#red-summary .red-row")
    assert len(rows) == len(per_op)
    assert sum(int(r.find_elements(By.TAG_NAME, "td")[1].text) for r in rows) == calls[service]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#red-charts svg")) == 4 * (1 + len(per_op))
    shots = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shots / "red.png"))

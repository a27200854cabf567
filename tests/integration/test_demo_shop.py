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

from core.clickhouse import connect
from deploy.local.stack import LocalStack
from tests.conftest import running_pipeline
from tracehouse.cli import DEMO_STRATEGIES
from tracehouse.shop_demo import Shop
from tracehouse.shop_topology import edges

REQUESTS = 400


def test_shop_topology_propagation_and_true_red_under_head_sampling(
    services: LocalStack, tmp_path: Path
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

        deadline = time.monotonic() + 90
        while True:
            roots = stored_roots()
            graph = client.query(
                "SELECT DISTINCT ClientService, ServerService FROM service_graph_edges"
            ).result_rows
            red = red_calls()
            if sum(roots.values()) and sum(red.values()) >= REQUESTS * 0.9 and graph:
                time.sleep(3)  # the last RED windows and edges
                break
            assert time.monotonic() < deadline, (roots, red, graph)
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

"""The whole pipeline with every connection encrypted: ingest, streams (faust/aiokafka), sink
and query as separate processes, configured only by TRACEHOUSE_* variables, reaching Kafka
through TLS (CA and host-name checks on) and ClickHouse through ``https://``. Spans sent over
OTLP end up in ClickHouse and come back from the query API: no client the project creates was
left in plaintext, since the broker and ClickHouse are reachable only through the TLS proxies
(tests/integration/tls_support.py) whose plaintext ports the settings never name."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from core.clickhouse import connect
from deploy.local.ports import free_port
from deploy.local.stack import LocalStack
from tests.conftest import running_pipeline
from tests.integration.helpers import wait_until
from tests.integration.test_kafka_security import tls_broker
from tests.integration.tls_support import TlsProxy, make_certs
from tracehouse.demo_traces import send_demo_load

pytestmark = pytest.mark.timeout(240)


def test_spans_flow_end_to_end_over_tls_only(services: LocalStack, tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "tls")
    _, clickhouse_http = services.settings.clickhouse_host_port
    https_port = free_port()
    with (
        tls_broker(certs) as kafka_tls_port,
        TlsProxy(https_port, clickhouse_http, certs),
        running_pipeline(
            services,
            tmp_path / "run",
            partitions=2,
            kafka_bootstrap=f"127.0.0.1:{kafka_tls_port}",
            kafka_security_protocol="SSL",
            kafka_ssl_ca_file=str(certs.ca),
            clickhouse_url=f"https://127.0.0.1:{https_port}",
            clickhouse_ca_file=str(certs.ca),
        ) as stack,
    ):
        s = stack.settings
        sent = send_demo_load(f"http://127.0.0.1:{s.ingest_http_port}/v1/traces", 4, 10)
        store = connect(s.clickhouse, s.clickhouse_database)
        wait_until(
            lambda: int(store.command("SELECT count() FROM otel_traces")),
            lambda n: n == sent,
            timeout=120,
        )
        trace_id = store.command("SELECT any(TraceId) FROM otel_traces")
        url = f"http://127.0.0.1:{s.query_http_port}/api/traces/{trace_id}"
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = json.loads(resp.read())
        assert body["data"][0]["traceID"] == trace_id

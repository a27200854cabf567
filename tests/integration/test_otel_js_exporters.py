"""The OpenTelemetry JS SDK's own OTLP trace exporters (npm
``@opentelemetry/exporter-trace-otlp-*``) against the whole pipeline: OTLP/HTTP JSON,
OTLP/HTTP protobuf and OTLP/gRPC.

tests/clients/otel_js_send.js is told to send one known two-span trace (fixed ids and times,
attributes of every OTLP value type, an event, a link, an ERROR status); the test reads every
stored column of ``otel_traces`` and compares it with what the client was told to send. This is
the proof that our OTLP receivers accept what the most used JS SDK really emits (its JSON uses
hex ids and string-encoded int64 times, which a hand-written client would not catch).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from deploy.local.stack import LocalStack
from tests.conftest import running_pipeline
from tests.integration.helpers import wait_until
from tests.integration.ingest_helpers import ch_rows

REPO = Path(__file__).resolve().parents[2]
BASE_US = 1_700_000_000_000_000
COLUMNS = (
    "SpanId, ParentSpanId, Timestamp, TraceState, SpanName, SpanKind, ServiceName,"
    " ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode,"
    " StatusMessage, `Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`,"
    " `Links.SpanId`, `Links.TraceState`, `Links.Attributes`, TenantId"
)
RESOURCE = {
    "service.name": "js-checkout",
    "deployment.environment": "ci",
    "host.cpu.count": "2",
    "process.runtime.ratio": "0.75",
    "service.canary": "true",
}


@pytest.fixture(scope="module")
def stack(services: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_pipeline(services, tmp_path_factory.mktemp("otel-js")) as s:
        yield s


def _to_ns(value: Any) -> int:
    # clickhouse-connect returns naive datetimes (microseconds); the sent times are on that grid.
    return int(value.replace(tzinfo=UTC).timestamp() * 1_000_000) * 1000


def _ns(offset_us: int) -> int:
    return (BASE_US + offset_us) * 1000


def _rows(settings: Settings, trace_id: str) -> dict[str, dict[str, Any]]:
    sql = f"SELECT {COLUMNS} FROM otel_traces WHERE TraceId = {{t:String}}"
    names = [c.strip().strip("`") for c in COLUMNS.split(",")]
    rows = wait_until(
        lambda: ch_rows(settings, sql, t=trace_id),
        lambda found: len(found) >= 2,
        timeout=60,
    )
    assert len(rows) == 2
    out = {}
    for r in rows:
        row = dict(zip(names, r, strict=True))
        row["Timestamp"] = _to_ns(row["Timestamp"])
        row["Events.Timestamp"] = [_to_ns(t) for t in row["Events.Timestamp"]]
        out[row["SpanName"]] = row
    return out


def _expected(ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The stored rows of the spans otel_js_send.js was told to send."""
    common = {
        "TraceState": "",
        "ServiceName": "js-checkout",
        "ResourceAttributes": RESOURCE,
        "ScopeName": "tracehouse.otel-js-sender",
        "ScopeVersion": "1.4.2",
        "TenantId": "",
    }
    return {
        "GET /checkout": {
            **common,
            "SpanId": ids["root"],
            "ParentSpanId": "",
            "Timestamp": _ns(0),
            "SpanName": "GET /checkout",
            "SpanKind": "Server",
            "SpanAttributes": {"http.request.method": "GET", "http.response.status_code": "502"},
            "Duration": 1000 * 1000,
            "StatusCode": "Unset",
            "StatusMessage": "",
            "Events.Timestamp": [],
            "Events.Name": [],
            "Events.Attributes": [],
            "Links.TraceId": [],
            "Links.SpanId": [],
            "Links.TraceState": [],
            "Links.Attributes": [],
        },
        "charge card": {
            **common,
            "SpanId": ids["child"],
            "ParentSpanId": ids["root"],
            "Timestamp": _ns(100),
            "SpanName": "charge card",
            "SpanKind": "Client",
            "SpanAttributes": {
                "payment.provider": "acme",
                "payment.attempt": "3",
                "payment.amount": "12.5",
                "payment.retry": "true",
                "payment.cards": '["visa","amex"]',
            },
            "Duration": 500 * 1000,
            "StatusCode": "Error",
            "StatusMessage": "card declined",
            "Events.Timestamp": [_ns(250)],
            "Events.Name": ["card.declined"],
            "Events.Attributes": [{"decline.code": "insufficient_funds", "decline.soft": "false"}],
            "Links.TraceId": [ids["linkTraceId"]],
            "Links.SpanId": [ids["linkSpanId"]],
            "Links.TraceState": [""],
            "Links.Attributes": [{"link.reason": "retry-of"}],
        },
    }


def _send(exporter: str, url: str, trace_id: str) -> dict[str, str]:
    node = shutil.which("node")
    assert node, "node is installed by deploy/local/system-deps.sh"
    module = REPO / "tests/clients/node_modules/@opentelemetry/exporter-trace-otlp-grpc"
    assert module.is_dir(), "make setup"
    done = subprocess.run(
        [node, str(REPO / "tests/clients/otel_js_send.js"), exporter, url, trace_id, str(BASE_US)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    ids = json.loads(done.stdout)
    assert isinstance(ids, dict)
    assert ids["traceId"] == trace_id
    return ids


@pytest.mark.parametrize("exporter", ["http-json", "http-proto", "grpc"])
def test_exporter_spans_are_stored_as_sent(stack: LocalStack, exporter: str) -> None:
    s = stack.settings
    if exporter == "grpc":
        assert s.ingest_grpc_port, "the gRPC receiver is enabled in the test stack"
        url = f"http://127.0.0.1:{s.ingest_grpc_port}"
    else:
        url = f"http://127.0.0.1:{s.ingest_http_port}/v1/traces"
    trace_id = uuid.uuid4().hex
    ids = _send(exporter, url, trace_id)
    rows = _rows(s, trace_id)
    expected = _expected(ids)
    assert sorted(rows) == sorted(expected)
    differences = [
        (span, column, got, expected[span][column])
        for span, row in rows.items()
        for column, got in row.items()
        if got != expected[span][column]
    ]
    assert differences == []

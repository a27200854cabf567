"""A real OpenTelemetry SDK sends a 5-span, 2-service trace; all 5 spans land in ClickHouse."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from core.clickhouse import connect
from deploy.local.stack import LocalStack
from tests.integration.helpers import wait_until


def _provider(service: str, endpoint: str, memory: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "host.name": "test-host"})
    )
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider


def test_sdk_trace_lands_in_clickhouse_exactly(pipeline: LocalStack) -> None:
    settings = pipeline.settings
    endpoint = f"http://127.0.0.1:{settings.ingest_http_port}/v1/traces"
    memory = InMemorySpanExporter()
    shop = _provider("shop", endpoint, memory).get_tracer("tests.shop", "1.2.3")
    payments = _provider("payments", endpoint, memory).get_tracer("tests.payments")

    with shop.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.request.method", "GET")
        root.set_attribute("http.response.status_code", 200)
        with shop.start_as_current_span("charge card", kind=SpanKind.CLIENT) as client:
            client.set_attribute("peer.service", "payments")
            ctx = trace.set_span_in_context(client)
            with payments.start_as_current_span(
                "Charge", context=ctx, kind=SpanKind.SERVER
            ) as server:
                server.add_event("fraud-check", {"score": 0.25})
                with payments.start_as_current_span("SELECT cards") as db:
                    db.set_attribute("db.system", "postgresql")
                    db.set_attribute("retries", 2)
                    db.set_status(Status(StatusCode.ERROR, "deadlock"))
                with payments.start_as_current_span("audit", kind=SpanKind.PRODUCER) as audit:
                    audit.set_attribute("flag", True)

    sent: list[ReadableSpan] = list(memory.get_finished_spans())
    assert len(sent) == 5
    trace_id = format(sent[0].context.trace_id, "032x")

    client_ch = connect(settings.clickhouse_url, settings.clickhouse_database)
    query = (
        "SELECT SpanId, ParentSpanId, ServiceName, SpanName, SpanKind, StatusCode, StatusMessage,"
        " toUnixTimestamp64Nano(Timestamp), Duration, SpanAttributes, ScopeName, ScopeVersion,"
        " ResourceAttributes, `Events.Name`, `Events.Attributes`, TraceId"
        " FROM otel_traces WHERE TraceId = {t:String}"
    )
    rows = wait_until(
        lambda: client_ch.query(query, parameters={"t": trace_id}).result_rows,
        lambda r: len(r) >= 5,
        timeout=60,
    )
    assert len(rows) == 5
    by_id = {r[0]: r for r in rows}
    for span in sent:
        span_id = format(span.context.span_id, "016x")
        row = by_id[span_id]
        parent = format(span.parent.span_id, "016x") if span.parent else ""
        assert row[1] == parent
        assert row[2] == span.resource.attributes["service.name"]
        assert row[3] == span.name
        assert row[7] == span.start_time
        assert span.end_time is not None and span.start_time is not None
        assert row[8] == span.end_time - span.start_time
        assert row[15] == trace_id
        assert row[12]["host.name"] == "test-host"
        for key, value in (span.attributes or {}).items():
            expected = str(value).lower() if isinstance(value, bool) else str(value)
            assert row[9][key] == expected

    names = {r[3]: r for r in rows}
    assert names["GET /checkout"][4] == "Server" and names["charge card"][4] == "Client"
    assert names["audit"][4] == "Producer" and names["SELECT cards"][4] == "Internal"
    assert names["SELECT cards"][5] == "Error" and names["SELECT cards"][6] == "deadlock"
    assert names["SELECT cards"][9] == {"db.system": "postgresql", "retries": "2"}
    assert names["Charge"][13] == ["fraud-check"]
    assert names["Charge"][14] == [{"score": "0.25"}]
    assert names["GET /checkout"][10] == "tests.shop" and names["GET /checkout"][11] == "1.2.3"
    # Cross-service parent link: the payments server span's parent is the shop client span.
    assert names["Charge"][1] == names["charge card"][0]
    assert {r[2] for r in rows} == {"shop", "payments"}

    lookup = client_ch.query(
        "SELECT count() FROM otel_traces_trace_id_ts WHERE TraceId = {t:String}",
        parameters={"t": trace_id},
    ).result_rows[0][0]
    assert lookup >= 1

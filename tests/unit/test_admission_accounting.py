"""The exporter's accounting with an in-process publisher double (the real broker path is
covered by the integration tests): every received span is accepted, rejected or sampled out."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from core.errors import RateLimited
from core.partitioning import partition_for_key
from core.tenancy import Limit, TenantConfig
from ingest import metrics
from ingest.admission import AdmissionConfig, SpanAdmission
from ingest.kafka_publisher import PublishError
from ingest.rpc_status import varint
from streams.otlp_values import attributes_to_dict
from tracehouse.demo_traces import make_request


class RecordingPublisher:
    """Resolves (or fails) each publish on the next loop iteration, like a broker ack."""

    def __init__(self, fail: bool = False) -> None:
        self.messages: list[tuple[str, bytes, bytes | None, int | None]] = []
        self.fail = fail

    def publish(
        self, topic: str, value: bytes, key: bytes | None, partition: int | None
    ) -> asyncio.Future[None]:
        self.messages.append((topic, value, key, partition))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail:
            asyncio.get_running_loop().call_soon(
                fut.set_exception, PublishError("broker down", retryable=True)
            )
        else:
            asyncio.get_running_loop().call_soon(fut.set_result, None)
        return fut


def _exporter(pub: RecordingPublisher, **config: object) -> SpanAdmission:
    tenants = config.pop("tenants", None)
    cfg = AdmissionConfig(topic="t", partitions=4, **config)  # type: ignore[arg-type]
    return SpanAdmission(pub, cfg, tenants)  # type: ignore[arg-type]


def _value(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def _data(traces: int, seed: int) -> trace_pb2.TracesData:
    return trace_pb2.TracesData.FromString(make_request(traces, seed=seed).SerializeToString())


def test_one_message_per_partition_with_tenant_stamp() -> None:
    pub = RecordingPublisher()
    tenants = TenantConfig(tokens={"tok": "acme"})
    outcome = asyncio.run(_exporter(pub, tenants=tenants).export(_data(40, 1), "unit", "acme"))
    assert outcome.accepted == 200 and outcome.rejected == 0
    partitions = [m[3] for m in pub.messages]
    assert len(partitions) == len(set(partitions)) <= 4
    for _, value, key, partition in pub.messages:
        td = trace_pb2.TracesData.FromString(value)
        assert key is not None and partition == partition_for_key(key, 4)
        for rs in td.resource_spans:
            assert attributes_to_dict(rs.resource.attributes)["tracehouse.tenant"] == "acme"


# Explicit zero counts (fields 10, 12, 14): protobuf reads them and never writes them, so only
# a request's own bytes, published as they came, carry them.
MARK = b"\x50\x00\x60\x00\x70\x00"


def _framed(field: int, body: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(body)) + body


def _as_client_sent(data: trace_pb2.TracesData, forged_tenant: str = "") -> bytes:
    """``data`` (one resource, one scope) laid out by a client: MARK in every span."""
    rs, ss = data.resource_spans[0], data.resource_spans[0].scope_spans[0]
    resource = trace_pb2.ResourceSpans()
    resource.resource.CopyFrom(rs.resource)
    if forged_tenant:
        kv = resource.resource.attributes.add(key="tracehouse.tenant")
        kv.value.string_value = forged_tenant
    spans = b"".join(_framed(2, span.SerializeToString() + MARK) for span in ss.spans)
    scope = _framed(1, ss.scope.SerializeToString()) + spans
    return _framed(1, _framed(1, resource.resource.SerializeToString()) + _framed(2, scope))


@pytest.mark.parametrize(
    ("tenant", "forged", "ratio", "as_sent"),
    [
        ("", "", 1.0, True),  # nothing changed: the client's bytes go to Kafka
        ("acme", "", 1.0, False),  # the tenant is stamped: the stamped request goes
        ("", "evil", 1.0, False),  # a forged tenant is removed first
        ("", "", 0.5, False),  # head sampling drops spans and writes the threshold
    ],
)
def test_the_request_bytes_are_published_only_while_they_are_the_request(
    tenant: str, forged: str, ratio: float, as_sent: bool
) -> None:
    raw = _as_client_sent(_data(40, 3), forged)
    request = trace_pb2.TracesData.FromString(raw)
    total = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    pub = RecordingPublisher()
    tenants = TenantConfig(tokens={"tok": "acme"})
    outcome = asyncio.run(
        _exporter(pub, tenants=tenants, sampling_ratio=ratio).export(
            request, "unit", tenant, raw=raw
        )
    )
    assert total > 10 and outcome.accepted + outcome.sampled_out == total
    assert outcome.accepted > 0
    published = [trace_pb2.TracesData.FromString(value) for _, value, _, _ in pub.messages]
    spans = sum(
        len(ss.spans) for td in published for rs in td.resource_spans for ss in rs.scope_spans
    )
    assert spans == outcome.accepted
    assert all(MARK in value for _, value, _, _ in pub.messages) is as_sent
    assert any(MARK in value for _, value, _, _ in pub.messages) is as_sent
    stamped = {
        attributes_to_dict(rs.resource.attributes).get("tracehouse.tenant", "")
        for td in published
        for rs in td.resource_spans
    }
    assert stamped == {tenant}


def test_failed_ack_raises_and_counts_kafka_unavailable() -> None:
    before = _value(
        "tracehouse_ingest_spans_rejected_total", protocol="unit2", reason="kafka_unavailable"
    )
    with pytest.raises(PublishError):
        asyncio.run(_exporter(RecordingPublisher(fail=True)).export(_data(4, 2), "unit2"))
    after = _value(
        "tracehouse_ingest_spans_rejected_total", protocol="unit2", reason="kafka_unavailable"
    )
    assert after - before == 20


def test_fire_and_forget_counts_losses_after_the_answer() -> None:
    async def run() -> None:
        exporter = _exporter(RecordingPublisher(fail=True), wait_for_ack=False)
        outcome = await exporter.export(_data(4, 3), "unit3")
        assert outcome.accepted == 20  # answered before Kafka said anything
        await asyncio.sleep(0.01)

    asyncio.run(run())
    lost = _value(
        "tracehouse_ingest_spans_rejected_total", protocol="unit3", reason="kafka_lost_after_ack"
    )
    assert lost == 20


def test_rate_limit_and_sampling_keep_the_accounting_identity() -> None:
    tenants = TenantConfig(tokens={"a": "a"}, limits={"a": Limit(10, 30)})
    exporter = _exporter(RecordingPublisher(), tenants=tenants, sampling_ratio=0.5)
    total = {"received": 0, "accepted": 0, "limited": 0, "sampled": 0}

    async def run() -> None:
        for seed in range(5):
            data = _data(6, seed + 10)  # 30 spans
            total["received"] += 30
            try:
                outcome = await exporter.export(data, "unit4", "a")
            except RateLimited as exc:
                assert exc.retry_after > 0
                total["limited"] += 30
                continue
            total["accepted"] += outcome.accepted
            total["sampled"] += outcome.sampled_out

    asyncio.run(run())
    assert total["limited"] == 120  # burst 30 admits the first request only
    assert total["received"] == total["accepted"] + total["sampled"] + total["limited"]
    assert _value("tracehouse_ingest_spans_received_total", protocol="unit4") == 150
    assert metrics.SPANS_SAMPLED_OUT.labels("unit4")._value.get() == total["sampled"]


def test_unknown_partitioner_is_refused() -> None:
    with pytest.raises(ValueError):
        SpanAdmission(
            RecordingPublisher(),  # type: ignore[arg-type]
            AdmissionConfig(topic="t", partitions=1, partitioner="crc32"),
        )

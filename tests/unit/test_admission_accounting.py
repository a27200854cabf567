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

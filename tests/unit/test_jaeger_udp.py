"""The Jaeger agent UDP listener: every datagram ends in exactly one counted outcome, and a
flood waiting on Kafka is shed (counted), never queued without bound. Real sockets on
loopback; the Kafka publisher is the recording stand-in (or one that never acknowledges)."""

from __future__ import annotations

import asyncio
import socket

from jaeger_client.thrift_gen.agent import Agent
from jaeger_client.thrift_gen.jaeger import ttypes as J
from thrift.protocol import TCompactProtocol
from thrift.Thrift import TMessageType
from thrift.transport import TTransport

from core.tenancy import TenantConfig
from ingest import jaeger_udp, metrics
from ingest.admission import AdmissionConfig, SpanAdmission
from tests.recording_publisher import RecordingPublisher

PROTOCOL = jaeger_udp.COMPACT_PROTOCOL


def packet() -> bytes:
    span = J.Span(
        traceIdLow=1,
        traceIdHigh=2,
        spanId=3,
        parentSpanId=0,
        operationName="op",
        flags=1,
        startTime=1_700_000_000_000_000,
        duration=1,
    )
    buf = TTransport.TMemoryBuffer()
    oprot = TCompactProtocol.TCompactProtocol(buf)
    oprot.writeMessageBegin("emitBatch", TMessageType.ONEWAY, 1)
    Agent.emitBatch_args(batch=J.Batch(process=J.Process(serviceName="s"), spans=[span])).write(
        oprot
    )
    oprot.writeMessageEnd()
    return bytes(buf.getvalue())


class StalledPublisher(RecordingPublisher):
    """Kafka that never acknowledges: every export waits."""

    def publish(
        self, topic: str, value: bytes, key: bytes | None, partition: int | None
    ) -> asyncio.Future[None]:
        self.values.append(value)
        return asyncio.get_running_loop().create_future()


def outcome(name: str) -> float:
    return metrics.REQUESTS.labels(PROTOCOL, name)._value.get()


def admission(publisher: RecordingPublisher, tenants: TenantConfig | None = None) -> SpanAdmission:
    return SpanAdmission(
        publisher,  # type: ignore[arg-type]
        AdmissionConfig(topic="t", partitions=2, ack_timeout_seconds=60),
        tenants,
    )


async def _send_and_wait(
    listener: jaeger_udp.AgentListener, packets: list[bytes], done: float, name: str
) -> None:
    port = listener.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for p in packets:
            udp.sendto(p, ("127.0.0.1", port))
    for _ in range(500):
        if outcome(name) >= done:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name}: {outcome(name)} < {done}")


def test_datagrams_are_counted_by_outcome() -> None:
    async def run() -> None:
        publisher = RecordingPublisher()
        listener = await jaeger_udp.start_agent_listener(
            admission(publisher), "127.0.0.1", 0, compact=True, reuse_port=False
        )
        try:
            ok, big, bad = outcome("ok"), outcome("too_large"), outcome("invalid_thrift")
            await _send_and_wait(listener, [packet()], ok + 1, "ok")
            await _send_and_wait(listener, [bytes(65_001)], big + 1, "too_large")
            await _send_and_wait(listener, [b"\x82\x21"], bad + 1, "invalid_thrift")
            assert len(publisher.values) == 1
        finally:
            await listener.drain(1)

    asyncio.run(run())


def test_auth_on_refuses_udp() -> None:
    async def run() -> None:
        tenants = TenantConfig(tokens={"secret": "acme"})
        listener = await jaeger_udp.start_agent_listener(
            admission(RecordingPublisher(), tenants), "127.0.0.1", 0, True, False
        )
        try:
            before = outcome("unauthenticated")
            await _send_and_wait(listener, [packet()], before + 1, "unauthenticated")
        finally:
            await listener.drain(1)

    asyncio.run(run())


def test_a_flood_waiting_on_kafka_is_shed_and_counted() -> None:
    async def run() -> None:
        publisher = StalledPublisher()
        listener = await jaeger_udp.start_agent_listener(
            admission(publisher), "127.0.0.1", 0, True, False
        )
        try:
            before = outcome("overloaded")
            limit = jaeger_udp.MAX_PENDING_PACKETS
            await _send_and_wait(listener, [packet()] * (limit + 20), before + 20, "overloaded")
            assert len(publisher.values) == limit  # the rest never reached the admission core
        finally:
            await listener.drain(0.1)

    asyncio.run(run())

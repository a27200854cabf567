"""Kafka security settings reach every client, on a real broker.

TLS: Tansu behind a TLS-terminating proxy (tests/integration/tls_support.py says why); the
project's own factories (``core.kafka.client_config`` for confluent-kafka, ``faust_credentials``
for faust/aiokafka) produce and consume through it, with the CA and host-name checks on; a
wrong CA or a certificate for another host is refused with an error naming the setting.
SASL: Tansu with ``--authentication`` refuses every login (its memory engine stores no SCRAM
credentials), so what can be shown locally is that the clients do SASL with the configured
mechanism and that the refusal names the settings; a successful SASL login needs a real Kafka.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError as AioKafkaError
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from core.kafka import KafkaConnection, KafkaLoginError, client_config, faust_credentials
from core.settings import Settings, Topics
from core.topics import ensure_topics, partition_count, state_topic_name
from deploy.local.broker import start_broker
from deploy.local.ports import free_port
from ingest.kafka_publisher import producer_config
from streams.app import create_app
from streams.state_log import load_state
from tests.integration.tls_support import CertFiles, TlsProxy, make_certs

pytestmark = pytest.mark.timeout(120)


@contextmanager
def tls_broker(certs: CertFiles, *, mutual: bool = False) -> Iterator[int]:
    """A Tansu broker reachable only through TLS (``mutual``: with a client certificate);
    yields the TLS port."""
    broker_port, tls_port = free_port(), free_port()
    proc = start_broker(broker_port, advertised_port=tls_port)
    try:
        with TlsProxy(tls_port, broker_port, certs, require_client_cert=mutual):
            yield tls_port
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def auth_broker() -> Iterator[int]:
    port = free_port()
    proc = start_broker(port, authentication=True)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def tls_settings(port: int, ca: Path, **changes: Any) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return Settings(
        kafka_bootstrap=f"127.0.0.1:{port}",
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=str(ca),
        partitions=2,
        streams_group=f"streams-{tag}",
        topics=Topics(
            raw_spans=f"raw_{tag}",
            sampled_spans=f"sampled_{tag}",
            red_metrics=f"red_{tag}",
            graph_edges=f"edges_{tag}",
            accounting=f"acct_{tag}",
            streams_dlq=f"sdlq_{tag}",
            sink_dlq=f"kdlq_{tag}",
        ),
        **changes,
    ).validate()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_port(certs: CertFiles) -> Iterator[int]:
    with tls_broker(certs) as port:
        yield port


def _consume_all(config: dict[str, Any], topic: str, want: int) -> list[bytes]:
    consumer = Consumer(config | {"auto.offset.reset": "earliest"})
    got: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in (0, 1)])
        for _ in range(60):
            for msg in consumer.consume(100, 0.5):
                value = msg.value()
                if msg.error() is None and value is not None:
                    got.append(value)
            if len(got) >= want:
                break
    finally:
        consumer.close()
    return got


def test_confluent_clients_produce_and_consume_over_tls(tls_port: int, certs: CertFiles) -> None:
    s = tls_settings(tls_port, certs.ca)
    outcome = ensure_topics(s)
    assert set(outcome.values()) == {"created"}
    assert state_topic_name(s.streams_group) in outcome
    assert partition_count(s.kafka, s.topics.raw_spans) == 2
    producer = Producer(producer_config(s.kafka))  # ingest's producer
    for i in range(10):
        producer.produce(s.topics.raw_spans, f"span-{i}".encode(), partition=i % 2)
    assert producer.flush(30) == 0
    got = _consume_all(
        client_config(s.kafka, group_id=f"g-{uuid.uuid4().hex}"), s.topics.raw_spans, 10
    )
    assert sorted(got) == sorted(f"span-{i}".encode() for i in range(10))
    # The streams state log writes a barrier and reads up to it: producer + consumer.
    state = load_state(s.kafka, state_topic_name(s.streams_group), 0, keep_last=10, timeout=30)
    assert state.decisions == []


def test_faust_worker_gets_the_same_tls_settings(tls_port: int, certs: CertFiles) -> None:
    s = tls_settings(tls_port, certs.ca)
    ensure_topics(s)
    app = create_app(s)
    credentials = app.conf.broker_credentials
    assert credentials is not None and credentials.protocol.value == "SSL"
    # What faust hands aiokafka for these credentials, used for a real round trip.
    auth = credentials_to_aiokafka_auth(faust_credentials(s.kafka))

    async def round_trip() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, **auth)
        await producer.start()
        try:
            for i in range(5):
                await producer.send_and_wait(s.topics.sampled_spans, f"m{i}".encode(), partition=0)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            s.topics.sampled_spans,
            bootstrap_servers=s.kafka_bootstrap,
            auto_offset_reset="earliest",
            group_id=None,
            **auth,
        )
        await consumer.start()
        got: list[bytes] = []
        try:
            while len(got) < 5:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
                got += [m.value for msgs in batch.values() for m in msgs if m.value is not None]
        finally:
            await consumer.stop()
        return got

    assert sorted(asyncio.run(round_trip())) == [f"m{i}".encode() for i in range(5)]


def test_a_broker_certificate_from_another_ca_is_refused_naming_the_setting(
    tls_port: int, tmp_path: Path
) -> None:
    other = make_certs(tmp_path / "other")
    s = tls_settings(tls_port, other.ca)
    with pytest.raises(KafkaLoginError, match="TRACEHOUSE_KAFKA_SSL_CA_FILE"):
        partition_count(s.kafka, s.topics.raw_spans, timeout=5)

    async def aiokafka_start() -> None:
        auth = credentials_to_aiokafka_auth(faust_credentials(s.kafka))
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap, request_timeout_ms=5000, **auth
        )
        try:
            await producer.start()
        finally:
            await producer.stop()

    with pytest.raises((AioKafkaError, OSError)):
        asyncio.run(aiokafka_start())


def test_endpoint_identification_checks_the_host_name(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, hosts=("broker.tracehouse.invalid",))
    with tls_broker(certs) as port:
        checked = tls_settings(port, certs.ca)
        with pytest.raises(KafkaLoginError, match="ENDPOINT_IDENTIFICATION"):
            partition_count(checked.kafka, checked.topics.raw_spans, timeout=5)
        unchecked = tls_settings(port, certs.ca, kafka_ssl_endpoint_identification=False)
        assert set(ensure_topics(unchecked).values()) == {"created"}


def test_mutual_tls_with_an_encrypted_client_key_for_both_client_kinds(certs: CertFiles) -> None:
    with tls_broker(certs, mutual=True) as port:
        s = tls_settings(
            port,
            certs.ca,
            kafka_ssl_cert_file=str(certs.client_cert),
            kafka_ssl_key_file=str(certs.client_key),
            kafka_ssl_key_password=certs.client_key_password,
        )
        assert set(ensure_topics(s).values()) == {"created"}
        producer = Producer(producer_config(s.kafka))
        producer.produce(s.topics.raw_spans, b"from confluent", partition=0)
        assert producer.flush(30) == 0
        auth = credentials_to_aiokafka_auth(faust_credentials(s.kafka))

        async def aiokafka_send() -> None:
            aio = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, **auth)
            await aio.start()
            try:
                await aio.send_and_wait(s.topics.raw_spans, b"from aiokafka", partition=1)
            finally:
                await aio.stop()

        asyncio.run(aiokafka_send())
        config = client_config(s.kafka, group_id=f"g-{uuid.uuid4().hex}")
        got = _consume_all(config, s.topics.raw_spans, 2)
        assert sorted(got) == [b"from aiokafka", b"from confluent"]
        # Without the client certificate the server ends the connection after the handshake
        # (TLS 1.3 checks the client last), which librdkafka can only report as a transport
        # failure: docs/operations.md tells operators to check the client certificate then.
        anonymous = tls_settings(port, certs.ca)
        with pytest.raises(KafkaException, match="transport failure"):
            partition_count(anonymous.kafka, anonymous.topics.raw_spans, timeout=5)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_a_refused_sasl_login_names_the_settings(mechanism: str) -> None:
    with auth_broker() as port:
        kafka = KafkaConnection(
            f"127.0.0.1:{port}",
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_username="tracer",
            sasl_password="wrong",
        )
        with pytest.raises(KafkaLoginError) as refused:
            partition_count(kafka, "otlp_spans", timeout=5)
        message = str(refused.value)
        assert "TRACEHOUSE_KAFKA_SASL_PASSWORD" in message and mechanism in message
        assert "'tracer'" in message and "wrong" not in message

        async def aiokafka_start() -> None:
            auth = credentials_to_aiokafka_auth(faust_credentials(kafka))
            producer = AIOKafkaProducer(
                bootstrap_servers=kafka.bootstrap, request_timeout_ms=5000, **auth
            )
            try:
                await producer.start()
            finally:
                await producer.stop()

        # aiokafka 0.14 does SASL with the configured mechanism and is refused too, but reads
        # SCRAM's "e=unknown-user" answer as a KeyError('v') (it expects a signature): the
        # streams worker therefore checks the login with confluent-kafka before faust starts
        # (ensure_state_topic -> partition_count raises KafkaLoginError, as above).
        with pytest.raises((AioKafkaError, OSError, KeyError)):
            asyncio.run(aiokafka_start())


def test_cli_reports_a_refused_login_without_traceback() -> None:
    with auth_broker() as port:
        env = {
            "TRACEHOUSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
            "TRACEHOUSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "TRACEHOUSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "TRACEHOUSE_KAFKA_SASL_USERNAME": "tracer",
            "TRACEHOUSE_KAFKA_SASL_PASSWORD": "wrong",
        }
        out = _cli(env, "topics")
        assert out.returncode == 3, out.stderr
        assert "TRACEHOUSE_KAFKA_SASL_USERNAME" in out.stderr
        assert "Traceback" not in out.stderr


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    from deploy.local.stack import PROJECT_ROOT

    base = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
    return subprocess.run(
        [sys.executable, "-m", "tracehouse.cli", *args],
        env=base | env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )

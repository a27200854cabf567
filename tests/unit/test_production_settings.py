"""The production settings: what the Kafka factory makes of them for each protocol and
mechanism, the rules between them, the per-topic override grammar, the topic specs, and the
OAUTHBEARER token fetch against a real local HTTP token endpoint."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import faust
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.config import ConfigError
from core.kafka import KafkaConnection, client_config, describe_failure, faust_credentials
from core.kafka_oauth import ClientCredentialsToken, TokenError, fetch_token
from core.settings import Settings, Topics
from core.topic_overrides import CONFIG_CHECKS, DECISIONS, checker, parse_overrides
from core.topics import state_topic_name, topic_specs

TOPIC_KEYS = [f for f in Topics.__dataclass_fields__]


def _problems(**changes: Any) -> str:
    with pytest.raises(ConfigError) as err:
        Settings(**changes).validate()
    return str(err.value)


def test_plaintext_adds_nothing_but_the_protocol() -> None:
    config = client_config(KafkaConnection("k:9092"), group_id="g")
    assert config["security.protocol"] == "plaintext"
    assert config["group.id"] == "g"
    assert not any(k.startswith(("sasl.", "ssl.")) for k in config)
    assert faust_credentials(KafkaConnection("k:9092")) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_passes_mechanism_secrets_and_ca_to_both_client_kinds(
    mechanism: str, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    kafka = KafkaConnection(
        "k:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_username="u",
        sasl_password="pw-7f3a",
        ssl_ca_file=str(ca),
    )
    config = client_config(kafka)
    assert config["security.protocol"] == "sasl_ssl"
    assert config["sasl.mechanism"] == mechanism
    assert (config["sasl.username"], config["sasl.password"]) == ("u", "pw-7f3a")
    assert config["ssl.ca.location"] == str(ca)
    assert config["ssl.endpoint.identification.algorithm"] == "https"
    assert "pw-7f3a" not in repr(kafka)  # secrets stay out of logs
    # An empty CA file cannot build a context: aiokafka gets the same file, not a default.
    with pytest.raises(Exception):  # noqa: B017 - ssl raises SSLError, a subclass of OSError
        faust_credentials(kafka)


def test_faust_gets_sasl_credentials_with_the_same_values() -> None:
    kafka = KafkaConnection(
        "k:9092",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="u",
        sasl_password="p",
    )
    creds = faust_credentials(kafka)
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, creds.mechanism.value) == ("u", "p", "SCRAM-SHA-512")
    assert creds.protocol.value == "SASL_PLAINTEXT"


def test_oauthbearer_uses_oidc_in_librdkafka_and_a_token_provider_in_faust() -> None:
    kafka = KafkaConnection(
        "k:9092",
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        oauth_token_url="https://idp/token",
        oauth_client_id="c",
        oauth_client_secret="s",
        oauth_scope="kafka",
    )
    config = client_config(kafka)
    assert config["sasl.oauthbearer.method"] == "oidc"
    assert config["sasl.oauthbearer.token.endpoint.url"] == "https://idp/token"
    assert config["sasl.oauthbearer.scope"] == "kafka"
    assert "sasl.username" not in config
    creds = faust_credentials(kafka)
    assert isinstance(creds, faust.OAuthCredentials)
    assert isinstance(creds.oauth_cb, ClientCredentialsToken)
    assert creds.protocol.value == "SASL_SSL"


def test_endpoint_identification_off_is_passed_on() -> None:
    kafka = KafkaConnection("k:9093", security_protocol="SSL", ssl_endpoint_identification=False)
    assert client_config(kafka)["ssl.endpoint.identification.algorithm"] == "none"
    creds = faust_credentials(kafka)
    assert isinstance(creds, faust.SSLCredentials)
    assert creds.context.check_hostname is False


def test_describe_failure_names_the_settings_never_the_password() -> None:
    kafka = KafkaConnection(
        "k:9092",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password="hunter2",
    )
    text = describe_failure(kafka, "SASL authentication error: bad credentials")
    assert "TRACEHOUSE_KAFKA_SASL_PASSWORD" in text and "hunter2" not in text
    assert "TRACEHOUSE_KAFKA_SSL_CA_FILE" in describe_failure(kafka, "SSL handshake failed")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"kafka_replication_factor": 2, "kafka_min_insync_replicas": 3}, "exceeds"),
        ({"kafka_security_protocol": "SASL_SSL"}, "TRACEHOUSE_KAFKA_SASL_USERNAME"),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "OAUTHBEARER"},
            "TRACEHOUSE_KAFKA_OAUTH_TOKEN_URL",
        ),
        ({"kafka_sasl_username": "u"}, "would not be sent"),
        ({"kafka_ssl_ca_file": "/nonexistent/ca.pem"}, "would not be used"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_ca_file": "/nonexistent/ca.pem"},
            "is not a readable file",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cert_file": "/etc/hostname"},
            "go together",
        ),
        ({"clickhouse_ca_file": "/etc/hostname"}, "is not https://"),
    ],
)
def test_half_configured_security_fails_at_start(changes: dict[str, Any], expected: str) -> None:
    assert expected in _problems(**changes)


def test_https_clickhouse_and_credentials_are_accepted(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    s = Settings(
        clickhouse_url="https://ch.example:8443",
        clickhouse_user="tracer",
        clickhouse_password="pw",
        clickhouse_ca_file=str(ca),
    ).validate()
    assert s.clickhouse.secure and s.clickhouse.user == "tracer"
    assert "pw" not in repr(s.clickhouse)


def test_topic_specs_follow_the_settings() -> None:
    s = Settings(
        partitions=3,
        kafka_replication_factor=3,
        kafka_min_insync_replicas=2,
        kafka_topic_overrides="sink_dlq.retention.ms=-1,decisions.retention.ms=3600000",
    ).validate()
    specs = {spec.name: spec for spec in topic_specs(s, decisions_partitions=5)}
    assert set(specs) == {*s.topics.all(), state_topic_name(s.streams_group)}
    assert all(spec.replication_factor == 3 for spec in specs.values())
    assert all(spec.config["min.insync.replicas"] == "2" for spec in specs.values())
    assert specs[s.topics.sink_dlq].config["retention.ms"] == "-1"
    assert specs[s.topics.raw_spans].config["retention.ms"] == str(s.kafka_retention_ms)
    log = specs[state_topic_name(s.streams_group)]
    assert (log.partitions, log.config["retention.ms"]) == (5, "3600000")
    assert log.config["cleanup.policy"] == "delete"


_VALUES = {
    "retention.ms": st.one_of(st.just(-1), st.integers(1, 2**63 - 1)).map(str),
    "retention.bytes": st.integers(-1, 2**40).map(str),
    "cleanup.policy": st.sampled_from(["delete", "compact", "compact,delete", "delete,compact"]),
    "min.insync.replicas": st.integers(1, 32767).map(str),
    "max.message.bytes": st.integers(1024, 2**31).map(str),
    "segment.ms": st.integers(1, 2**40).map(str),
    "segment.bytes": st.integers(14, 2**31).map(str),
}
assert set(_VALUES) == set(CONFIG_CHECKS)


@st.composite
def _overrides(draw: st.DrawFn) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for topic in draw(st.lists(st.sampled_from(TOPIC_KEYS), unique=True, max_size=4)):
        keys = draw(st.lists(st.sampled_from(sorted(_VALUES)), unique=True, min_size=1))
        out[topic] = {k: draw(_VALUES[k]) for k in keys}
    return out


@given(_overrides())
def test_any_valid_override_list_parses_back_to_what_was_written(
    wanted: dict[str, dict[str, str]],
) -> None:
    text = ",".join(f"{t}.{k}={v}" for t, kv in wanted.items() for k, v in kv.items())
    assert checker(TOPIC_KEYS)(text) is None
    assert parse_overrides(text) == wanted


@given(st.text(max_size=80))
def test_the_override_check_never_crashes_and_what_it_accepts_parses(text: str) -> None:
    problem = checker(TOPIC_KEYS)(text)
    if problem is None:
        parsed = parse_overrides(text)
        assert set(parsed) <= {*TOPIC_KEYS, DECISIONS}
        assert all(k in CONFIG_CHECKS for kv in parsed.values() for k in kv)


class _TokenEndpoint(BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        length = int(self.headers.get("Content-Length", 0))
        form = self.rfile.read(length).decode()
        good = self.headers.get("Authorization") == "Basic Y2xpZW50OnNlY3JldA=="  # client:secret
        if not good or "grant_type=client_credentials" not in form:
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"access_token": f"tok-{type(self).calls}", "expires_in": 3600})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def token_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()


def test_oauth_token_is_fetched_once_and_reused(token_url: str) -> None:
    provider = ClientCredentialsToken(token_url, "client", "secret", "kafka")
    start = _TokenEndpoint.calls

    async def twice() -> tuple[str, str]:
        return await provider.token(), await provider.token()

    first, second = asyncio.run(twice())
    assert first == second == f"tok-{start + 1}"
    assert _TokenEndpoint.calls == start + 1


def test_a_refused_oauth_client_names_the_settings(token_url: str) -> None:
    with pytest.raises(TokenError, match="TRACEHOUSE_KAFKA_OAUTH_CLIENT_SECRET"):
        fetch_token(token_url, "client", "wrong")


def test_tracehouse_config_never_prints_a_secret() -> None:
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="tracer",
        kafka_sasl_password="pw-91c2",
        clickhouse_password="ch-55d1",
    ).validate()
    shown, hidden = s.without_secrets()
    text = shown.to_yaml()
    assert "pw-91c2" not in text and "ch-55d1" not in text
    assert 'sasl_username: "tracer"' in text
    assert hidden == ["kafka_sasl_password", "clickhouse_password"]


def test_a_refused_connection_to_a_sasl_ssl_broker_is_not_a_login_failure() -> None:
    from confluent_kafka import KafkaError

    from core.kafka import is_login_failure

    kafka = KafkaConnection("k:9093", security_protocol="SASL_SSL", sasl_username="u")
    refused = KafkaError(
        KafkaError._TRANSPORT,
        "sasl_ssl://k:9093/bootstrap: Connect to ipv4#10.0.0.1:9093 failed: Connection refused",
    )
    assert not is_login_failure(refused)
    assert describe_failure(kafka, refused).startswith("Kafka at k:9093: ")
    denied = KafkaError(KafkaError._AUTHENTICATION, "sasl_ssl://k:9093/bootstrap: SASL failed")
    assert is_login_failure(denied)
    assert "TRACEHOUSE_KAFKA_SASL_PASSWORD" in describe_failure(kafka, denied)
    tls = KafkaError(KafkaError._SSL, "sasl_ssl://k:9093/1: handshake: unknown CA")
    assert "TRACEHOUSE_KAFKA_SSL_CA_FILE" in describe_failure(kafka, tls)


@given(st.text(max_size=200))
def test_describing_any_error_text_names_the_brokers(text: str) -> None:
    kafka = KafkaConnection("k:9092", security_protocol="SASL_SSL", sasl_username="u")
    assert "k:9092" in describe_failure(kafka, text)

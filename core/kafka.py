"""The one place Kafka client configurations are made, for every client the project creates.

Every confluent-kafka producer, consumer and admin client starts from :func:`client_config`,
and the faust (aiokafka) worker takes its credentials from :func:`faust_credentials`. Both
read one :class:`KafkaConnection` (``Settings.kafka``), so the bootstrap servers and the
security settings (SASL mechanism and secrets, TLS CA / client certificate / key, endpoint
identification) are set once for all clients: a component cannot reach a secured cluster with
one client and fall back to plaintext with another. The functions take a ``KafkaConnection``,
never a bare bootstrap string, so a forgotten call site is a type error, not a plaintext
connection.
"""

from __future__ import annotations

import logging
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from core.kafka_oauth import ClientCredentialsToken

log = logging.getLogger("tracehouse.kafka")

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
# librdkafka's _AUTHENTICATION and _SSL codes.
_SSL_CODE = -181
_LOGIN_CODES = (-169, _SSL_CODE, 58)  # and the broker's SASL_AUTHENTICATION_FAILED


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to authenticate to them (validated by ``Settings``)."""

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    oauth_token_url: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = field(default="", repr=False)
    oauth_scope: str = ""
    ssl_ca_file: str = ""
    ssl_cert_file: str = ""
    ssl_key_file: str = ""
    ssl_key_password: str = field(default="", repr=False)
    ssl_endpoint_identification: bool = True

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")


def security_config(kafka: KafkaConnection) -> dict[str, Any]:
    """The librdkafka security properties of ``kafka`` (nothing for plaintext)."""
    config: dict[str, Any] = {"security.protocol": kafka.security_protocol.lower()}
    if kafka.uses_sasl:
        config["sasl.mechanism"] = kafka.sasl_mechanism
        if kafka.sasl_mechanism == "OAUTHBEARER":
            # librdkafka's own OIDC client-credentials flow; aiokafka gets the same grant
            # from core.kafka_oauth (faust_credentials).
            config["sasl.oauthbearer.method"] = "oidc"
            config["sasl.oauthbearer.token.endpoint.url"] = kafka.oauth_token_url
            config["sasl.oauthbearer.client.id"] = kafka.oauth_client_id
            config["sasl.oauthbearer.client.secret"] = kafka.oauth_client_secret
            if kafka.oauth_scope:
                config["sasl.oauthbearer.scope"] = kafka.oauth_scope
        else:
            config["sasl.username"] = kafka.sasl_username
            config["sasl.password"] = kafka.sasl_password
    if kafka.uses_tls:
        if kafka.ssl_ca_file:
            config["ssl.ca.location"] = kafka.ssl_ca_file
        if kafka.ssl_cert_file:
            config["ssl.certificate.location"] = kafka.ssl_cert_file
            config["ssl.key.location"] = kafka.ssl_key_file
            if kafka.ssl_key_password:
                config["ssl.key.password"] = kafka.ssl_key_password
        config["ssl.endpoint.identification.algorithm"] = (
            "https" if kafka.ssl_endpoint_identification else "none"
        )
    return config


def client_config(kafka: KafkaConnection, **options: Any) -> dict[str, Any]:
    """A confluent-kafka configuration for ``kafka`` plus the client's own ``options``
    (given with underscores for dots: ``group_id="g"`` is ``group.id``)."""
    config: dict[str, Any] = {"bootstrap.servers": kafka.bootstrap}
    config.update(security_config(kafka))
    config["error_cb"] = login_error_logger(kafka)
    config.update({key.replace("_", "."): value for key, value in options.items()})
    return config


def ssl_context(kafka: KafkaConnection) -> ssl.SSLContext:
    """The TLS context aiokafka uses: the configured CA (or the system's), the client
    certificate if one is set, and hostname checking unless endpoint identification is off
    (the certificate chain is verified either way)."""
    context = ssl.create_default_context(cafile=kafka.ssl_ca_file or None)
    if kafka.ssl_cert_file:
        context.load_cert_chain(
            kafka.ssl_cert_file, kafka.ssl_key_file, kafka.ssl_key_password or None
        )
    context.check_hostname = kafka.ssl_endpoint_identification
    return context


def faust_credentials(kafka: KafkaConnection) -> Any:
    """faust's ``broker_credentials`` for ``kafka`` (None for plaintext): the same protocol,
    mechanism, secrets and TLS files as :func:`client_config`."""
    import faust  # late: faust is heavy and only the streams worker needs it

    context = ssl_context(kafka) if kafka.uses_tls else None
    if not kafka.uses_sasl:
        return faust.SSLCredentials(context) if context is not None else None
    if kafka.sasl_mechanism == "OAUTHBEARER":
        provider = ClientCredentialsToken(
            kafka.oauth_token_url,
            kafka.oauth_client_id,
            kafka.oauth_client_secret,
            kafka.oauth_scope,
        )
        return faust.OAuthCredentials(oauth_cb=provider, ssl_context=context)
    return faust.SASLCredentials(
        username=kafka.sasl_username,
        password=kafka.sasl_password,
        mechanism=kafka.sasl_mechanism,
        ssl_context=context,
    )


def is_login_failure(error: object) -> bool:
    """Whether a librdkafka error is an authentication or TLS failure: settings, not an
    outage, so retrying will not help."""
    code = getattr(error, "code", lambda: None)()
    text = _message(error).lower()
    return code in _LOGIN_CODES or any(w in text for w in _TLS_WORDS + _LOGIN_WORDS)


# Words of librdkafka's messages, matched after the broker name is cut off (a broker named
# "sasl_ssl://host:9093" must not make a refused connection look like a refused login).
_TLS_WORDS = ("ssl handshake", "certificate", "ssl: ")
_LOGIN_WORDS = ("authentication", "sasl scram", "sasl plain", "sasl oauthbearer")


def _message(error: object) -> str:
    text = str(error)
    return re.sub(r"[a-z_]+://[^\s:]+:\d+/(?:\d+|bootstrap)", "", text, flags=re.IGNORECASE)


def login_error_logger(kafka: KafkaConnection) -> Any:
    """librdkafka's ``error_cb`` for every client: an authentication or TLS failure is
    logged once per client as an error naming the settings (librdkafka itself only retries
    and logs the broker's words); other errors are librdkafka's normal reconnect noise."""
    reported = False

    def on_error(error: Any) -> None:
        nonlocal reported
        if is_login_failure(error) and not reported:
            reported = True
            log.error(describe_failure(kafka, error))

    return on_error


class KafkaLoginError(RuntimeError):
    """The brokers refused the login or the TLS handshake: the settings must change."""


def cluster_metadata(kafka: KafkaConnection, topic: str | None = None, timeout: float = 10) -> Any:
    """The cluster's metadata (of ``topic`` or all topics) through an admin client; a
    refused login or TLS handshake raises :class:`KafkaLoginError` naming the settings
    instead of librdkafka's "Failed to get metadata: broker transport failure"."""
    errors: list[Any] = []
    config = client_config(kafka)
    logger = config["error_cb"]

    def on_error(error: Any) -> None:
        errors.append(error)
        logger(error)

    config["error_cb"] = on_error
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout
    while True:
        # Short attempts, so a refused login (reported through error_cb, which poll runs)
        # fails within a second instead of after the whole timeout.
        attempt = max(0.1, min(1.0, deadline - time.monotonic()))
        try:
            return admin.list_topics(topic, timeout=attempt)
        except KafkaException as exc:
            admin.poll(0.1)
            login = [e for e in errors if is_login_failure(e)]
            if login:
                raise KafkaLoginError(describe_failure(kafka, login[0])) from exc
            if time.monotonic() >= deadline:
                raise


def describe_failure(kafka: KafkaConnection, error: object) -> str:
    """An operator's reading of a Kafka client error: authentication and TLS failures name
    the settings to check, since librdkafka's text names neither."""
    text = str(error)
    lowered = _message(error).lower()
    code = getattr(error, "code", lambda: None)()
    if code == _SSL_CODE or any(w in lowered for w in _TLS_WORDS):
        return (
            f"TLS to Kafka at {kafka.bootstrap} failed: check TRACEHOUSE_KAFKA_SSL_CA_FILE "
            "(kafka.ssl_ca_file), the client certificate/key settings and "
            f"TRACEHOUSE_KAFKA_SSL_ENDPOINT_IDENTIFICATION ({text})"
        )
    if code in _LOGIN_CODES or any(w in lowered for w in _LOGIN_WORDS):
        if kafka.sasl_mechanism == "OAUTHBEARER":
            names = "TRACEHOUSE_KAFKA_OAUTH_* (kafka.oauth_*)"
        else:
            names = (
                "TRACEHOUSE_KAFKA_SASL_USERNAME / TRACEHOUSE_KAFKA_SASL_PASSWORD "
                "(kafka.sasl_username / kafka.sasl_password)"
            )
        return (
            f"Kafka at {kafka.bootstrap} refused the {kafka.sasl_mechanism} login of "
            f"{kafka.sasl_username or kafka.oauth_client_id!r}: check {names} and "
            f"TRACEHOUSE_KAFKA_SASL_MECHANISM (kafka.sasl_mechanism) ({text})"
        )
    return f"Kafka at {kafka.bootstrap}: {text}"

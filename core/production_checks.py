"""The rules between the production settings (topic durability, Kafka security, ClickHouse
TLS), checked when settings load so a half-configured secured deployment fails at start with
the variable to fix, instead of connecting in plaintext or failing on the first message."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def _name(field: str, key: str) -> str:
    return f"TRACEHOUSE_{field.upper()} ({key})"


def _file_problems(s: Any, fields: tuple[str, ...], section: str) -> list[str]:
    out = []
    for f in fields:
        path = getattr(s, f)
        if path and not Path(path).is_file():
            key = f"{section}.{f.removeprefix(section + '_')}"
            out.append(f"{_name(f, key)}: {path!r} is not a readable file")
    return out


def production_problems(s: Any) -> list[str]:
    """Every problem between the fields of the production block of ``Settings``."""
    problems = []
    if s.kafka_min_insync_replicas > s.kafka_replication_factor:
        problems.append(
            f"{_name('kafka_min_insync_replicas', 'kafka.min_insync_replicas')} "
            f"{s.kafka_min_insync_replicas} exceeds "
            f"{_name('kafka_replication_factor', 'kafka.replication_factor')} "
            f"{s.kafka_replication_factor}: no acks=all write could ever succeed"
        )
    protocol = s.kafka_security_protocol
    sasl = protocol in ("SASL_PLAINTEXT", "SASL_SSL")
    tls = protocol in ("SSL", "SASL_SSL")
    proto = _name("kafka_security_protocol", "kafka.security_protocol")
    if sasl and s.kafka_sasl_mechanism == "OAUTHBEARER":
        for f in ("kafka_oauth_token_url", "kafka_oauth_client_id", "kafka_oauth_client_secret"):
            if not getattr(s, f):
                key = "kafka." + f.removeprefix("kafka_")
                problems.append(f"{_name(f, key)} is required for SASL mechanism OAUTHBEARER")
        url = urlsplit(s.kafka_oauth_token_url)
        if s.kafka_oauth_token_url and (url.scheme not in ("http", "https") or not url.hostname):
            problems.append(
                f"{_name('kafka_oauth_token_url', 'kafka.oauth_token_url')}: "
                f"{s.kafka_oauth_token_url!r} is not an http(s) URL"
            )
    elif sasl:
        for f in ("kafka_sasl_username", "kafka_sasl_password"):
            if not getattr(s, f):
                key = "kafka." + f.removeprefix("kafka_")
                problems.append(
                    f"{_name(f, key)} is required for {protocol} with {s.kafka_sasl_mechanism}"
                )
    if not sasl:
        given = [
            f
            for f in (
                "kafka_sasl_username",
                "kafka_sasl_password",
                "kafka_oauth_token_url",
                "kafka_oauth_client_id",
                "kafka_oauth_client_secret",
            )
            if getattr(s, f)
        ]
        if given:
            problems.append(
                f"{', '.join(_name(f, 'kafka.' + f.removeprefix('kafka_')) for f in given)} "
                f"set, but {proto} is {protocol}: the credentials would not be sent "
                "(use SASL_SSL or SASL_PLAINTEXT)"
            )
    ssl_fields = ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file")
    if not tls and any(getattr(s, f) for f in (*ssl_fields, "kafka_ssl_key_password")):
        problems.append(
            f"TLS files set, but {proto} is {protocol}: they would not be used "
            "(use SSL or SASL_SSL)"
        )
    if bool(s.kafka_ssl_cert_file) != bool(s.kafka_ssl_key_file):
        problems.append(
            f"{_name('kafka_ssl_cert_file', 'kafka.ssl_cert_file')} and "
            f"{_name('kafka_ssl_key_file', 'kafka.ssl_key_file')} go together (mutual TLS)"
        )
    problems += _file_problems(s, ssl_fields, "kafka")
    https = urlsplit(s.clickhouse_url).scheme == "https"
    if s.clickhouse_ca_file and not https:
        problems.append(
            f"{_name('clickhouse_ca_file', 'clickhouse.ca_file')} set, but "
            f"TRACEHOUSE_CLICKHOUSE_URL (clickhouse.url) {s.clickhouse_url!r} is not https://"
        )
    problems += _file_problems(s, ("clickhouse_ca_file",), "clickhouse")
    return problems

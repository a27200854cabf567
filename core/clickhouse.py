"""The one place a ClickHouse URL becomes a client, for every component.

Parsing the URL and applying the credentials in one place keeps the scheme, host, port, user,
password and TLS rules identical for the sink, query, status and migrations: ``https://``
opens TLS (verified against ``ca_file`` or the system's CAs), ``http://`` plain HTTP, and a
server that refuses the login is reported naming the settings to check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

DEFAULT_HTTP_PORT = 8123
DEFAULT_HTTPS_PORT = 8443


@dataclass(frozen=True)
class ClickHouseTarget:
    """A ClickHouse HTTP(S) endpoint and the login to use there (``Settings.clickhouse``)."""

    url: str
    user: str = "default"
    password: str = field(default="", repr=False)
    ca_file: str = ""
    verify: bool = True

    @property
    def secure(self) -> bool:
        return urlsplit(self.url).scheme == "https"


class ClickHouseLoginError(RuntimeError):
    """The server refused the user/password: retrying cannot help, the settings must change."""


def host_port(url: str) -> tuple[str, int]:
    """``(host, port)`` of a ClickHouse HTTP(S) URL; a URL without scheme is read as
    ``http``; without a port, 8123 for http and 8443 for https."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    default = DEFAULT_HTTPS_PORT if parts.scheme == "https" else DEFAULT_HTTP_PORT
    return parts.hostname or "127.0.0.1", parts.port or default


# ClickHouse error codes meaning "this login is wrong" (REQUIRED_PASSWORD, WRONG_PASSWORD,
# UNKNOWN_USER, AUTHENTICATION_FAILED, IP_ADDRESS_NOT_ALLOWED).
_LOGIN_CODES = ("Code: 194", "Code: 193", "Code: 192", "Code: 516", "Code: 195")


def login_problem(target: ClickHouseTarget, exc: BaseException) -> str | None:
    """An operator's message if ``exc`` is a refused login, else None."""
    text = str(exc)
    if any(code in text for code in _LOGIN_CODES) or "Authentication failed" in text:
        return (
            f"ClickHouse at {target.url} refused user {target.user!r}: check "
            "TRACEHOUSE_CLICKHOUSE_USER / TRACEHOUSE_CLICKHOUSE_PASSWORD "
            f"(clickhouse.user / clickhouse.password) ({text.strip().splitlines()[0]})"
        )
    return None


def connect(target: ClickHouseTarget | str, database: str, *, session: bool = True) -> Any:
    """A clickhouse-connect client (HTTP or HTTPS, lz4) logged in as ``target``'s user.

    A bare URL string is an open server (user ``default``, no password): tests and tools
    against the local server use it; components pass ``Settings.clickhouse``.
    ``session=False`` gives a client that may run concurrent queries from several threads
    (clickhouse-connect ties a client to one server session by default and refuses concurrent
    queries in it); the read side needs no session state.
    Raises :class:`ClickHouseLoginError` when the server refuses the login.
    """
    if isinstance(target, str):
        target = ClickHouseTarget(target)
    host, port = host_port(target.url)
    tls: dict[str, Any] = {}
    if target.secure:
        tls = {"secure": True, "verify": target.verify}
        if target.ca_file:
            tls["ca_cert"] = target.ca_file
    try:
        return clickhouse_connect.get_client(
            host=host,
            port=port,
            username=target.user,
            password=target.password,
            database=database,
            compress="lz4",
            send_receive_timeout=60,
            autogenerate_session_id=session,
            # Retried blocks are deduplicated in materialized views too (the dedup caveat in
            # docs/architecture.md). An insert into a sharded table (ADR 0013) returns only
            # once every shard stored its rows, with the dedup token: the default queues them
            # on the receiving node and acknowledges before any shard has them.
            settings={
                "deduplicate_blocks_in_dependent_materialized_views": 1,
                "distributed_foreground_insert": 1,
            },
            **tls,
        )
    except (DatabaseError, OperationalError) as exc:
        problem = login_problem(target, exc)
        if problem is not None:
            raise ClickHouseLoginError(problem) from exc
        raise

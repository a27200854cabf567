"""The one place a ClickHouse URL becomes a client, for every component.

Parsing the URL in one place keeps the scheme, host and port rules identical for the sink,
query, status and migrations (``core.config`` validates the URL at start: ``http://host:port``;
TLS and credentials come with secured-server support).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect

DEFAULT_HTTP_PORT = 8123


def host_port(url: str) -> tuple[str, int]:
    """``(host, port)`` of a ClickHouse HTTP URL; a URL without scheme is read as ``http``."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return parts.hostname or "127.0.0.1", parts.port or DEFAULT_HTTP_PORT


def connect(url: str, database: str, *, session: bool = True) -> Any:
    """A clickhouse-connect client (HTTP, lz4).

    ``session=False`` gives a client that may run concurrent queries from several threads
    (clickhouse-connect ties a client to one server session by default and refuses concurrent
    queries in it); the read side needs no session state.
    """
    host, port = host_port(url)
    return clickhouse_connect.get_client(
        host=host,
        port=port,
        database=database,
        compress="lz4",
        send_receive_timeout=60,
        autogenerate_session_id=session,
        # Retried blocks are deduplicated in materialized views too (the dedup caveat in
        # docs/architecture.md).
        settings={"deduplicate_blocks_in_dependent_materialized_views": 1},
    )

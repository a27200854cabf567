"""OAUTHBEARER tokens for aiokafka from an OAuth 2.0 client-credentials grant.

librdkafka fetches its tokens itself (``sasl.oauthbearer.method=oidc``); aiokafka only calls a
token provider. This one performs the same grant (RFC 6749 section 4.4: POST
``grant_type=client_credentials`` with HTTP basic client authentication) so the faust worker
and the confluent-kafka clients log in with the same settings. A token is reused until 30 s
before it expires, so reconnecting brokers do not each fetch one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.parse
import urllib.request
from typing import Any

from aiokafka.abc import AbstractTokenProvider

REFRESH_MARGIN_S = 30.0


class TokenError(RuntimeError):
    """The token endpoint refused the client or answered something that is not a token."""


def fetch_token(
    url: str, client_id: str, client_secret: str, scope: str = "", timeout: float = 10
) -> tuple[str, float]:
    """``(access_token, expires_in seconds)`` from the token endpoint at ``url``."""
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    basic = base64.b64encode(
        f"{urllib.parse.quote(client_id)}:{urllib.parse.quote(client_secret)}".encode()
    ).decode()
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            body: Any = json.loads(resp.read(1_000_000))
    except urllib.error.HTTPError as exc:
        raise TokenError(
            f"token endpoint {url} refused client {client_id!r}: HTTP {exc.code}; check "
            "TRACEHOUSE_KAFKA_OAUTH_CLIENT_ID / TRACEHOUSE_KAFKA_OAUTH_CLIENT_SECRET"
        ) from exc
    except (OSError, ValueError) as exc:
        raise TokenError(f"token endpoint {url}: {exc}") from exc
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenError(f"token endpoint {url} answered without an access_token")
    expires = body.get("expires_in", 300)
    return token, float(expires) if isinstance(expires, (int, float)) else 300.0


class ClientCredentialsToken(AbstractTokenProvider):
    """aiokafka's token provider for one client: fetches, caches, refreshes."""

    def __init__(self, url: str, client_id: str, client_secret: str, scope: str = "") -> None:
        self.url = url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self._token = ""
        self._valid_until = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if time.monotonic() < self._valid_until:
                return self._token
            token, expires_in = await asyncio.get_running_loop().run_in_executor(
                None, fetch_token, self.url, self.client_id, self._secret, self.scope
            )
            self._token = token
            self._valid_until = time.monotonic() + max(0.0, expires_in - REFRESH_MARGIN_S)
            return token

    def __repr__(self) -> str:
        return f"<ClientCredentialsToken {self.url} client={self.client_id!r}>"

"""Jaeger agent UDP listeners: ``Agent.emitBatch`` in Thrift compact (6831) or binary (6832).

Jaeger clients fire one datagram per batch and never hear back, so UDP has no backpressure and
no way to tell a client anything. Every datagram therefore ends in exactly one counted outcome
(``tracehouse_ingest_requests_total{protocol="jaeger_udp_compact"|"jaeger_udp_binary"}``) and
its spans in the span counters, like any request:

- ``too_large``: over ``MAX_PACKET_BYTES`` (Jaeger agent's default max packet size) — dropped
  unread;
- ``overloaded``: ``MAX_PENDING_PACKETS`` datagrams already wait for Kafka — dropped unread,
  since queueing without bound would trade a visible drop for an invisible out-of-memory;
- ``invalid_thrift`` / ``invalid_jaeger``: not an emitBatch, or no usable span;
- ``unauthenticated``: auth is on (UDP carries no token), ``rate_limited``,
  ``kafka_unavailable`` (spans rejected with that reason): the packet is lost, counted;
- ``ok`` / ``partial`` / ``empty`` as for HTTP.

Datagrams the kernel drops before we read them (a full socket buffer) cannot be counted here;
the socket buffer is enlarged to ``RECEIVE_BUFFER_BYTES`` to make that rare, and the kernel
counts them (``/proc/net/udp`` drops, ``netstat -su`` receive buffer errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import cast

from core.errors import RateLimited, Unauthenticated
from core.tenancy import resolve_tenant
from ingest import metrics
from ingest.admission import SpanAdmission
from ingest.errors import BodyError
from ingest.http_receiver import count_refused_spans
from ingest.jaeger_decode import decode_agent_packet
from ingest.kafka_publisher import PublishError

log = logging.getLogger("tracehouse.ingest.jaeger_udp")

COMPACT_PROTOCOL = "jaeger_udp_compact"
BINARY_PROTOCOL = "jaeger_udp_binary"
MAX_PACKET_BYTES = 65_000
MAX_PENDING_PACKETS = 512
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024


class AgentListener(asyncio.DatagramProtocol):
    """One UDP socket's datagrams -> admission; every datagram counted under one outcome."""

    def __init__(self, admission: SpanAdmission, compact: bool) -> None:
        self._admission = admission
        self._compact = compact
        self.protocol = COMPACT_PROTOCOL if compact else BINARY_PROTOCOL
        self._pending: set[asyncio.Task[None]] = set()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(data) > MAX_PACKET_BYTES:
            metrics.REQUESTS.labels(self.protocol, "too_large").inc()
            return
        if len(self._pending) >= MAX_PENDING_PACKETS:
            metrics.REQUESTS.labels(self.protocol, "overloaded").inc()
            return
        task = asyncio.get_running_loop().create_task(self.handle(data))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def error_received(self, exc: Exception) -> None:
        metrics.REQUESTS.labels(self.protocol, "socket_error").inc()
        log.warning("udp socket error", extra={"fields": {"error": str(exc)}})

    async def handle(self, data: bytes) -> None:
        metrics.IN_FLIGHT.inc()
        try:
            metrics.REQUESTS.labels(self.protocol, await self._outcome(data)).inc()
        finally:
            metrics.IN_FLIGHT.dec()

    async def _outcome(self, data: bytes) -> str:
        protocol = self.protocol
        try:
            tenant = resolve_tenant(self._admission.tenants, None)
        except Unauthenticated:
            return "unauthenticated"
        metrics.REQUEST_BYTES.labels(protocol).inc(len(data))
        try:
            decoded = decode_agent_packet(data, self._compact)
        except BodyError as exc:
            count_refused_spans(protocol, exc)
            return exc.reason
        except Exception:
            log.exception("decoder failed", extra={"fields": {"protocol": protocol}})
            return "invalid_request"
        try:
            outcome = await self._admission.export(decoded.data, protocol, tenant, decoded.rejected)
        except RateLimited:
            return "rate_limited"
        except PublishError as exc:
            return "kafka_unavailable" if exc.retryable else "kafka_error"
        except Exception:
            log.exception("export failed", extra={"fields": {"protocol": protocol}})
            return "internal_error"
        if outcome.rejected:
            return "partial"
        return "ok" if outcome.accepted or outcome.sampled_out else "empty"

    async def drain(self, timeout: float) -> None:
        """Stop reading and give datagrams already taken ``timeout`` seconds to finish."""
        if self.transport is not None:
            self.transport.close()
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout)


async def start_agent_listener(
    admission: SpanAdmission, host: str, port: int, compact: bool, reuse_port: bool
) -> AgentListener:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with contextlib.suppress(OSError):  # capped by net.core.rmem_max: kernel's own size
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    _, listener = await loop.create_datagram_endpoint(
        lambda: AgentListener(admission, compact), sock=sock
    )
    return listener

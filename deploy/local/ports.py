"""Port checks, so a taken port is reported by name instead of as a confusing crash later."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path


class PortInUseError(RuntimeError):
    pass


# Ports handed out by this process, never handed out again: two components given the same
# port would fail to start only later, when the second one binds.
_HANDED_OUT: set[int] = set()
_LISTEN_RANGE_FLOOR = 10_000


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux's default if unknown)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port that is free now and stays free until a listener of ours binds it.

    Why not ``bind(("127.0.0.1", 0))``: the kernel picks that port from the ephemeral range,
    the same range it draws from for every *outgoing* connection's local port. Between picking
    a port and a component binding it (seconds, for a process start), any client connection
    on the machine (to the broker, ClickHouse, a health check) may take it, and the component
    dies with "address already in use" (seen in CI). Ports below the ephemeral range are never
    given to outgoing connections, so a random free one there stays ours."""
    low, _high = _ephemeral_range()
    ceiling = max(low, _LISTEN_RANGE_FLOOR + 1_000)
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(_LISTEN_RANGE_FLOOR, ceiling)
        if port not in _HANDED_OUT and _bindable(port):
            _HANDED_OUT.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # range exhausted: kernel's pick
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    _HANDED_OUT.add(port)
    return port


# Settings fields of every port a pipeline component listens on (`up` checks and `--auto-ports`
# picks them all, so a new listener needs adding only here).
# Field -> the name a "port in use" error gives it.
COMPONENT_PORT_FIELDS = {
    "ingest_http_port": "ingest OTLP/HTTP",
    "ingest_grpc_port": "ingest OTLP/gRPC",
    "ingest_zipkin_port": "ingest Zipkin",
    "ingest_jaeger_http_port": "ingest Jaeger Thrift/HTTP",
    "ingest_jaeger_grpc_port": "ingest Jaeger gRPC",
    "ingest_jaeger_compact_port": "ingest Jaeger agent UDP compact",
    "ingest_jaeger_binary_port": "ingest Jaeger agent UDP binary",
    "streams_metrics_port": "streams metrics",
    "sink_metrics_port": "sink metrics",
    "query_http_port": "query API / UI",
    "query_grpc_port": "query gRPC (Jaeger api_v3)",
    "sampling_http_port": "remote sampling HTTP",
    "sampling_grpc_port": "remote sampling gRPC",
}


def free_component_ports() -> dict[str, int]:
    """A free loopback port for every component listener, as Settings field values."""
    return {name: free_port() for name in COMPONENT_PORT_FIELDS}


# The listeners among COMPONENT_PORT_FIELDS that are UDP sockets (checked as UDP).
UDP_PORT_FIELDS = frozenset({"ingest_jaeger_compact_port", "ingest_jaeger_binary_port"})


def ensure_free(port: int, what: str, host: str = "127.0.0.1", udp: bool = False) -> None:
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"{what}: port {host}:{port} is already in use ({exc.strerror}); stop whatever "
                f"holds it (e.g. `ss -{'u' if udp else 't'}lnp 'sport = :{port}'`) or choose "
                "another port"
            ) from exc


def wait_for_tcp(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False

"""Port checks, so a taken port is reported by name instead of as a confusing crash later."""

from __future__ import annotations

import os
import random
import socket
import tempfile
import time
from pathlib import Path

from deploy.local.processes import pid_alive


class PortInUseError(RuntimeError):
    pass


# Ports handed out by this process, never handed out again: two components given the same
# port would fail to start only later, when the second one binds.
_HANDED_OUT: set[int] = set()
_LISTEN_RANGE_FLOOR = 10_000
# Ports handed out by any process on this machine: one file per port holding the claiming
# process's id. A port free when picked stays free only until its component binds it, seconds
# later; two processes picking at once (pytest-xdist workers, two `up --auto-ports`) could pick
# the same one, and the second component then failed with "address already in use" while its
# health check was answered by the first one's listener (seen in the fault suite).
_CLAIMS = Path(tempfile.gettempdir()) / "tracehouse-ports"


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux's default if unknown)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _claim(port: int) -> bool:
    """Claim ``port`` for this process against every other process on the machine; a claim
    whose process has exited is taken over (its components exited with it or were stopped)."""
    try:
        _CLAIMS.mkdir(mode=0o777, exist_ok=True)
    except OSError:
        return True  # nowhere to record claims: the bind check alone, as before
    path = _CLAIMS / str(port)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _claimant_alive(path):
                return False
            path.unlink(missing_ok=True)
            continue
        except OSError:
            return True
        with os.fdopen(fd, "w") as claim:
            claim.write(str(os.getpid()))
        return True
    return False


def _claimant_alive(path: Path) -> bool:
    """Whether the process named in a claim file still runs (an unreadable or half-written
    claim counts as alive: its writer may be between creating and filling it)."""
    try:
        pid = int(path.read_text() or "0")
    except (OSError, ValueError):
        return True
    return pid <= 0 or pid_alive(pid)


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
        if port not in _HANDED_OUT and _bindable(port) and _claim(port):
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

"""Port checks, so a taken port is reported by name instead of as a confusing crash later."""

from __future__ import annotations

import socket
import time


class PortInUseError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Settings fields of every port a pipeline component listens on (`up` checks and `--auto-ports`
# picks them all, so a new listener needs adding only here).
# Field -> the name a "port in use" error gives it.
COMPONENT_PORT_FIELDS = {
    "ingest_http_port": "ingest OTLP/HTTP",
    "ingest_grpc_port": "ingest OTLP/gRPC",
    "ingest_zipkin_port": "ingest Zipkin",
    "streams_metrics_port": "streams metrics",
    "sink_metrics_port": "sink metrics",
    "query_http_port": "query API / UI",
}


def free_component_ports() -> dict[str, int]:
    """A free loopback port for every component listener, as Settings field values."""
    return {name: free_port() for name in COMPONENT_PORT_FIELDS}


def ensure_free(port: int, what: str, host: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"{what}: port {host}:{port} is already in use ({exc.strerror}); stop whatever "
                f"holds it (e.g. `ss -ltnp 'sport = :{port}'`) or choose another port"
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

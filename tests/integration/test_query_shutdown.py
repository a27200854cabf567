"""The query server against stalled clients: read timeout, and a bounded shutdown on SIGTERM.

A real `tracehouse query` process over real ClickHouse; the clients are raw sockets that send
half a request and then nothing, the way a slowloris client or a dead peer behaves.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from core.settings import Settings
from deploy.local.stack import Child, LocalStack
from query.server import READ_TIMEOUT_SECONDS, SHUTDOWN_GRACE_SECONDS
from tests.integration.test_query_big_trace import big_trace, write_spans

HALF_REQUEST = b"GET /api/services HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
# Scheduling noise on 2 shared cores, on top of the documented bounds.
SLACK_SECONDS = 1.5


@pytest.fixture
def query_process(services: LocalStack, pipeline_settings: Settings) -> Iterator[Child]:
    stack = LocalStack(pipeline_settings, services.run_dir / "query-shutdown", say=lambda _m: None)
    try:
        yield stack.start_component(
            "query", f"http://127.0.0.1:{pipeline_settings.query_http_port}/health"
        )
    finally:
        stack.stop()


def stalled_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(HALF_REQUEST)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed the connection, or None if still open at the deadline."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass  # a 4xx before closing is fine too
    except TimeoutError:
        return None
    except ConnectionError:
        pass
    return time.monotonic() - started


def test_half_request_is_dropped_after_the_read_timeout(
    query_process: Child, pipeline_settings: Settings
) -> None:
    port = pipeline_settings.query_http_port
    sock = stalled_client(port)
    try:
        # The stalled connection does not hold other clients up.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/services", timeout=5) as r:
            assert r.status == 200
        waited = closed_within(sock, READ_TIMEOUT_SECONDS + SLACK_SECONDS)
        assert waited is not None, "a half request held its connection past the read timeout"
    finally:
        sock.close()
    assert query_process.proc.poll() is None


def non_reading_client(port: int, path: str) -> socket.socket:
    """A complete request for a large response, then never a read: the write side stalls."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def test_sigterm_exits_within_the_grace_period_despite_stalled_clients(
    pipeline_settings: Settings, query_process: Child
) -> None:
    port = pipeline_settings.query_http_port
    stalled = [stalled_client(port) for _ in range(3)]
    # A request in flight whose client stopped reading a ~12 MB trace (spans written by the
    # sink's code, as in test_query_big_trace): the handler is blocked writing it.
    trace_id, data = big_trace(25_000, time.time_ns())
    write_spans(pipeline_settings, data)
    stalled.append(non_reading_client(port, f"/api/traces/{trace_id}"))
    # Plus an idle keep-alive connection that completed a request.
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    idle.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")
    try:
        time.sleep(3)  # the partial requests are read; the trace response is being written
        started = time.monotonic()
        query_process.proc.send_signal(signal.SIGTERM)
        try:
            code = query_process.proc.wait(SHUTDOWN_GRACE_SECONDS + SLACK_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"query still running {SHUTDOWN_GRACE_SECONDS + SLACK_SECONDS}s after SIGTERM"
            )
        elapsed = time.monotonic() - started
        assert code == 0 and elapsed < SHUTDOWN_GRACE_SECONDS + SLACK_SECONDS
        for sock in [*stalled, idle]:
            assert closed_within(sock, 1.0) is not None  # closed, not left half-open
    finally:
        for sock in [*stalled, idle]:
            sock.close()
    print(f"\nquery exited {elapsed:.2f}s after SIGTERM with stalled and idle clients")

"""Support for the fault-injection tests: a whole private stack, an SDK-like load, a cuttable
TCP proxy and the end-of-test checks (nothing acknowledged lost, nothing stored twice, the
accounting identity balances).

Each fault test runs its own broker and ClickHouse (not the session's) because it kills or
restarts them; both start in about a second.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.proto.trace.v1 import trace_pb2

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.broker import start_broker
from deploy.local.clickhouse_server import start_clickhouse
from deploy.local.ports import free_port
from deploy.local.stack import Child, LocalStack
from tests.integration.helpers import wait_until
from tests.integration.ingest_helpers import metric, scrape
from tests.integration.test_docs_queries import doc_queries
from tracehouse.demo_traces import make_request
from tracehouse.status import collect, render

HEALTH = {
    "ingest": "http://127.0.0.1:{s.ingest_http_port}/health",
    "streams": "http://127.0.0.1:{s.streams_metrics_port}/health",
    "sink": "http://127.0.0.1:{s.sink_metrics_port}/metrics",
    "query": "http://127.0.0.1:{s.query_http_port}/health",
}


def fault_settings() -> Settings:
    """Fresh ports, short timings; the default (empty) sampling policy keeps every trace."""
    return Settings(
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        clickhouse_url=f"http://127.0.0.1:{free_port()}",
        clickhouse_database="faults",
        partitions=4,
        ingest_http_port=free_port(),
        ingest_grpc_port=0,
        ingest_zipkin_port=0,
        ingest_jaeger_enabled=False,
        streams_metrics_port=free_port(),
        sink_metrics_port=free_port(),
        query_http_port=free_port(),
        sampling_http_port=0,
        sampling_grpc_port=0,
        sink_batch_seconds=0.5,
        red_window_seconds=1.0,
        graph_wait_seconds=2.0,
        streams_tick_seconds=0.2,
        ingest_kafka_timeout_ms=3000,
        ingest_retry_after_seconds=1,
    )


def start_stack(run_dir: Path, settings: Settings | None = None) -> LocalStack:
    stack = LocalStack(
        settings or fault_settings(), run_dir, clickhouse_tcp_port=free_port(), say=lambda _m: None
    )
    stack.start_services()
    return stack


def child(stack: LocalStack, name: str) -> Child:
    return next(c for c in stack.children if c.name == name)


def kill9(stack: LocalStack, name: str) -> None:
    c = child(stack, name)
    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait(10)
    stack.children.remove(c)


def restart_component(stack: LocalStack, name: str) -> None:
    stack.start_component(name, HEALTH[name].format(s=stack.settings))


def restart_broker(stack: LocalStack) -> None:
    kill9(stack, "broker")
    port = int(stack.settings.kafka_bootstrap.rsplit(":", 1)[1])
    stack.children.insert(0, Child("broker", start_broker(port), stack.logs / "broker.log"))


def restart_clickhouse(stack: LocalStack, http_port: int, down_seconds: float = 0) -> None:
    """Stop (SIGTERM, the server's own shutdown path) and start on the same data dir."""
    c = child(stack, "clickhouse")
    c.proc.send_signal(signal.SIGTERM)
    c.proc.wait(20)
    time.sleep(down_seconds)
    fd = os.open(c.log_path, os.O_WRONLY | os.O_APPEND)
    try:
        proc = start_clickhouse(
            stack.run_dir / "clickhouse", http_port, stack.clickhouse_tcp_port, fd
        )
    finally:
        os.close(fd)
    stack.children[stack.children.index(c)] = Child("clickhouse", proc, c.log_path)


# -- load ---------------------------------------------------------------------------------
def span_keys(body: bytes) -> set[tuple[str, str]]:
    data = trace_pb2.TracesData.FromString(body)
    return {
        (s.trace_id.hex(), s.span_id.hex())
        for rs in data.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    }


@dataclass
class SdkLikeLoad:
    """OTLP/HTTP exports at a bounded rate, each retried until acknowledged, as an SDK does.

    Only spans of a 2xx answer count as acknowledged; connection errors, 429 and 5xx are
    retried with backoff (the same body: retried exports may be delivered twice, which the
    pipeline must absorb). Stopping lets an export in flight finish its retries.
    """

    url: str
    traces_per_request: int = 4
    requests_per_second: float = 6.0
    seed: int = 1000
    acked: set[tuple[str, str]] = field(default_factory=set)
    requests_acked: int = 0
    retries: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    errors: list[str] = field(default_factory=list)

    def start(self) -> SdkLikeLoad:
        self._thread = threading.Thread(target=self._run, name="sdk-load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(60)
        assert not self._thread.is_alive(), "load generator stuck"
        assert not self.errors, self.errors

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            body = make_request(self.traces_per_request, seed=self.seed + n).SerializeToString()
            n += 1
            if self._export(body):
                self.acked |= span_keys(body)
                self.requests_acked += 1
            self._stop.wait(1 / self.requests_per_second)

    def _export(self, body: bytes) -> bool:
        deadline = time.monotonic() + 60
        backoff = 0.2
        while time.monotonic() < deadline:
            req = urllib.request.Request(
                self.url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/x-protobuf"},
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    if 200 <= resp.status < 300:
                        return True
            except urllib.error.HTTPError as exc:
                if exc.code not in (429, 502, 503, 504):
                    self.errors.append(f"non-retryable HTTP {exc.code}")
                    return False
            except OSError:
                pass  # refused, reset, timed out: retry like an SDK
            self.retries += 1
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
        self.errors.append("export not acknowledged within 60 s")
        return False

    def wait_acked(self, requests: int, timeout: float = 30) -> None:
        wait_until(lambda: self.requests_acked, lambda n: n >= requests, timeout=timeout)


@contextmanager
def running_load(settings: Settings, **kwargs: Any) -> Iterator[SdkLikeLoad]:
    load = SdkLikeLoad(f"http://127.0.0.1:{settings.ingest_http_port}/v1/traces", **kwargs)
    load.start()
    try:
        yield load
    finally:
        if not load._stop.is_set():
            load.stop()


@dataclass
class ManyClients:
    """Several SDK-like clients at once (each its own thread, seeds and retries), seen as one
    load: what a fleet of instrumented services does to ingest during a fault."""

    loads: list[SdkLikeLoad]

    @property
    def acked(self) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for load in self.loads:
            out |= load.acked
        return out

    @property
    def requests_acked(self) -> int:
        return sum(load.requests_acked for load in self.loads)

    @property
    def retries(self) -> int:
        return sum(load.retries for load in self.loads)

    def wait_acked(self, requests: int, timeout: float = 60) -> None:
        wait_until(lambda: self.requests_acked, lambda n: n >= requests, timeout=timeout)

    def stop(self) -> None:
        for load in self.loads:
            load._stop.set()
        for load in self.loads:
            load.stop()


@contextmanager
def running_clients(settings: Settings, clients: int = 16, **kwargs: Any) -> Iterator[ManyClients]:
    url = f"http://127.0.0.1:{settings.ingest_http_port}/v1/traces"
    many = ManyClients(
        [SdkLikeLoad(url, seed=1_000_000 * (i + 1), **kwargs) for i in range(clients)]
    )
    for load in many.loads:
        load.start()
    try:
        yield many
    finally:
        if not all(load._stop.is_set() for load in many.loads):
            many.stop()


def sink_retries(settings: Settings) -> float:
    """Failed ClickHouse calls of the sink, any operation (proves a fault was really hit)."""
    m = scrape(settings.sink_metrics_port)
    return sum(v for (name, _), v in m.items() if name == "tracehouse_sink_clickhouse_errors_total")


# -- checks -------------------------------------------------------------------------------
@dataclass
class Outcome:
    acked: int
    stored: int
    duplicates: int
    accounting: dict[str, Any]
    ingest_rejected: float


def stored_keys(client: Any) -> set[tuple[str, str]]:
    return {
        (r[0], r[1]) for r in client.query("SELECT TraceId, SpanId FROM otel_traces").result_rows
    }


def wait_stored(
    settings: Settings, client: Any, acked: set[tuple[str, str]], timeout: float = 60
) -> None:
    """Until every acknowledged span is in ``otel_traces``; on timeout the error also carries
    ``tracehouse status`` (lag per group and partition, counters, drops), which names the
    stage that stopped."""
    try:
        wait_until(
            lambda: len(acked - stored_keys(client)), lambda missing: missing == 0, timeout=timeout
        )
    except AssertionError as exc:
        try:
            report = render(collect(settings))
        except Exception as status_exc:  # the diagnosis must not hide the failure
            report = f"tracehouse status failed: {status_exc!r}"
        raise AssertionError(f"{exc}\n{report}") from None


def accounting(client: Any) -> dict[str, Any]:
    result = client.query(doc_queries()["pipeline_accounting"])
    return dict(zip(result.column_names, result.result_rows[0], strict=True))


def duplicates(client: Any) -> int:
    return int(client.command("SELECT count() - uniqExact(TraceId, SpanId) FROM otel_traces"))


def check_consistent(
    settings: Settings,
    acked: set[tuple[str, str]],
    clickhouse_url: str | None = None,
    timeout: float = 60,
) -> Outcome:
    """Every acknowledged span lands once, and received = stored + sampled_out + rejected.

    The pipeline is asynchronous: wait for the acknowledged spans and for the identity (the
    counters trail the spans by a tick and a sink batch), then hold a moment so a late
    duplicate would show.
    """
    client = connect(clickhouse_url or settings.clickhouse_url, settings.clickhouse_database)
    wait_stored(settings, client, acked, timeout)
    wait_until(lambda: accounting(client), lambda a: bool(a["balanced"]), timeout=timeout)
    time.sleep(1.5)
    acc = accounting(client)
    m = scrape(settings.ingest_http_port)
    rejected = sum(
        v for (name, _labels), v in m.items() if name == "tracehouse_ingest_spans_rejected_total"
    )
    received = sum(
        v for (name, _labels), v in m.items() if name == "tracehouse_ingest_spans_received_total"
    )
    accepted = metric(m, "tracehouse_ingest_spans_accepted_total", protocol="otlp_http")
    outcome = Outcome(len(acked), acc["stored"], duplicates(client), acc, rejected)
    print(f"fault outcome: {outcome}")
    assert outcome.duplicates == 0, outcome
    assert acc["balanced"], acc
    assert acked <= stored_keys(client)
    # Ingest's own identity (its counters restart with the process): decoded = accepted + rejected.
    assert received == accepted + rejected, m
    return outcome


# -- network faults -------------------------------------------------------------------------
class TcpProxy:
    """A cuttable TCP forwarder on 127.0.0.1: ``cut()`` resets every connection and refuses
    new ones (accepted, then closed at once) until ``restore()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._up = threading.Event()
        self._up.set()
        self._closed = False
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 0.5)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for s in (a, b):
                _reset(s)

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            _reset(s)

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()


def _reset(s: socket.socket) -> None:
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    except OSError:
        pass

"""One service of the demo shop, as its own process, instrumented like a real application.

``python -m tracehouse.shop_service NAME PORT PEERS_JSON OTLP_ENDPOINT SAMPLING_ENDPOINT``
serves the routes of ``NAME`` from tracehouse/shop_topology.py with a threaded WSGI server.
The OpenTelemetry SDK and its instrumentation packages do the tracing, as in any Python
service: ``opentelemetry-instrumentation-wsgi`` makes the SERVER span of each request and
extracts the W3C ``traceparent``; ``opentelemetry-instrumentation-requests`` makes the CLIENT
span of each call to another service and injects it; database and cache calls are CLIENT spans
made with the tracer, with ``db.system``. Spans go to tracehouse ingest over OTLP/HTTP in
batches, and the sampler follows tracehouse's remote strategies (tracehouse/shop_sampler.py).
"""

from __future__ import annotations

import json
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tracehouse.shop_sampler import RemoteStrategySampler
from tracehouse.shop_topology import BY_NAME, Route, Service, parse_call

StartResponse = Callable[..., Any]


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def handle_route(
    route: Route,
    peers: dict[str, str],
    session: requests.Session,
    tracer: trace.Tracer,
    rng: random.Random,
) -> int:
    """Do the route's work and calls; the HTTP status to answer."""
    time.sleep(route.work_ms / 1000 * rng.uniform(0.5, 1.5))
    failed = False
    for call in route.calls:
        target, system, what = parse_call(call)
        if target in ("db", "cache"):
            with tracer.start_as_current_span(
                f"{what.split(' ')[0]} {what.split(' ', 1)[-1]}",
                kind=SpanKind.CLIENT,
                attributes={"db.system": system, "db.statement": what},
            ):
                time.sleep((0.0004 if target == "cache" else 0.003) * rng.uniform(0.5, 2))
            continue
        try:
            resp = session.request(system, f"{peers[target]}{what}", timeout=5)
            failed |= resp.status_code >= 500
        except requests.RequestException:
            failed = True
    if route.slow_rate and rng.random() < route.slow_rate:
        time.sleep(route.slow_ms / 1000)
    if failed or (route.error_rate and rng.random() < route.error_rate):
        span = trace.get_current_span()
        span.set_status(Status(StatusCode.ERROR, "downstream or own failure"))
        return 500
    return 200


def build_app(
    service: Service, peers: dict[str, str], tracer: trace.Tracer, seed: int
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    session = requests.Session()
    rng = random.Random(seed)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        route = service.route(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
        if route is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such route\n"]
        status = handle_route(route, peers, session, tracer, rng)
        start_response(
            "200 OK" if status == 200 else "500 Internal Server Error",
            [("Content-Type", "application/json")],
        )
        return [json.dumps({"service": service.name, "status": status}).encode()]

    return app


def serve(name: str, port: int, peers: dict[str, str], otlp: str, sampling: str) -> None:
    service = BY_NAME[name]
    sampler = RemoteStrategySampler(sampling, name, interval=2.0)
    provider = TracerProvider(
        resource=Resource.create({"service.name": name, "service.namespace": "shop"}),
        sampler=sampler,
    )
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{otlp.rstrip('/')}/v1/traces"), schedule_delay_millis=500
        )
    )
    trace.set_tracer_provider(provider)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    tracer = provider.get_tracer("tracehouse.shop")
    app = OpenTelemetryMiddleware(
        build_app(service, peers, tracer, seed=port), tracer_provider=provider
    )
    server = make_server(
        "127.0.0.1", port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    # SIGTERM (the runner stopping the shop) ends serve_forever; the finally flushes spans.
    signal.signal(
        signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start()
    )
    try:
        server.serve_forever()
    finally:
        sampler.close()
        provider.shutdown()


def main(argv: list[str]) -> None:
    name, port, peers, otlp, sampling = argv
    serve(name, int(port), json.loads(peers), otlp, sampling)


if __name__ == "__main__":
    main(sys.argv[1:])

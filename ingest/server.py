"""Entry point of an ingest node: wires the OTLP/HTTP, OTLP/gRPC, Zipkin and Jaeger (Thrift
HTTP, gRPC, agent UDP) receivers to one Kafka publisher, and drains them in order on SIGTERM
(stop accepting, finish requests, flush).

Shutdown is bounded: in-flight requests get ``SHUTDOWN_GRACE_SECONDS`` to finish (HTTP and
gRPC in parallel), then whatever is left (a client stalled mid-headers or mid-body) is cut off.
aiohttp's default would wait 60 s per stalled connection, longer than any orchestrator waits.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from aiohttp import web

from core import logs
from core.settings import Settings
from core.tenancy import load_config
from core.topics import partition_count
from ingest import metrics
from ingest.admission import AdmissionConfig, SpanAdmission
from ingest.broker_limits import effective_max_message_bytes, reported_topic_limit
from ingest.grpc_receiver import build_server
from ingest.http_receiver import HEADER_TIMEOUT_SECONDS, build_app
from ingest.jaeger_grpc import build_jaeger_grpc_server
from ingest.jaeger_http import build_jaeger_http_app
from ingest.jaeger_udp import AgentListener, start_agent_listener
from ingest.kafka_publisher import KafkaPublisher, producer_config
from ingest.zipkin_receiver import build_zipkin_app

# How long in-flight requests may take to finish once SIGTERM arrived. Requests waiting for
# Kafka longer than this are cut off; their clients retry and the sink's dedupe keeps storage
# exact. Kubernetes' default termination grace (30 s) leaves room for the Kafka flush after.
SHUTDOWN_GRACE_SECONDS = 5.0


def build_admission(
    settings: Settings, publisher: KafkaPublisher, partitions: int, max_message_bytes: int
) -> SpanAdmission:
    tenants = load_config(
        settings.ingest_auth_tokens,
        settings.ingest_auth_file,
        settings.ingest_tenant_spans_per_second,
        settings.ingest_tenant_burst,
    )
    config = AdmissionConfig(
        topic=settings.topics.raw_spans,
        partitions=partitions,
        partitioner=settings.ingest_partitioner,
        max_message_bytes=max_message_bytes,
        wait_for_ack=settings.ingest_wait_for_ack,
        sampling_ratio=settings.ingest_sampling_ratio,
        ack_timeout_seconds=settings.ingest_kafka_timeout_ms / 1000 + 10,
    )
    return SpanAdmission(publisher, config, tenants)


async def serve(settings: Settings) -> None:
    log = logs.setup("ingest")
    partitions = partition_count(settings.kafka, settings.topics.raw_spans)
    max_message_bytes = effective_max_message_bytes(
        settings.ingest_max_message_bytes,
        reported_topic_limit(settings.kafka, settings.topics.raw_spans),
    )
    publisher = KafkaPublisher(
        producer_config(
            settings.kafka,
            compression=settings.ingest_compression,
            linger_ms=settings.ingest_linger_ms,
            timeout_ms=settings.ingest_kafka_timeout_ms,
            max_message_bytes=settings.ingest_max_message_bytes,
        )
    )
    metrics.track_queue_depth(publisher.queue_depth)
    admission = build_admission(settings, publisher, partitions, max_message_bytes)
    host, reuse = settings.ingest_host, settings.ingest_reuse_port
    retry_after = settings.ingest_retry_after_seconds
    runners: list[web.AppRunner] = []
    limit = settings.max_request_bytes
    apps = [(build_app(admission, limit, retry_after), settings.ingest_http_port)]
    if settings.ingest_zipkin_port:
        apps.append(
            (
                build_zipkin_app(admission, limit, retry_after),
                settings.ingest_zipkin_port,
            )
        )
    jaeger = settings.ingest_jaeger_enabled
    if jaeger and settings.ingest_jaeger_http_port:
        apps.append(
            (build_jaeger_http_app(admission, limit, retry_after), settings.ingest_jaeger_http_port)
        )
    grpc_servers: list[grpc.aio.Server] = []
    if settings.ingest_grpc_port:
        server, _ = build_server(
            admission, host, settings.ingest_grpc_port, limit, reuse, retry_after
        )
        grpc_servers.append(server)
    if jaeger and settings.ingest_jaeger_grpc_port:
        server, _ = build_jaeger_grpc_server(
            admission, host, settings.ingest_jaeger_grpc_port, limit, reuse, retry_after
        )
        grpc_servers.append(server)
    for server in grpc_servers:
        await server.start()
    udp: list[AgentListener] = []
    for port, compact in (
        (settings.ingest_jaeger_compact_port, True),
        (settings.ingest_jaeger_binary_port, False),
    ):
        if jaeger and port:
            udp.append(await start_agent_listener(admission, host, port, compact, reuse))
    for app, port in apps:
        # auto_decompress off: aiohttp would inflate gzip without our bomb-safe bound.
        runner = web.AppRunner(
            app,
            access_log=None,
            auto_decompress=False,
            shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
            keepalive_timeout=HEADER_TIMEOUT_SECONDS,
        )
        await runner.setup()
        await web.TCPSite(runner, host, port, reuse_port=reuse or None).start()
        runners.append(runner)
    log.info(
        "ingest listening",
        extra={
            "fields": {
                "otlp_http": f"{host}:{settings.ingest_http_port}",
                "otlp_grpc": f"{host}:{settings.ingest_grpc_port}"
                if settings.ingest_grpc_port
                else "off",
                "zipkin": f"{host}:{settings.ingest_zipkin_port}"
                if settings.ingest_zipkin_port
                else "off",
                "jaeger": {
                    "thrift_http": settings.ingest_jaeger_http_port,
                    "grpc": settings.ingest_jaeger_grpc_port,
                    "udp_compact": settings.ingest_jaeger_compact_port,
                    "udp_binary": settings.ingest_jaeger_binary_port,
                }
                if jaeger
                else "off",
                "topic": settings.topics.raw_spans,
                "partitions": partitions,
                "partitioner": settings.ingest_partitioner,
                "max_message_bytes": max_message_bytes,
                "auth": admission.tenants.auth_enabled,
                "sampling_ratio": settings.ingest_sampling_ratio,
                "reuse_port": reuse,
            }
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("ingest stopping: draining receivers and Kafka")
    await drain(grpc_servers, runners, udp)
    unsent = publisher.close()
    log.info("ingest stopped", extra={"fields": {"unsent_messages": unsent}})


async def drain(
    grpc_servers: list[grpc.aio.Server],
    runners: list[web.AppRunner],
    udp: list[AgentListener] | None = None,
) -> None:
    """Stop every listener at once and let in-flight requests finish within the grace period.

    aiohttp waits up to ``shutdown_timeout`` for a running handler and again for it to
    cancel, so the whole drain is additionally capped; grpc cancels its calls after ``grace``;
    UDP listeners stop reading and their datagrams in flight get the grace period.
    """
    stops = [runner.cleanup() for runner in runners]
    stops.extend(server.stop(grace=SHUTDOWN_GRACE_SECONDS) for server in grpc_servers)
    stops.extend(listener.drain(SHUTDOWN_GRACE_SECONDS) for listener in udp or [])
    try:
        async with asyncio.timeout(2 * SHUTDOWN_GRACE_SECONDS + 1):
            await asyncio.gather(*stops)
    except TimeoutError:
        logging.getLogger("tracehouse.ingest").warning("receivers did not drain in time")


def main(settings: Settings | None = None) -> None:
    asyncio.run(serve(settings or Settings.from_env()))

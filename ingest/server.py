"""Entry point of an ingest node: wires the receivers to one Kafka publisher."""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

from deploy.local.topics import partition_count
from ingest.exporter import SpanExporter
from ingest.http_receiver import build_app
from ingest.kafka_publisher import KafkaPublisher, producer_config
from tracehouse import logs
from tracehouse.settings import Settings


async def serve(settings: Settings) -> None:
    log = logs.setup("ingest")
    partitions = partition_count(settings.kafka_bootstrap, settings.topics.raw_spans)
    publisher = KafkaPublisher(producer_config(settings.kafka_bootstrap))
    exporter = SpanExporter(publisher, settings.topics.raw_spans, partitions)
    runner = web.AppRunner(build_app(exporter, settings.max_request_bytes), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.ingest_host, settings.ingest_http_port)
    await site.start()
    log.info(
        "ingest listening",
        extra={
            "fields": {
                "otlp_http": f"{settings.ingest_host}:{settings.ingest_http_port}",
                "topic": settings.topics.raw_spans,
                "partitions": partitions,
            }
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("ingest stopping: draining HTTP and Kafka")
    await runner.cleanup()
    unsent = publisher.close()
    log.info("ingest stopped", extra={"fields": {"unsent_messages": unsent}})


def main(settings: Settings | None = None) -> None:
    asyncio.run(serve(settings or Settings.from_env()))

"""The faust worker: a thin adapter from Kafka to :mod:`streams.pipeline`.

Agents see whole messages (each a ``TracesData`` of many spans), never single spans, because
a faust worker tops out at ~14k messages/s on this hardware (DESIGN.md).
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from streams.pipeline import process_raw_message
from tracehouse.settings import Settings

log = logging.getLogger("tracehouse.streams")

SPANS_IN = Counter("tracehouse_streams_spans_in", "Spans read from the raw topic")
SPANS_FORWARDED = Counter("tracehouse_streams_spans_sampled", "Spans sent to spans.sampled")
MESSAGES_MALFORMED = Counter(
    "tracehouse_streams_messages_malformed", "Raw messages that could not be decoded"
)


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.streams_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=True,
        web_bind="127.0.0.1",
        web_port=settings.streams_web_port,
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.heartbeat_interval_ms / 1000,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_compression_type="lz4",
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
    )
    raw = app.topic(settings.topics.raw_spans, key_type=bytes, value_type=bytes)
    sampled = app.topic(settings.topics.sampled_spans, key_type=bytes, value_type=bytes)

    @app.agent(raw)
    async def forward(stream: Any) -> None:
        async for key, value in stream.items():
            result = process_raw_message(value)
            if result.malformed:
                MESSAGES_MALFORMED.inc()
                log.warning("malformed raw message skipped: %s", result.malformed)
                continue
            SPANS_IN.inc(result.spans_in)
            for payload in result.sampled_payloads:
                await sampled.send(key=key, value=payload)
            SPANS_FORWARDED.inc(result.spans_in)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    return app


def main(settings: Settings | None = None) -> None:
    from faust import Worker

    app = create_app(settings or Settings.from_env())
    Worker(app, loglevel="INFO").execute_from_commandline()

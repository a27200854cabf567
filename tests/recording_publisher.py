"""A stand-in for ingest's Kafka publisher in unit tests of the exporter and receivers: it
acknowledges every message on the next loop iteration and keeps what it was given, so tests can
decode exactly what would have gone to Kafka. (Integration tests use the real broker.)"""

from __future__ import annotations

import asyncio


class RecordingPublisher:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    def publish(
        self, topic: str, value: bytes, key: bytes | None, partition: int | None
    ) -> asyncio.Future[None]:
        self.values.append(value)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, None)
        return fut

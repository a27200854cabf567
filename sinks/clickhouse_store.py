"""The sink's narrow interface to ClickHouse: record an intent, insert spans, find intents."""

from __future__ import annotations

from typing import Any

import clickhouse_connect

from sinks.batching import PartitionBatch
from sinks.span_columns import OTEL_TRACES_COLUMNS, otel_traces_columns


def connect(url: str, database: str) -> Any:
    host, _, port = url.split("://", 1)[-1].rstrip("/").partition(":")
    return clickhouse_connect.get_client(
        host=host,
        port=int(port or 8123),
        database=database,
        compress="lz4",
        send_receive_timeout=60,
        # Retried blocks are deduplicated in materialized views too (DESIGN.md caveat).
        settings={"deduplicate_blocks_in_dependent_materialized_views": 1},
    )


class SpanStore:
    def __init__(self, client: Any, group: str) -> None:
        self._client = client
        self._group = group

    def planned_batches(
        self, topic: str, partition: int, from_offset: int
    ) -> list[tuple[int, int]]:
        """Intents recorded at or after the committed offset: batches that may be in storage."""
        rows = self._client.query(
            "SELECT FirstOffset, LastOffset FROM sink_batches FINAL "
            "WHERE ConsumerGroup = {g:String} AND Topic = {t:String} "
            "AND Partition = {p:UInt32} AND FirstOffset >= {o:Int64} ORDER BY FirstOffset",
            parameters={"g": self._group, "t": topic, "p": partition, "o": from_offset},
        ).result_rows
        return [(int(a), int(b)) for a, b in rows]

    def record_intent(self, batch: PartitionBatch) -> None:
        self._client.insert(
            "sink_batches",
            [
                [
                    self._group,
                    batch.topic,
                    batch.partition,
                    batch.first_offset,
                    batch.last_offset,
                    batch.rows,
                    len(batch.dlq),
                ]
            ],
            column_names=[
                "ConsumerGroup",
                "Topic",
                "Partition",
                "FirstOffset",
                "LastOffset",
                "Rows",
                "DlqRecords",
            ],
        )

    def insert_spans(self, batch: PartitionBatch) -> None:
        if not batch.records:
            return
        self._client.insert(
            "otel_traces",
            otel_traces_columns(batch.records),
            column_names=list(OTEL_TRACES_COLUMNS),
            column_oriented=True,
            settings={"insert_deduplication_token": batch.dedup_token(self._group)},
        )

"""The sink's narrow interface to ClickHouse: record an intent, insert a batch, find intents."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sinks import metrics
from sinks.batching import Intent, PartitionBatch
from sinks.clickhouse_errors import ErrorClass, classify

# otel_traces.TenantId is MATERIALIZED (kept out of SELECT * so upstream-shaped copies line up,
# docs/adr/0010-upstream-trace-layout.md); the sink still writes each span's tenant into it.
INSERT_SETTINGS = {"insert_allow_materialized_columns": 1}


class BatchStore:
    """ClickHouse side of the exactly-once protocol for any table (see docs/adr/0001)."""

    def __init__(self, client: Any, group: str) -> None:
        self._client = client
        self._group = group

    def planned_batches(
        self, topic: str, partition: int, from_offset: int
    ) -> list[Intent]:
        """Intents recorded at or after the committed offset: batches that may be in storage."""
        rows = self._client.query(
            "SELECT FirstOffset, LastOffset, FirstTimestampMs FROM sink_batches FINAL "
            "WHERE ConsumerGroup = {g:String} AND Topic = {t:String} "
            "AND Partition = {p:UInt32} AND FirstOffset >= {o:Int64} ORDER BY FirstOffset",
            parameters={"g": self._group, "t": topic, "p": partition, "o": from_offset},
        ).result_rows
        return [Intent(int(a), int(b), int(t)) for a, b, t in rows]

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
                    batch.first_timestamp_ms,
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
                "FirstTimestampMs",
            ],
        )

    def dedup_token(self, batch: PartitionBatch) -> str:
        return batch.dedup_token(self._group)

    def insert(self, table: str, data: pa.Table, batch: PartitionBatch) -> None:
        """One columnar insert; a retry with the same batch is a no-op thanks to the token."""
        self.insert_block(table, data, batch.dedup_token(self._group))

    def insert_block(self, table: str, data: pa.Table, token: str) -> None:
        """Insert ``data`` with dedup ``token``; rows spanning too many partitions go in anyway.

        ``max_partitions_per_insert_block`` (100) guards against a bad PARTITION BY, but our
        keys are daily and fixed: a request with spans on 101 days is legal data, and retrying
        it can never succeed. ClickHouse checks the limit before writing any part, so the
        same insert with the same token is repeated with the check off. A replay after a
        crash does the same two steps and the second one is deduplicated part by part (the
        block splits identically, so the per-partition block ids are identical).
        """
        settings = {"insert_deduplication_token": token, **INSERT_SETTINGS}
        try:
            self._client.insert_arrow(table, data, settings=settings)
        except Exception as exc:
            if classify(exc) is not ErrorClass.TOO_MANY_PARTITIONS:
                raise
            metrics.SHAPE_ERRORS.labels(table, ErrorClass.TOO_MANY_PARTITIONS.value).inc()
            self._client.insert_arrow(
                table,
                data,
                settings={**settings, "throw_on_max_partitions_per_insert_block": 0},
            )

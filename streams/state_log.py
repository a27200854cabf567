"""The streams worker's own changelog: sampling decisions and aggregate flush marks.

Why not faust tables: faust's table recovery reads the changelog until the broker's reported
high watermark, and Tansu reports a wrong watermark after multi-record batches
(docs/architecture.md, "Measured facts"), so recovery either stops early (decisions lost) or
waits forever. This log therefore never asks for a watermark: the loader first appends a unique
*barrier* record to the partition and then reads from the beginning until it meets that barrier,
which proves it has seen everything written before it, whatever the watermark says.

Buffered (undecided) spans are not copied here at all: the raw topic already holds them and
their offsets stay uncommitted until decided (see :mod:`streams.offset_tracker`), so writing
them again would double the broker traffic for nothing.

Each record also carries the counter deltas that describe exactly the state it records (see
:class:`streams.partition_processor.PartitionProcessor`), under an identity (epoch, seq, time):
the worker publishes them to ``pipeline.accounting`` only after the record is on the broker, and
the next owner of the partition re-publishes the last record's counters with the same identity,
so a crash between the two steps neither loses nor doubles a count (``pipeline_counters`` is a
ReplacingMergeTree keyed by that identity). The epoch is the offset of the owner's barrier:
unique per ownership, so two owners never reuse a (instance, seq).

Record value (JSON)::

    {"d": [[trace_id, sampled, through_offset], ...], "a": offset|null,
     "k": {trace_id: base64 span keys},           # sampled traces: spans sent (dedupe)
     "c": [[name, reason, value], ...], "e": epoch, "n": seq, "t": time_unix_nano}

The barrier has key ``__barrier__``. Partition n of this topic belongs to raw partition n.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from core.kafka import KafkaConnection, client_config
from streams.partition_processor import CounterRecord, RestoredState

log = logging.getLogger("tracehouse.streams.state")

BARRIER_KEY = b"__barrier__"


def encode_state(
    decisions: list[tuple[str, bool, int]],
    aggregates_through: int | None,
    sent_keys: dict[str, bytes] | None = None,
    counters: CounterRecord | None = None,
) -> bytes:
    doc: dict[str, Any] = {
        "d": [[t, 1 if s else 0, o] for t, s, o in decisions],
        "a": aggregates_through,
    }
    if sent_keys:
        doc["k"] = {t: base64.b64encode(k).decode() for t, k in sent_keys.items() if k}
    if counters is not None:
        doc["c"] = [[n, r, v] for (n, r), v in sorted(counters.counters.items())]
        doc["e"], doc["n"], doc["t"] = counters.epoch, counters.seq, counters.time_unix_nano
    return json.dumps(doc, separators=(",", ":")).encode()


def apply_state(state: RestoredState, latest: dict[str, tuple[bool, int]], value: bytes) -> None:
    """Fold one log record into ``state``/``latest`` (later records win)."""
    try:
        doc: Any = json.loads(value)
        for tid, sampled, through in doc.get("d", []):
            key = str(tid)
            latest.pop(key, None)  # re-insert: dict order = recency, which keep_last relies on
            latest[key] = (bool(sampled), int(through))
        for tid, keys in (doc.get("k") or {}).items():
            key = str(tid)
            state.sent_keys[key] = state.sent_keys.get(key, b"") + base64.b64decode(keys)
        if doc.get("a") is not None:
            state.aggregates_through = max(state.aggregates_through, int(doc["a"]))
        if "c" in doc:
            state.last_counters = CounterRecord(
                int(doc["e"]),
                int(doc["n"]),
                int(doc["t"]),
                {(str(n), str(r)): int(v) for n, r, v in doc["c"]},
            )
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        log.warning("ignoring unreadable state record: %s", exc)


def load_state(
    kafka: KafkaConnection, topic: str, partition: int, keep_last: int, timeout: float = 60
) -> RestoredState:
    """Everything persisted for ``partition``, read up to a barrier written just now."""
    marker = uuid.uuid4().hex.encode()
    producer = Producer(client_config(kafka, acks="all", linger_ms=0))
    barrier_offsets: list[int] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is None:
            barrier_offsets.append(int(msg.offset()))

    producer.produce(topic, marker, key=BARRIER_KEY, partition=partition, on_delivery=delivered)
    if producer.flush(timeout) != 0 or not barrier_offsets:
        raise RuntimeError(f"could not write the state barrier to {topic}/{partition}")
    consumer = Consumer(
        client_config(
            kafka,
            group_id=f"state-loader-{marker.decode()}",
            enable_auto_commit=False,
            enable_partition_eof=False,
            fetch_wait_max_ms=20,
        )
    )
    state = RestoredState(epoch=barrier_offsets[0])
    latest: dict[str, tuple[bool, int]] = {}
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError(f"state barrier not found in {topic}/{partition}")
            for msg in consumer.consume(1000, 0.1):
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("state read error: %s", err.str())
                    continue
                if msg.key() == BARRIER_KEY:
                    if msg.value() == marker:
                        return _finish(state, latest, keep_last)
                    continue
                apply_state(state, latest, msg.value() or b"")
    finally:
        consumer.close()


def _finish(
    state: RestoredState, latest: dict[str, tuple[bool, int]], keep_last: int
) -> RestoredState:
    items = list(latest.items())[-keep_last:] if keep_last > 0 else []
    state.decisions = [(t, s, o) for t, (s, o) in items]
    kept = {t for t, (s, _) in items if s}
    state.sent_keys = {t: k for t, k in state.sent_keys.items() if t in kept}
    return state

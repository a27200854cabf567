"""The streams worker's own changelog: sampling decisions and aggregate flush marks.

Why not faust tables: faust's table recovery reads the changelog until the broker's reported
high watermark, and Tansu reports a wrong watermark after multi-record batches (DESIGN.md), so
recovery either stops early (decisions lost) or waits forever. This log therefore never asks for
a watermark: the loader first appends a unique *barrier* record to the partition and then reads
from the beginning until it meets that barrier, which proves it has seen everything written
before it, whatever the watermark says.

Buffered (undecided) spans are not copied here at all: the raw topic already holds them and
their offsets stay uncommitted until decided (see :mod:`streams.offset_tracker`), so writing
them again would double the broker traffic for nothing.

Record value (JSON): ``{"d": [[trace_id, sampled, through_offset], ...], "a": offset|null}``;
the barrier has key ``__barrier__``. Partition n of this topic belongs to raw partition n.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from streams.partition_processor import RestoredState

log = logging.getLogger("tracehouse.streams.state")

BARRIER_KEY = b"__barrier__"


def state_topic_name(streams_group: str) -> str:
    return f"{streams_group}-decisions"


def encode_state(decisions: list[tuple[str, bool, int]], aggregates_through: int | None) -> bytes:
    return json.dumps(
        {"d": [[t, 1 if s else 0, o] for t, s, o in decisions], "a": aggregates_through},
        separators=(",", ":"),
    ).encode()


def apply_state(state: RestoredState, latest: dict[str, tuple[bool, int]], value: bytes) -> None:
    """Fold one log record into ``state``/``latest`` (later records win)."""
    try:
        doc: Any = json.loads(value)
        for tid, sampled, through in doc.get("d", []):
            key = str(tid)
            latest.pop(key, None)  # re-insert: dict order = recency, which keep_last relies on
            latest[key] = (bool(sampled), int(through))
        if doc.get("a") is not None:
            state.aggregates_through = max(state.aggregates_through, int(doc["a"]))
    except (ValueError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable state record: %s", exc)


def load_state(
    bootstrap: str, topic: str, partition: int, keep_last: int, timeout: float = 60
) -> RestoredState:
    """Everything persisted for ``partition``, read up to a barrier written just now."""
    marker = uuid.uuid4().hex.encode()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    producer.produce(topic, marker, key=BARRIER_KEY, partition=partition)
    if producer.flush(timeout) != 0:
        raise RuntimeError(f"could not write the state barrier to {topic}/{partition}")
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"state-loader-{marker.decode()}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "fetch.wait.max.ms": 20,
        }
    )
    state = RestoredState()
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
    return state

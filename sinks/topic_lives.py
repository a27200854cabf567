"""Noticing that a subscribed topic began a new life, so the sink can rejoin its group.

A topic deleted and created again under the same name, or a broker that lost its log and had
its topics re-created by ``tracehouse init``, is a new topic that shares the old one's name.
librdkafka does not reliably rebalance onto it: a sink that rejoined its group while the
topics were missing, and whose metadata then showed them again with the same partition
count, kept an empty assignment with no error at all (the broker-restart fault test, when
the topics came back about a second after the rejoin). Its subscription looked unchanged, so
nothing asked for another rebalance; subscribing again got it every partition, from which it
fetched nothing. Topic ids (KIP-516) are new for every life, so comparing them between two
looks names the event; the sink then replaces its Kafka clients, which know only the topics as
they are now, and rejoins its group.

:func:`new_lives` is the pure decision; :class:`TopicLifeWatch` asks the broker without ever
blocking the consume loop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient

log = logging.getLogger("tracehouse.sink")

# How often the broker is asked for the topics' ids: the consumer's own metadata refresh
# interval (sinks/worker.py), so a new life is acted on about as soon as librdkafka could.
CHECK_INTERVAL_S = 10.0
# A look the broker does not answer within this is dropped and asked again next interval.
REQUEST_TIMEOUT_S = 5.0

TopicIds = Mapping[str, str | None]


def new_lives(previous: TopicIds, current: TopicIds) -> list[str]:
    """Topics of ``current`` that began a new life since ``previous``, in ``current``'s order.

    ``None`` means the broker said the topic does not exist. A topic is in a new life when it
    exists now and was seen before with another id or missing. A topic seen for the first time
    is not: the consumer subscribed to it as it is. A topic that disappeared is not either:
    there is nothing to consume until it comes back, and its return is the new life.
    """
    return [
        topic
        for topic, topic_id in current.items()
        if topic_id is not None and topic in previous and previous[topic] != topic_id
    ]


class TopicLifeWatch:
    """Looks up the subscribed topics' ids every ``interval_s`` and reports new lives.

    :meth:`poll` is called from the consume loop; the lookup runs in librdkafka's threads and
    is collected on a later call, so a broker that does not answer never stalls the loop. A
    look that failed for a topic (broker unreachable, timeout) leaves what was known of it.
    """

    def __init__(
        self,
        admin: AdminClient,
        topics: list[str],
        interval_s: float = CHECK_INTERVAL_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self._admin = admin
        self._topics = list(topics)
        self._interval_s = interval_s
        self._request_timeout_s = request_timeout_s
        self._ids: dict[str, str | None] = {}
        self._pending: dict[str, Future[Any]] | None = None
        self._next_look = 0.0

    @property
    def pending(self) -> dict[str, Future[Any]] | None:
        """The look under way, if any (its answer is collected by a later :meth:`poll`)."""
        return self._pending

    def poll(self, now: float) -> list[str]:
        """Topics found in a new life by the look that completed since the last call."""
        if self._pending is None:
            if now >= self._next_look:
                self._next_look = now + self._interval_s
                self._pending = self._admin.describe_topics(
                    TopicCollection(self._topics), request_timeout=self._request_timeout_s
                )
            return []
        if not all(future.done() for future in self._pending.values()):
            return []
        current: dict[str, str | None] = {}
        for topic, future in self._pending.items():
            topic_id = _topic_id(future)
            if topic_id is not _UNKNOWN:
                current[topic] = topic_id
        self._pending = None
        changed = new_lives(self._ids, current)
        self._ids.update(current)
        return changed


_UNKNOWN = object()


def _topic_id(future: Future[Any]) -> Any:
    """The topic's id as text, None if the broker says it does not exist, ``_UNKNOWN`` if the
    look failed for another reason (nothing is learnt from it)."""
    try:
        return str(future.result().topic_id)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return None
        log.debug("topic lookup failed: %s", exc)
        return _UNKNOWN

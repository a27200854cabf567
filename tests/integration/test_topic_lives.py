"""The sink's topic-life watch (sinks/topic_lives.py) on the real broker: a topic deleted and
created again under the same name is reported once, a topic that did not exist and then does
is reported, and looks at an unchanged topic report nothing."""

from __future__ import annotations

import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from core.kafka import client_config
from deploy.local.stack import LocalStack
from sinks.topic_lives import TopicLifeWatch
from tests.conftest import isolated_settings


def _looks(watch: TopicLifeWatch, count: int) -> list[list[str]]:
    """``count`` completed looks (the watch asks on one poll and answers on a later one)."""
    looks: list[list[str]] = []
    deadline = time.monotonic() + 30
    while len(looks) < count:
        assert time.monotonic() < deadline, "the broker did not answer the watch"
        # now = +inf: every poll that is not collecting a look starts one
        reported = watch.poll(float("inf"))
        if watch.pending is None:
            looks.append(reported)
        time.sleep(0.05)
    return looks


def _create(admin: AdminClient, topic: str) -> None:
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(10)


def test_recreated_and_late_topics_are_new_lives(services: LocalStack) -> None:
    settings = isolated_settings(services, partitions=1)
    admin = AdminClient(client_config(settings.kafka))
    recreated, late = f"life-{uuid.uuid4().hex[:8]}", f"late-{uuid.uuid4().hex[:8]}"
    _create(admin, recreated)
    watch = TopicLifeWatch(admin, [recreated, late], interval_s=0.0)

    assert _looks(watch, 2) == [[], []]  # first sight, then unchanged

    admin.delete_topics([recreated])[recreated].result(10)
    _create(admin, recreated)
    _create(admin, late)
    assert _looks(watch, 1) == [[recreated, late]]
    assert _looks(watch, 2) == [[], []]  # each new life is reported once

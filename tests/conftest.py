"""Real services for the integration tests: one Tansu broker and one ClickHouse per session.

Each test that needs a pipeline gets its own topics, consumer groups and database, so tests
never see each other's data while sharing the (fast-starting) services.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings, Topics
from deploy.local.ports import free_component_ports, free_port
from deploy.local.stack import LocalStack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "unit" in parts:
            item.add_marker(pytest.mark.unit)
        elif "integration" in parts:
            item.add_marker(pytest.mark.integration)


KEEP_FOREVER: dict[str, Any] = {
    f"retention_{t}_days": 0
    for t in ("spans", "trace_lookup", "red", "red_hourly", "graph", "counters")
}


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    run_dir = tmp_path_factory.mktemp("services")
    settings = Settings(
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        clickhouse_url=f"http://127.0.0.1:{free_port()}",
        # Fixtures store spans at fixed instants in the past: retention would drop them as
        # they arrive. Retention itself is tested with its own settings (test_migrate.py).
        **KEEP_FOREVER,
    )
    stack = LocalStack(settings, run_dir, clickhouse_tcp_port=free_port(), say=lambda _m: None)
    try:
        stack.start_services()
        yield stack
    finally:
        stack.stop()


def isolated_settings(services: LocalStack, partitions: int = 4) -> Settings:
    tag = uuid.uuid4().hex[:8]
    base = services.settings
    return base.with_(
        topics=Topics(
            raw_spans=f"otlp_spans_{tag}",
            sampled_spans=f"spans.sampled_{tag}",
            red_metrics=f"metrics.red_{tag}",
            graph_edges=f"graph.edges_{tag}",
            accounting=f"pipeline.accounting_{tag}",
            streams_dlq=f"streams.dlq_{tag}",
            sink_dlq=f"sink.dlq_{tag}",
        ),
        partitions=partitions,
        clickhouse_database=f"th_{tag}",
        streams_group=f"streams-{tag}",
        sink_group=f"sink-{tag}",
        sink_batch_seconds=0.5,
        **free_component_ports(),
    )


@contextmanager
def running_pipeline(services: LocalStack, run_dir: Path, **changes: Any) -> Iterator[LocalStack]:
    """Topics, tables and the pipeline processes for settings isolated_settings + changes."""
    stack = LocalStack(isolated_settings(services).with_(**changes), run_dir, say=lambda _m: None)
    stack.prepare()
    try:
        stack.start_pipeline()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def pipeline_settings(services: LocalStack) -> Settings:
    settings = isolated_settings(services)
    LocalStack(settings, services.run_dir, say=lambda _m: None).prepare()
    return settings


@pytest.fixture
def pipeline(services: LocalStack, pipeline_settings: Settings) -> Iterator[LocalStack]:
    """Ingest, streams and sink processes on this test's topics and database."""
    stack = LocalStack(
        pipeline_settings,
        services.run_dir / pipeline_settings.clickhouse_database,
        say=lambda _m: None,
    )
    try:
        stack.start_pipeline()
        yield stack
    finally:
        stack.stop()

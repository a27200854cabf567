"""One query service per test module over spans stored the way the sink stores them.

Module-scoped so a module's many requests share one ClickHouse database and one query process
(starting them per test would cost seconds each); the spans go through the production path
(OTLP -> streams' encoder -> the sink's decoder -> the sink's BatchStore insert).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.stack import LocalStack
from sinks.batching import PartitionBatch
from sinks.clickhouse_store import BatchStore
from tests.conftest import isolated_settings
from tracehouse.span_specs import traces_from_rows
from tracehouse.span_tables import otel_traces_table, span_facts


@dataclass(frozen=True)
class QueryStack:
    base: str
    settings: Settings

    def client(self) -> Any:
        return connect(self.settings.clickhouse_url, self.settings.clickhouse_database)

    def get(self, path: str) -> tuple[int, str, bytes]:
        return request(self.base + path)

    def get_json(self, path: str) -> tuple[int, Any]:
        status, _ctype, body = self.get(path)
        return status, json.loads(body)

    def post(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        return request(self.base + path, body)


def request(url: str, body: bytes | None = None) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, data=body, method="GET" if body is None else "POST")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


def store_rows(settings: Settings, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert span rows (tracehouse.span_specs.traces_from_rows format) as the sink does."""
    data = traces_from_rows(rows)
    records = span_facts(data)
    store = BatchStore(connect(settings.clickhouse_url, settings.clickhouse_database), "test")
    batch = PartitionBatch("t", 0, 0)
    batch.add(0, records, len(records))
    store.insert("otel_traces", otel_traces_table(data), batch)


@contextmanager
def query_stack(
    services: LocalStack, run_dir: Path, rows: Sequence[Mapping[str, Any]]
) -> Iterator[QueryStack]:
    settings = isolated_settings(services)
    stack = LocalStack(settings, run_dir, say=lambda _m: None)
    stack.prepare()
    store_rows(settings, rows)
    try:
        stack.start_component("query", f"http://127.0.0.1:{settings.query_http_port}/health")
        yield QueryStack(f"http://127.0.0.1:{settings.query_http_port}", settings)
    finally:
        stack.stop()

"""`tracehouse backup` / `restore` on the real local ClickHouse, through the real CLI.

The pipeline stores a demo load (spans, lookup, RED, graph, counters), then stops so nothing
writes any more; the tables are backed up to the server's ``backups`` disk, emptied (truncated
or dropped, both ways an operator loses data) and restored. Every table must come back with the
same row count and the same checksum over all its columns.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.stack import LocalStack
from tests.conftest import running_pipeline
from tests.integration.cli_runner import cli_process, environ_without_settings
from tests.integration.helpers import wait_until
from tracehouse.backup import BACKUP_TABLES
from tracehouse.demo_traces import send_demo_load

pytestmark = pytest.mark.integration

# Filled by the pipeline; sampling_probabilities and the archive only by adaptive sampling
# and POST /api/archive, so they may be empty (and are still backed up and restored).
FILLED = ("otel_traces", "otel_traces_trace_id_ts", "red_metrics", "service_graph_edges")


def _cli(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    return cli_process(argv, {**environ_without_settings(), **settings.to_env()})


def _snapshot(client: Any, database: str) -> dict[str, tuple[int, int]]:
    """Rows and an order-independent checksum of every column of each backed-up table."""
    out = {}
    for table in BACKUP_TABLES:
        # Merge first so background merges of the summing tables cannot change count() later.
        client.command(f"OPTIMIZE TABLE `{database}`.`{table}` FINAL")
        rows, checksum = client.query(
            f"SELECT count(), sum(cityHash64(*)) FROM `{database}`.`{table}`"
        ).result_rows[0]
        out[table] = (int(rows), int(checksum))
    return out


def _counts(client: Any, database: str) -> dict[str, int]:
    rows = client.query(
        "SELECT name, total_rows FROM system.tables WHERE database = {db:String}",
        parameters={"db": database},
    ).result_rows
    return {name: int(n or 0) for name, n in rows}


def test_backup_truncate_drop_restore_gives_the_same_rows(
    services: LocalStack, tmp_path: Path
) -> None:
    with running_pipeline(services, tmp_path / "run") as stack:
        settings = stack.settings
        client = connect(settings.clickhouse_url, settings.clickhouse_database)
        endpoint = f"http://127.0.0.1:{settings.ingest_http_port}/v1/traces"
        send_demo_load(endpoint, requests=20, traces_per_request=5, seed=7)
        wait_until(
            lambda: _counts(client, settings.clickhouse_database),
            lambda c: all(c.get(t, 0) > 0 for t in FILLED),
            timeout=90,
        )
    # The pipeline stopped (sink flushed and committed): the tables no longer change.
    database = settings.clickhouse_database
    before = _snapshot(client, database)
    assert all(before[t][0] > 0 for t in FILLED), before

    name = f"test-{uuid.uuid4().hex[:8]}"
    out = _cli(settings, "backup", name)
    assert out.returncode == 0, out.stdout + out.stderr
    assert all(t in out.stdout for t in BACKUP_TABLES), out.stdout

    # Restoring over live data is refused and names a table that has rows.
    refused = _cli(settings, "restore", name)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "otel_traces (" in refused.stderr, refused.stderr

    # Lose the data both ways: truncate some tables, drop the others outright.
    for i, table in enumerate(BACKUP_TABLES):
        verb = "TRUNCATE TABLE" if i % 2 == 0 else "DROP TABLE"
        client.command(f"{verb} `{database}`.`{table}`")
    assert all(_counts(client, database).get(t, 0) == 0 for t in BACKUP_TABLES)

    out = _cli(settings, "restore", name)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _snapshot(client, database) == before

    # The materialized views still feed the restored (here: dropped and recreated) lookup.
    new_id = "f" * 32
    client.command(
        f"INSERT INTO `{database}`.otel_traces SELECT * REPLACE ('{new_id}' AS TraceId) "
        f"FROM `{database}`.otel_traces LIMIT 1"
    )
    found = client.query(
        f"SELECT count() FROM `{database}`.otel_traces_trace_id_ts WHERE TraceId = '{new_id}'"
    ).result_rows[0][0]
    assert found == 1

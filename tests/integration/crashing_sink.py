"""A real sink worker that SIGKILLs itself right after its N-th insert, before the commit.

The exactly-once tests need the process to die with a batch in ClickHouse whose offsets are not
committed (and, mid-bisection, with only some sub-inserts done). The production worker has no
hook for that: this entry point gives it stores that count inserts and kill the process, so the
fault lives in the tests. Launched by :func:`start_crashing_sink` as

    python -m tests.integration.crashing_sink --after-inserts N [--table otel_traces]

with the usual ``TRACEHOUSE_*`` settings in the environment. Every insert counts, whether a
whole batch or one of its isolating sub-inserts, on the consumer thread or an insert thread.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from typing import Any

import pyarrow as pa

from core.clickhouse import connect
from core.settings import Settings
from deploy.local.stack import Child, LocalStack
from sinks import worker
from sinks.clickhouse_store import BatchStore

log = logging.getLogger("tracehouse.sink")


class CrashAfterInserts:
    """Shared by all stores of one worker: kill the process at the N-th insert into ``table``
    (any table when empty)."""

    def __init__(self, after_inserts: int, table: str = "") -> None:
        self.after_inserts = after_inserts
        self.table = table
        self.inserts = 0
        self._lock = threading.Lock()

    def inserted(self, table: str) -> None:
        with self._lock:
            if self.table in ("", table):
                self.inserts += 1
            if self.inserts >= self.after_inserts:
                log.warning("test: SIGKILL after insert, before commit")
                os.kill(os.getpid(), signal.SIGKILL)


class CrashingStore(BatchStore):
    """A ClickHouse store that reports every successful insert to a :class:`CrashAfterInserts`."""

    def __init__(self, client: Any, group: str, crash: CrashAfterInserts) -> None:
        super().__init__(client, group)
        self._crash = crash

    def insert_block(self, table: str, data: pa.Table, token: str) -> None:
        super().insert_block(table, data, token)
        self._crash.inserted(table)


def start_crashing_sink(stack: LocalStack, port: int, after_inserts: int, table: str) -> Child:
    """A sink process on the stack's settings that dies after its N-th insert into ``table``."""
    stack.settings = stack.settings.with_(sink_metrics_port=port)
    return stack.start_component(
        "sink",
        f"http://127.0.0.1:{port}/metrics",
        argv=[
            "-m",
            "tests.integration.crashing_sink",
            "--after-inserts",
            str(after_inserts),
            "--table",
            table,
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--after-inserts", type=int, required=True)
    parser.add_argument("--table", default="", help="count inserts into this table only")
    args = parser.parse_args()
    settings = Settings.from_env()
    crash = CrashAfterInserts(args.after_inserts, args.table)

    def store() -> BatchStore:
        client = connect(settings.clickhouse_url, settings.clickhouse_database)
        return CrashingStore(client, settings.sink_group, crash)

    worker.main(settings, store_factory=store)


if __name__ == "__main__":
    main()

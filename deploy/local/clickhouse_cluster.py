"""N local ClickHouse servers as the shards of one sharded layout (docs/adr/0013).

Each shard is a :func:`deploy.local.clickhouse_server.start_clickhouse` server with its own data
directory and ports on 127.0.0.1. The servers need no cluster configuration of their own: the
sharded layout names every shard's native address in its DDL (``remote()`` tables), which is
what the settings returned by :meth:`ClickHouseCluster.settings_for` carry. Run
``python -m deploy.local.clickhouse_cluster --shards 2 --run-dir DIR`` to keep a cluster up
by hand; it prints the ``TRACEHOUSE_CLICKHOUSE_*`` variables that point components at it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings
from deploy.local.clickhouse_server import start_clickhouse
from deploy.local.ports import free_port


@dataclass
class ClickHouseCluster:
    """The running shards, in shard order (shard 1 first), data under ``run_dir/shard-N``."""

    run_dir: Path
    http_ports: list[int]
    tcp_ports: list[int]
    max_memory_per_shard: int = 1024**3
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.http_ports]

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.tcp_ports]

    def settings_for(self, base: Settings) -> Settings:
        """``base`` pointed at this cluster: components talk to shard 1, which (like any
        shard) reads and writes all of them through the tables of the plain names."""
        return base.with_(
            clickhouse_url=self.urls[0],
            clickhouse_shards=",".join(self.addresses),
            clickhouse_shard_urls=",".join(self.urls),
        )

    def start_shard(self, index: int) -> subprocess.Popen[bytes]:
        """Start shard ``index`` (0-based) on its ports and data directory: a restart keeps
        its rows."""
        n = index + 1
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "logs" / f"clickhouse-shard-{n}.log", "ab") as log:
            proc = start_clickhouse(
                self.run_dir / f"shard-{n}",
                self.http_ports[index],
                self.tcp_ports[index],
                log,
                self.max_memory_per_shard,
            )
        if index < len(self.procs):
            self.procs[index] = proc
        else:
            self.procs.append(proc)
        return proc

    def stop_shard(self, index: int) -> None:
        _stop(self.procs[index])

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_clickhouse_cluster(
    run_dir: Path, shards: int = 2, max_memory_per_shard: int = 1024**3
) -> ClickHouseCluster:
    """Start ``shards`` servers under ``run_dir/shard-N`` (logs in ``run_dir/logs``); on any
    failure the ones already started are stopped again."""
    if shards < 1:
        raise ValueError("a cluster needs at least one shard")
    cluster = ClickHouseCluster(
        run_dir,
        [free_port() for _ in range(shards)],
        [free_port() for _ in range(shards)],
        max_memory_per_shard,
    )
    try:
        for index in range(shards):
            cluster.start_shard(index)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--run-dir", type=Path, default=Path(".tracehouse/cluster"))
    args = parser.parse_args(argv)
    cluster = start_clickhouse_cluster(args.run_dir.resolve(), args.shards)
    env = cluster.settings_for(Settings()).to_env()
    for name in ("CLICKHOUSE_URL", "CLICKHOUSE_SHARDS", "CLICKHOUSE_SHARD_URLS"):
        print(f"export TRACEHOUSE_{name}={env[f'TRACEHOUSE_{name}']}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    cluster.stop()
    os._exit(0)


if __name__ == "__main__":
    main()

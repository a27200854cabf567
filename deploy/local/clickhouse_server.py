"""ClickHouse 26.9 from the pinned ``chdb-core`` wheel, run as a real HTTP/TCP server.

chdb is ClickHouse as a library. Its embedded server reads ``clickhouse-local.xml`` from the
working directory, so we write one binding 127.0.0.1 only (there is no auth), then start the
listeners from a thread and park that thread on a query that never ends. The process is a
real server: clickhouse-connect, native clients and several writers work against it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

from deploy.local.ports import ensure_free

CONFIG_TEMPLATE = """<clickhouse>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <max_server_memory_usage>{max_memory}</max_server_memory_usage>
    <mark_cache_size>268435456</mark_cache_size>
    <!-- `tracehouse backup`/`restore` write BACKUP ... TO Disk('backups', ...) here, inside the
         data dir so one directory holds the server's whole state. -->
    <storage_configuration>
        <disks>
            <backups>
                <type>local</type>
                <path>{backups_dir}/</path>
            </backups>
        </disks>
    </storage_configuration>
    <backups>
        <allowed_disk>backups</allowed_disk>
        <allowed_path>{backups_dir}/</allowed_path>
    </backups>
</clickhouse>
"""

# The disk name `tracehouse backup` uses by default (core.backup.DEFAULT_DISK).
BACKUPS_DISK = "backups"

# Parks the query thread forever: one row per second, one-row blocks, never finishes.
_PARK = "SELECT sleepEachRow(1) FROM system.numbers SETTINGS max_block_size = 1 FORMAT Null"


def serve(data_dir: Path, http_port: int, tcp_port: int, max_memory: int) -> None:
    """Run the server in this process until SIGTERM/SIGINT."""
    import chdb._chdb as chdb_native  # imported late: it loads a large shared library

    data_dir.mkdir(parents=True, exist_ok=True)
    backups_dir = data_dir / "backups"
    backups_dir.mkdir(exist_ok=True)
    (data_dir / "clickhouse-local.xml").write_text(
        CONFIG_TEMPLATE.format(
            http_port=http_port,
            tcp_port=tcp_port,
            max_memory=max_memory,
            backups_dir=backups_dir,
        )
    )
    os.chdir(data_dir)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            chdb_native.query(  # type: ignore[attr-defined]
                f"SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; {_PARK}",
                "TabSeparated",
                path=str(data_dir / "data"),
            )
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=run, name="chdb-server", daemon=True).start()
    while not stop.wait(0.5):
        if failure:
            print(f"clickhouse server failed: {failure[0]}", file=sys.stderr, flush=True)
            os._exit(1)
    # chdb has no clean stop for a parked query; the OS reclaims everything.
    os._exit(0)


def ping(http_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/ping", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def start_clickhouse(
    data_dir: Path,
    http_port: int,
    tcp_port: int,
    log: IO[bytes] | int = subprocess.DEVNULL,
    max_memory: int = 4 * 1024**3,
    timeout: float = 60,
) -> subprocess.Popen[bytes]:
    ensure_free(http_port, "ClickHouse HTTP")
    ensure_free(tcp_port, "ClickHouse native TCP")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deploy.local.clickhouse_server",
            "--data-dir",
            str(data_dir),
            "--http-port",
            str(http_port),
            "--tcp-port",
            str(tcp_port),
            "--max-memory",
            str(max_memory),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ClickHouse exited with code {proc.returncode} while starting")
        if ping(http_port):
            return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"ClickHouse did not answer /ping on port {http_port} within {timeout} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--http-port", type=int, default=8123)
    parser.add_argument("--tcp-port", type=int, default=9000)
    parser.add_argument("--max-memory", type=int, default=4 * 1024**3)
    args = parser.parse_args(argv)
    serve(args.data_dir.resolve(), args.http_port, args.tcp_port, args.max_memory)


if __name__ == "__main__":
    main()

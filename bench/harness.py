"""What every benchmark needs, written once: settings on free ports, the real services, process
figures from ``/proc``, Prometheus scraping and quantiles.

Benchmarks compare a result with a baseline measured in the same run on a shared, noisy
machine, so the figures that explain a result (CPU per process tree, time spent waiting for a
core, other load on the machine, peak memory) must be measured the same way in every script.
"""

from __future__ import annotations

import os
import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.settings import Settings
from deploy.local.ports import free_component_ports, free_port
from deploy.local.stack import LocalStack

CLK_TCK = os.sysconf("SC_CLK_TCK")

# -- settings and services --------------------------------------------------------------------


def bench_settings(**changes: Any) -> Settings:
    """Settings with the broker, ClickHouse and every component on free loopback ports."""
    # Benchmarks store spans at fixed past instants: no retention, or the TTL drops them.
    keep: dict[str, Any] = {
        f"retention_{t}_days": 0
        for t in ("spans", "trace_lookup", "red", "red_hourly", "graph", "counters")
    }
    return Settings(
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        clickhouse_url=f"http://127.0.0.1:{free_port()}",
        **{**keep, **free_component_ports(), **changes},
    )


@contextmanager
def running_services(settings: Settings, run_dir: Path, quiet: bool = True) -> Iterator[LocalStack]:
    """The real broker and ClickHouse of ``settings`` (started, then stopped with everything
    the stack started meanwhile)."""
    say = (lambda _m: None) if quiet else print
    stack = LocalStack(settings, run_dir, free_port(), say=say)
    try:
        stack.start_services()
        yield stack
    finally:
        stack.stop()


# -- process figures from /proc ----------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its live descendants (threads included)."""
    total = 0.0
    for p in descendants(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(f[11]) + int(f[12])) / CLK_TCK
    return total


def run_queue_seconds(pid: int) -> float:
    """Time the threads of ``pid`` and its descendants were runnable but waiting for a core.

    From ``/proc/<pid>/task/<tid>/schedstat`` (second field, ns). High values mean the process
    was starved of CPU (by the pipeline's other processes or other users of the machine);
    low values with low CPU mean it was idle, i.e. waiting on its input or a timer.
    """
    total = 0
    for p in descendants(pid):
        try:
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine used (``/proc/stat``), to show other load."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / CLK_TCK  # all but idle and iowait


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of ``pid`` and its descendants, summed."""
    total = 0.0
    for p in descendants(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        total += int(m.group(1)) / 1024 if m else 0.0
    return total


# -- metrics and statistics --------------------------------------------------------------------


def scrape(url: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value}."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def metric_sum(metrics: dict[str, float], name: str) -> int:
    """The sum of every series of ``name`` (any labels)."""
    return int(sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{")))


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

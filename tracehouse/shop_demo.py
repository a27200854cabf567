"""Run the demo shop: its services as processes, and a steady load on the entry service.

Used by ``tracehouse up --demo`` (``make demo``) and its test. Every service of
tracehouse/shop_topology.py starts as ``python -m tracehouse.shop_service`` on a free port,
knowing its peers' URLs, tracehouse ingest (OTLP/HTTP) and the remote-sampling endpoint. The
load generator is plain HTTP without tracing, so every trace starts at the frontend's SERVER
span, where the frontend's sampler decides for the whole trace.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.ports import free_port, wait_for_tcp
from tracehouse.shop_topology import ENTRY_MIX, SHOP


@dataclass
class Shop:
    otlp_endpoint: str
    sampling_endpoint: str
    log_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, timeout: float = 30) -> None:
        self.ports = {s.name: free_port() for s in SHOP}
        peers = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for s in SHOP:
            log = (self.log_dir / f"shop-{s.name}.log").open("ab")
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tracehouse.shop_service",
                        s.name,
                        str(self.ports[s.name]),
                        json.dumps(peers),
                        self.otlp_endpoint,
                        self.sampling_endpoint,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for name, port in self.ports.items():
            if not wait_for_tcp("127.0.0.1", port, timeout):
                self.stop()
                raise RuntimeError(f"shop service {name} did not start (see {self.log_dir})")

    @property
    def frontend(self) -> str:
        return f"http://127.0.0.1:{self.ports['frontend']}"

    def drive(self, requests: int, rate: float, seed: int = 1, workers: int = 8) -> Counter[str]:
        """Send ``requests`` entry requests at about ``rate`` per second; status counts."""
        rng = random.Random(seed)
        routes = [(m, p) for m, p, _w in ENTRY_MIX]
        weights = [w for _m, _p, w in ENTRY_MIX]
        outcomes: Counter[str] = Counter()

        def one(method: str, path: str) -> str:
            req = urllib.request.Request(f"{self.frontend}{path}", method=method)
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return str(resp.status)
            except urllib.error.HTTPError as err:
                return str(err.code)
            except OSError:
                return "failed"

        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            futures = []
            for i in range(requests):
                due = started + i / rate
                time.sleep(max(0.0, due - time.monotonic()))
                futures.append(pool.submit(one, *rng.choices(routes, weights)[0]))
            for f in futures:
                outcomes[f.result()] += 1
        return outcomes

    def stop(self, grace: float = 10) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + grace
        for p in self.processes:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.processes = []

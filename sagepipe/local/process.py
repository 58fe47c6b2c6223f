"""Processes the local runtime starts (a build's shell, a training job), and its bounded waits.

Two things every local job needs, in one place:

* `Supervisor`: runs a process in a session of its own under a deadline and a cancel event, and ends its
  whole process group when it exits or is interrupted (SIGTERM, a grace period, then SIGKILL), as a
  container's processes all go when the container does. No wait in it is unbounded. It also watches a session
  leader another process started and reaps (a `ReportedProcess`: a training job forked by a warm-start server).
* `poll_until`: the one bounded polling loop: check a condition every `interval` until it holds or `timeout`
  passes (waking early when an event is set).

POSIX only: process groups and waitid.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Literal, Protocol

POLL_SECONDS: Final = 0.05
REAP_TIMEOUT_SECONDS: Final = 10.0

Interruption = Literal["cancelled", "deadline", "reclaimed"]
"""Why a supervised process was ended early: the cancel event was set, the deadline passed, or its capacity was
reclaimed (the `reclaim` condition held: a local Spot interruption)."""


def poll_until(
    condition: Callable[[], object],
    *,
    timeout: float,
    interval: float = POLL_SECONDS,
    wake: threading.Event | None = None,
) -> bool:
    """Call `condition` until it returns something true, at most every `interval` seconds, for at most `timeout`
    seconds; True if it held. Between calls it sleeps, or waits on `wake` (set it to check again at once)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        pause = min(interval, remaining)
        if wake is not None:
            wake.wait(pause)
        else:
            time.sleep(pause)


class ReportedProcess(Protocol):
    """A session leader another process started and reaps (a warm-start server's job): it reports its own exit,
    and its reaper ends whatever it left running in its group before reaping it."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int | None: ...


class Interrupted(Exception):
    """A supervised process was ended early (`why`)."""

    def __init__(self, why: Interruption) -> None:
        super().__init__(why)
        self.why: Interruption = why


@dataclass(frozen=True)
class Supervisor:
    """Runs processes until `deadline` (time.monotonic()) or until `cancel` is set."""

    deadline: float
    cancel: threading.Event | None = None
    grace_seconds: float = 2.0
    """Between SIGTERM and SIGKILL when a process is interrupted."""
    reclaim: Callable[[], bool] | None = None
    """When this holds, the process is interrupted as "reclaimed" (checked at every poll)."""

    @classmethod
    def for_seconds(
        cls,
        seconds: float,
        cancel: threading.Event | None = None,
        *,
        grace_seconds: float = 2.0,
        reclaim: Callable[[], bool] | None = None,
    ) -> Supervisor:
        return cls(time.monotonic() + seconds if math.isfinite(seconds) else math.inf, cancel, grace_seconds, reclaim)

    def interruption(self) -> Interruption | None:
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if time.monotonic() >= self.deadline:
            return "deadline"
        if self.reclaim is not None and self.reclaim():
            return "reclaimed"
        return None

    def check(self) -> None:
        """Raise Interrupted if the job should stop now."""
        why = self.interruption()
        if why is not None:
            raise Interrupted(why)

    def start(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        stdout: IO[bytes] | int | None,
        stderr: IO[bytes] | int | None,
    ) -> subprocess.Popen[bytes]:
        """Start argv in a session of its own, so that its process group holds everything it starts."""
        return subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True
        )

    def supervise(
        self,
        process: subprocess.Popen[bytes] | ReportedProcess,
        *,
        on_interrupt: Callable[[Interruption], None] | None = None,
        on_kill: Callable[[], None] | None = None,
    ) -> Interruption | None:
        """Wait for `process` (a session leader) to exit or be interrupted, then end its process group and reap it.

        On an interruption, `on_interrupt` is called, the group gets SIGTERM and, if the leader is still running
        after the grace period, `on_kill` is called and the group gets SIGKILL. Returns the interruption, if any.
        """
        why: Interruption | None = None
        own_child = isinstance(process, subprocess.Popen)

        def exited() -> bool:
            return has_exited(process.pid) if own_child else process.poll() is not None

        def settled() -> bool:
            nonlocal why
            if exited():
                return True
            why = self.interruption()
            return why is not None

        # Bounded by the deadline, which settled() checks; a cancel wakes the wait at once.
        poll_until(settled, timeout=math.inf, wake=self.cancel)
        if why is not None:
            if on_interrupt is not None:
                on_interrupt(why)
            signal_group(process.pid, signal.SIGTERM)
            if not poll_until(exited, timeout=self.grace_seconds) and on_kill is not None:
                on_kill()
        # Whatever the process left running goes with it, as a container's processes do. A reported process's
        # reaper does that itself once the process exits, while the group id is still the process's own; here it
        # is only killed if it has outlived the grace period.
        if own_child or not exited():
            signal_group(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=REAP_TIMEOUT_SECONDS)
        return why

    def run(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdout: Path, stderr: Path) -> int:
        """Run argv to completion with its output in files; raise Interrupted if it had to be ended."""
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = self.start(argv, cwd=cwd, env=env, stdout=out, stderr=err)
            why = self.supervise(process)
        if why is not None:
            raise Interrupted(why)
        return process.returncode


def has_exited(pid: int) -> bool:
    """True once the child has exited. WNOWAIT leaves it unreaped, so its process group id cannot be reused
    before the group is ended."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group has already ended
        os.killpg(pgid, signum)

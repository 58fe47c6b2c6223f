"""The process-group supervisor every local job runs under (sagepipe.local.process)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from sagepipe.local import process

IGNORE_SIGTERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
time.sleep(30)
"""


def test_a_leader_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    """Given a process that ignores SIGTERM and a deadline it outlives, then the supervisor sends SIGTERM at the
    deadline, calls on_kill once the grace period is over, and ends it with SIGKILL."""
    supervisor = process.Supervisor.for_seconds(0.5, grace_seconds=0.5)
    events: list[str] = []
    started = time.monotonic()
    leader = supervisor.start(
        [sys.executable, "-c", IGNORE_SIGTERM], cwd=tmp_path, env={}, stdout=subprocess.PIPE, stderr=None
    )
    assert leader.stdout is not None
    # Wait for the handler to be in place, so that SIGTERM is really ignored rather than fatal.
    assert leader.stdout.readline() == b"ignoring SIGTERM\n"

    why = supervisor.supervise(
        leader, on_interrupt=lambda reason: events.append(f"interrupt:{reason}"), on_kill=lambda: events.append("kill")
    )
    leader.stdout.close()

    assert why == "deadline"
    assert events == ["interrupt:deadline", "kill"]
    assert leader.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10

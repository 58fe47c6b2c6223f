"""How `sagepipe local run` and `local replay` find a running `sagepipe local up`: its discovery file.

`local up` writes `<state dir>/session/endpoint.json` once its stack is provisioned (endpoint, pid, stack,
repository, its session directory, when it started) and removes it when it stops. The other local commands
read it: when the `local up` it names still runs and answers, they drive that emulator as a client, through
its AWS endpoint only, so their runs accumulate in it (and `sagepipe runs` lists them all); otherwise they
start an emulator of their own, whose runs end with the command.

A file whose process is gone, or whose endpoint does not answer, is stale (a `local up` that was killed
cannot remove it): it is ignored, and the next `local up` replaces it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from botocore.config import Config

from sagepipe.local.core.emulator import RemoteEmulator, endpoint_client

DISCOVERY_FILE: Final = "endpoint.json"
SESSION_DIR: Final = "session"
PROBE_CONFIG: Final = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5)
"""A running `local up` answers DescribeStacks in milliseconds; one that does not within seconds is not there."""


class SessionConflict(RuntimeError):
    """A live `local up` holds the state directory in a way this command cannot use or replace."""


@dataclass(frozen=True)
class LocalUp:
    """A `sagepipe local up`, as its discovery file describes it."""

    endpoint: str
    pid: int
    stack: str
    repository: str
    session_dir: str
    started_at: str

    @property
    def emulator(self) -> RemoteEmulator:
        return RemoteEmulator(self.endpoint, Path(self.session_dir))


@dataclass(frozen=True)
class Discovery:
    """What the state directory says: a live `local up` to use, or none (and why a file there was ignored)."""

    live: LocalUp | None
    ignored: str | None = None


def discovery_path(state_dir: Path) -> Path:
    return state_dir / SESSION_DIR / DISCOVERY_FILE


def write(session_dir: Path, *, endpoint: str, stack: str, repository: Path) -> LocalUp:
    """Announce this process's emulator (atomically: a reader never sees half a file)."""
    up = LocalUp(
        endpoint=endpoint,
        pid=os.getpid(),
        stack=stack,
        repository=str(repository.resolve()),
        session_dir=str(session_dir.resolve()),
        started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    target = session_dir / DISCOVERY_FILE
    partial = target.with_suffix(".json.partial")
    partial.write_text(json.dumps(asdict(up), indent=2) + "\n", encoding="utf-8")
    partial.replace(target)
    return up


def remove(session_dir: Path) -> None:
    """Withdraw this process's announcement (a file another process wrote since is left alone)."""
    target = session_dir / DISCOVERY_FILE
    found = read(target)
    if found is not None and found.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            target.unlink()


def read(path: Path) -> LocalUp | None:
    """The discovery file's content, or None when there is none or it cannot be read."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        return LocalUp(
            endpoint=str(raw["endpoint"]),
            pid=int(raw["pid"]),
            stack=str(raw["stack"]),
            repository=str(raw["repository"]),
            session_dir=str(raw["session_dir"]),
            started_at=str(raw.get("started_at", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to someone else
        return True
    return True


def answers(up: LocalUp) -> bool:
    """Whether the endpoint answers for the announced stack (CloudFormation DescribeStacks, bounded)."""
    try:
        endpoint_client(up.endpoint, "cloudformation", PROBE_CONFIG).describe_stacks(StackName=up.stack)
    except Exception:  # refused, timed out, or not this stack: not the announced `local up`
        return False
    return True


def discover(state_dir: Path, repository: Path) -> Discovery:
    """The live `local up` of this state directory, if any.

    Raises SessionConflict when a live one serves another project: starting a second emulator here would
    clear its session.
    """
    path = discovery_path(state_dir)
    if not path.exists():
        return Discovery(None)
    up = read(path)
    if up is None:
        return Discovery(None, f"{path} cannot be read")
    if not process_exists(up.pid):
        return Discovery(None, f"{path} names process {up.pid}, which is gone")
    if not answers(up):
        return Discovery(None, f"{path} names {up.endpoint}, where stack {up.stack} does not answer")
    if Path(up.repository) != repository.resolve():
        raise SessionConflict(
            f"the `sagepipe local up` at {up.endpoint} (pid {up.pid}) serves {up.repository}, not "
            f"{repository.resolve()}; stop it, or pass another --state-dir"
        )
    return Discovery(up)


def for_endpoint(state_dir: Path, endpoint: str | None) -> LocalUp | None:
    """The `local up` announced in `state_dir` whose endpoint is `endpoint` (AWS_ENDPOINT_URL), its process
    still running; None otherwise. Cheap (no request): `sagepipe runs` uses it to default --stack."""
    if not endpoint:
        return None
    up = read(discovery_path(state_dir))
    if up is None or up.endpoint.rstrip("/") != endpoint.rstrip("/") or not process_exists(up.pid):
        return None
    return up


READY_LINE: Final = "Ctrl-C stops the emulator."
"""The last line `sagepipe local up` prints once its stack is provisioned and its discovery file written."""


@dataclass
class UpProcess:
    """A `sagepipe local up` this process started (scripts and tests): its process, what it announced, and what
    it printed so far."""

    process: subprocess.Popen[str]
    up: LocalUp
    output: list[str]

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (local up withdraws its discovery file and stops), waited for at most `timeout` seconds."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=timeout)


def spawn(
    command: list[str], *, state_dir: Path, cwd: Path, env: Mapping[str, str], timeout: float = 120.0
) -> UpProcess:
    """Start `command` (a `sagepipe local up`) and return once it announced itself in `state_dir`: its output is
    read line by line until READY_LINE, the process's exit, or `timeout` seconds, whichever comes first."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
    )
    output: list[str] = []
    lines: queue.Queue[str | None] = queue.Queue()
    stream = process.stdout
    if stream is None:  # stdout=PIPE always gives one; this only tells the type checker
        raise RuntimeError("no output stream from `sagepipe local up`")

    def pump() -> None:
        # Drains the output for the process's whole life, so that a full pipe never blocks it.
        for line in stream:
            output.append(line.rstrip("\n"))
            lines.put(output[-1])
        lines.put(None)

    threading.Thread(target=pump, name="local-up-output", daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line == READY_LINE:
            break
        if line is None:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
            shown = "\n".join(output[-20:])
            raise RuntimeError(f"`sagepipe local up` did not get ready within {timeout:.0f} s:\n{shown}")
    up = read(discovery_path(state_dir))
    if up is None or up.pid != process.pid:
        process.terminate()
        process.wait(timeout=30)
        raise RuntimeError(f"`sagepipe local up` said it was ready but {discovery_path(state_dir)} does not name it")
    return UpProcess(process, up, output)

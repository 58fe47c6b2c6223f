"""The discovery file of `sagepipe local up` (sagepipe.local.session): written, found live, ignored when stale.

A live `local up` is a process that runs and an endpoint that answers DescribeStacks for its stack: here, the unit
tests' moto server with a stack of that name. A stale file names a process that is gone, or an endpoint where
nothing answers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sagepipe.local import session
from sagepipe.local.core.emulator import endpoint_client
from sagepipe.template import PROJECT_ROOT


@pytest.fixture
def stack_in_moto(moto_endpoint: str) -> str:
    """A stack of a name of its own in the unit tests' moto server (its backends are shared: never reset)."""
    name = f"sagepipe-session-{uuid.uuid4().hex[:8]}"
    endpoint_client(moto_endpoint, "cloudformation").create_stack(
        StackName=name, TemplateBody=json.dumps({"Resources": {}, "Outputs": {}})
    )
    return name


def announce(state_dir: Path, **fields: object) -> Path:
    """A discovery file as `local up` writes it, with some fields replaced."""
    session_dir = state_dir / "session"
    session_dir.mkdir(parents=True, exist_ok=True)
    path = session_dir / "endpoint.json"
    content = {
        "endpoint": "http://localhost:1",
        "pid": os.getpid(),
        "stack": "sagepipe-local",
        "repository": str(PROJECT_ROOT),
        "session_dir": str(session_dir),
        "started_at": "2026-12-01T00:00:00Z",
    } | fields
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def gone_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(finished.stdout)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_what_local_up_writes_is_found_live_and_withdrawn(
    tmp_path: Path, moto_endpoint: str, stack_in_moto: str
) -> None:
    """Given this process announced an endpoint that answers for its stack, then discover finds it live (with the
    session directory whose logs a client reads), and remove() withdraws the file."""
    session_dir = tmp_path / "state" / "session"
    session_dir.mkdir(parents=True)
    session.write(session_dir, endpoint=moto_endpoint, stack=stack_in_moto, repository=PROJECT_ROOT)

    found = session.discover(tmp_path / "state", PROJECT_ROOT)

    assert found.ignored is None
    assert found.live is not None
    assert (found.live.endpoint, found.live.pid, found.live.stack) == (moto_endpoint, os.getpid(), stack_in_moto)
    assert found.live.emulator.state_dir == session_dir.resolve()
    session.remove(session_dir)
    assert not (session_dir / "endpoint.json").exists()


def test_no_file_means_no_local_up(tmp_path: Path) -> None:
    assert session.discover(tmp_path, PROJECT_ROOT) == session.Discovery(None)


def test_a_file_whose_process_is_gone_is_ignored_as_stale(
    tmp_path: Path, moto_endpoint: str, stack_in_moto: str
) -> None:
    """Given a file naming an answering endpoint but a process that has exited (a killed `local up`), then it is
    ignored, and the reason names the process."""
    pid = gone_pid()
    announce(tmp_path, endpoint=moto_endpoint, stack=stack_in_moto, pid=pid)

    found = session.discover(tmp_path, PROJECT_ROOT)

    assert found.live is None
    assert found.ignored is not None
    assert f"names process {pid}, which is gone" in found.ignored


def test_a_file_whose_endpoint_does_not_answer_is_ignored_as_stale(tmp_path: Path) -> None:
    """Given a file naming a running process (this one) but an endpoint where nothing listens, then it is ignored
    (within the probe's bounded timeouts), and the reason names the endpoint."""
    endpoint = f"http://localhost:{closed_port()}"
    announce(tmp_path, endpoint=endpoint)

    found = session.discover(tmp_path, PROJECT_ROOT)

    assert found.live is None
    assert (
        found.ignored
        == f"{tmp_path / 'session' / 'endpoint.json'} names {endpoint}, where stack sagepipe-local does not answer"
    )


def test_an_endpoint_that_does_not_know_the_stack_is_not_the_announced_local_up(
    tmp_path: Path, moto_endpoint: str
) -> None:
    announce(tmp_path, endpoint=moto_endpoint, stack="no-such-stack-here")

    found = session.discover(tmp_path, PROJECT_ROOT)

    assert found.live is None
    assert found.ignored is not None
    assert "does not answer" in found.ignored


def test_an_unreadable_file_is_ignored(tmp_path: Path) -> None:
    path = announce(tmp_path)
    path.write_text("{not json", encoding="utf-8")

    found = session.discover(tmp_path, PROJECT_ROOT)

    assert found == session.Discovery(None, f"{path} cannot be read")


def test_a_live_local_up_of_another_project_is_a_conflict_not_a_stale_file(
    tmp_path: Path, moto_endpoint: str, stack_in_moto: str
) -> None:
    """Given a live `local up` that serves another repository from this state directory, then discover refuses:
    starting an emulator of one's own there would clear the other's session."""
    announce(tmp_path, endpoint=moto_endpoint, stack=stack_in_moto, repository="/elsewhere/project")

    with pytest.raises(session.SessionConflict, match="serves /elsewhere/project"):
        session.discover(tmp_path, PROJECT_ROOT)


def test_remove_leaves_another_process_s_file_alone(tmp_path: Path) -> None:
    """Given a file another `local up` wrote since (another pid), then this process's remove() keeps it."""
    path = announce(tmp_path, pid=os.getpid() + 1)

    session.remove(path.parent)

    assert path.exists()


def test_sagepipe_runs_finds_the_stack_of_the_local_up_its_endpoint_names(tmp_path: Path) -> None:
    """Given a discovery file, then for_endpoint answers its stack for its endpoint (with or without a trailing
    slash) while its process runs, and nothing for another endpoint, no endpoint, or a process that is gone."""
    announce(tmp_path, endpoint="http://localhost:4566", stack="sagepipe-local")

    assert session.for_endpoint(tmp_path, "http://localhost:4566/") is not None
    assert session.for_endpoint(tmp_path, "http://localhost:4567") is None
    assert session.for_endpoint(tmp_path, None) is None
    announce(tmp_path, endpoint="http://localhost:4566", pid=gone_pid())
    assert session.for_endpoint(tmp_path, "http://localhost:4566") is None

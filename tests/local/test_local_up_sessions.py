"""Runs accumulate in a running `sagepipe local up`: `local run` and `local replay` drive it as clients.

Everything runs as subprocesses (the console scripts next to this interpreter), in a temporary working directory
whose `.sagepipe/` is the state directory every command uses by default: `local up` announces itself there
(`.sagepipe/session/endpoint.json`), the other commands find it, and `sagepipe runs` reads the stack's records
through the endpoint it prints.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sagepipe.local import session
from sagepipe.local.core.emulator import client_environment
from sagepipe.template import PROJECT_ROOT

pytestmark = pytest.mark.e2e

CLI_TIMEOUT_SECONDS = 420.0
READY_TIMEOUT_SECONDS = 120.0


def clean_environment() -> dict[str, str]:
    """This process's environment without anything that points at an emulator or a git directory."""
    return {name: value for name, value in os.environ.items() if not name.startswith(("MOTO_", "AWS_", "GIT_"))} | {
        "PYTHONIOENCODING": "utf-8"
    }


def sagepipe() -> str:
    script = Path(sys.executable).with_name("sagepipe")
    assert script.is_file(), f"the sagepipe console script is not installed next to {sys.executable}"
    return str(script)


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return f"exit {self.returncode}\n--- stdout:\n{self.stdout}\n--- stderr:\n{self.stderr}"

    def json(self) -> dict[str, object]:
        try:
            parsed = json.loads(self.stdout)
        except json.JSONDecodeError as error:
            raise AssertionError(f"stdout is not JSON ({error}):\n{self.explain()}") from error
        assert isinstance(parsed, dict), self.explain()
        return parsed


def run(work: Path, *arguments: str, environment: dict[str, str] | None = None) -> Completed:
    completed = subprocess.run(
        [sagepipe(), *arguments],
        cwd=work,
        env=environment or clean_environment(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    return Completed(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture
def local_up(tmp_path: Path) -> Iterator[session.UpProcess]:
    """`sagepipe local up --port 0` in tmp_path, ready (its discovery file written); stopped with SIGTERM after."""
    up = session.spawn(
        [sagepipe(), "local", "up", "--port", "0"],
        state_dir=tmp_path / ".sagepipe",
        cwd=tmp_path,
        env=clean_environment(),
        timeout=READY_TIMEOUT_SECONDS,
    )
    try:
        yield up
    finally:
        up.stop()


def test_a_local_run_and_a_replay_against_one_local_up_are_both_listed_by_sagepipe_runs(
    tmp_path: Path, local_up: session.UpProcess
) -> None:
    """Given a running `sagepipe local up`, when `local run` and then `local replay events/s3-object-created.json`
    run in the same directory, then both say they use it, the first run trains and the second (the same commit and
    bytes) ends CACHED, and `sagepipe runs list` against its endpoint (no --stack: the discovery file names the
    stack) lists both; when `local up` stops, it withdraws its discovery file."""
    discovery = tmp_path / ".sagepipe" / "session" / "endpoint.json"
    assert discovery.is_file(), "\n".join(local_up.output)

    first = run(tmp_path, "local", "run", "--json")
    second = run(tmp_path, "local", "replay", "--json", str(PROJECT_ROOT / "events" / "s3-object-created.json"))

    for completed in (first, second):
        assert completed.returncode == 0, completed.explain()
        assert f"the running `sagepipe local up` (pid {local_up.up.pid})" in completed.stderr, completed.explain()
    first_run, second_run = str(first.json()["run_id"]), str(second.json()["run_id"])
    assert first_run != second_run
    assert "the stack already has a commit: nothing seeded" in second.stderr, "the replay found the first run's push"

    listed = run(
        tmp_path, "runs", "list", "--json", environment=clean_environment() | client_environment(local_up.up.endpoint)
    )
    assert listed.returncode == 0, listed.explain()
    runs = {str(item["run_id"]): item for item in listed.json()["runs"]}  # type: ignore[attr-defined]
    assert {first_run, second_run} <= set(runs), f"listed {sorted(runs)}"
    # The replay's object holds the same bytes as the run's upload, of the same commit: the training cache's key
    # matches, so the second run ends CACHED from the first instead of training again.
    assert runs[first_run]["status"] == "SUCCEEDED"
    assert runs[second_run]["status"] == "CACHED"

    assert local_up.stop() == 0, "\n".join(local_up.output)
    assert not discovery.exists(), "a stopped local up withdraws its discovery file"

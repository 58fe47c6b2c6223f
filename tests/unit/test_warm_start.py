"""The warm start of a local training job's entry point (sagepipe.local.warm_start): a job forked from a
server that has imported the toolkit's dependencies behaves as the same job started cold, as a fresh `train`.

Each test runs the toolkit's real `train` console script (this venv's) both ways, or drives the server directly.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sagepipe.local import process
from sagepipe.local.sagemaker.training import TrainingResult, container_environment, run_training
from sagepipe.local.warm_start import WarmProcess, WarmStarts, script_interpreter, startup_environment
from tests.unit.test_local_training import (
    DUMP_INVOCATION,
    EXIT_3,
    IGNORE_SIGTERM,
    STOP_DEADLINE_SECONDS,
    archive_file,
    cancel_once_logged,
    code_dir_with,
    log_messages,
    make_request,
    write_breast_cancer_csv,
)

EXIT_SECONDS = 60.0

LEAVE_A_CHILD_RUNNING = """
import os, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(os.path.join(os.environ["SM_MODEL_DIR"], "child-pid"), "w") as handle:
    handle.write(str(child.pid))
"""

PRELOAD_PROBE = """#!{python}
import json, sys
FOUND_AT_START = {{name: name in sys.modules for name in ("botocore", "sagemaker_training")}}
import botocore.session
if __name__ == "__main__":
    print(json.dumps({{"found": FOUND_AT_START, "argv": sys.argv[1:], "cwd": __import__("os").getcwd()}}), flush=True)
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""
"""A console script that says which modules were already imported when it started, then exits as told."""

PROGRAM_PROBE = """
import json, os, sys
FOUND_AT_START = "sqlite3" in sys.modules
import sqlite3
import numpy
if __name__ == "__main__":
    record = {
        "found_at_start": FOUND_AT_START,
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "path": sys.path,
        "executable": sys.executable,
        "env": dict(os.environ),
        "draw": float(numpy.random.random()),
    }
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "invocation.json"), "w") as handle:
        json.dump(record, handle)
"""
"""A program that records what it sees, and whether what it imports (sqlite3) was imported before it started."""

LAUNCHES = """#!{python}
import json, os, select, signal, subprocess, sys
if __name__ == "__main__":
    script = subprocess.run([sys.executable, "--", "program.py", "x"], capture_output=True, text=True, timeout=60)
    option = subprocess.run(
        [sys.executable, "-c", "import sys; print(sys.argv[1:])", "y"], capture_output=True, text=True, timeout=60
    )
    ended = {{}}
    for how in (signal.SIGTERM, signal.SIGKILL):
        launcher = subprocess.Popen([sys.executable, "--", "program.py", "sleep"], stdout=subprocess.PIPE, text=True)
        program = json.loads(launcher.stdout.readline())["pid"]
        watch = os.pidfd_open(program)
        launcher.send_signal(how)
        status = launcher.wait(timeout=60)
        poller = select.poll()
        poller.register(watch, select.POLLIN)
        ended[how.name] = {{"launcher": status, "program_ended": bool(poller.poll(60_000))}}
    print(json.dumps({{
        "executable": sys.executable,
        "script": [script.returncode, script.stdout],
        "option": [option.returncode, option.stdout],
        "ended": ended,
    }}))
"""
"""An entry point that starts its sys.executable as the toolkit does (a script), with an option, and then stops a
started script with SIGTERM and with SIGKILL; it reports what it saw."""

LAUNCHED_PROGRAM = """
import json, os, sys, time
FOUND_AT_START = "sqlite3" in sys.modules
import sqlite3
if __name__ == "__main__":
    if sys.argv[1:] == ["sleep"]:
        print(json.dumps({"pid": os.getpid()}), flush=True)
        time.sleep(60)
    print(json.dumps([FOUND_AT_START, sys.argv]))
    sys.exit(4)
"""

SLEEPER = """#!{python}
import time
if __name__ == "__main__":
    print("sleeping", flush=True)
    time.sleep(60)
"""


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train = tmp_path_factory.mktemp("channel") / "train"
    write_breast_cancer_csv(train / "train.csv")
    return train


@pytest.fixture(scope="module")
def warm_starts(tmp_path_factory: pytest.TempPathFactory, channel: Path) -> Iterator[WarmStarts]:
    """Warm starts whose server for the pipeline image's jobs is ready (a job that finds none ready starts cold)."""
    root = tmp_path_factory.mktemp("prepare")
    request = make_request(root, code_dir_with(root, {"probe.py": PROGRAM_PROBE}), "probe.py", channel)
    starts = WarmStarts()
    program = request.code_dir / "probe.py"
    assert starts.prepare(request.entry_point, container_environment(request, root), program), "no server started"
    yield starts
    starts.close()


def started_warm(result: TrainingResult) -> bool:
    return any(", warm: forked from a process" in message for message in log_messages(result))


def run_both_ways(
    root: Path, warm_starts: WarmStarts, files: dict[str, str], program: str, channel: Path, **changes: Any
) -> tuple[TrainingResult, TrainingResult]:
    """The same job, started cold and then warm, each in a directory of its own."""
    results = []
    for way, starts in (("cold", None), ("warm", warm_starts)):
        where = root / way
        request = make_request(where, code_dir_with(where, files), program, channel, warm_starts=starts, **changes)
        results.append(run_training(request))
    assert [started_warm(result) for result in results] == [False, True]
    return results[0], results[1]


def recorded_invocations(root: Path, cold: TrainingResult, warm: TrainingResult) -> list[dict[str, Any]]:
    """What each job's program wrote to invocation.json, with the job's own directory as "<job root>"."""
    seen = []
    for result, way in ((cold, "cold"), (warm, "warm")):
        assert (result.status, result.exit_code) == ("Completed", 0), result.failure_reason
        assert result.model_archive is not None
        text = archive_file(result.model_archive, "invocation.json").decode()
        seen.append(json.loads(text.replace(str(root / way), "<job root>")))
    return seen


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def console_script(directory: Path, template: str) -> Path:
    script = directory / "entry"
    script.write_text(template.format(python=sys.executable), encoding="utf-8")
    script.chmod(0o755)
    return script


# ---------------------------------------------------------------- through run_training


def test_a_warm_job_runs_the_program_as_a_cold_job_does(tmp_path: Path, warm_starts: WarmStarts, channel: Path) -> None:
    """Given a program that records its argv, environment, working directory and channel, when the same job runs
    cold and warm, then the program sees the same things (paths aside, each job having its own /opt/ml): the
    toolkit, imported by the job itself, found the job's SAGEMAKER_BASE_DIR both ways."""
    cold, warm = run_both_ways(
        tmp_path, warm_starts, {"dump.py": DUMP_INVOCATION}, "dump.py", channel, hyperparameters={"epochs": "2"}
    )

    seen = recorded_invocations(tmp_path, cold, warm)
    assert seen[0] == seen[1]
    assert seen[1]["env"]["SM_MODEL_DIR"] == "<job root>/job/opt/ml/model"


def test_a_warm_job_s_program_starts_warm_and_sees_what_a_cold_one_sees(
    tmp_path: Path, warm_starts: WarmStarts, channel: Path
) -> None:
    """Given a program that records its argv, working directory, sys.path, sys.executable and environment, when the
    same job runs cold and warm, then the warm program found its imports done already (it was forked from the
    server the toolkit was), and saw everything else as the cold one did, paths of each job's own aside."""
    cold, warm = run_both_ways(tmp_path, warm_starts, {"probe.py": PROGRAM_PROBE}, "probe.py", channel)

    seen = recorded_invocations(tmp_path, cold, warm)
    assert [record.pop("found_at_start") for record in seen] == [False, True]
    assert seen[0].pop("draw") != seen[1].pop("draw")
    assert seen[0] == seen[1]
    assert seen[1]["path"][0] == "<job root>/job/opt/ml/code"


def test_warm_programs_draw_different_random_numbers(tmp_path: Path, warm_starts: WarmStarts, channel: Path) -> None:
    """Given two warm jobs of a program that draws from numpy's global random state without seeding it, then they
    draw different numbers, as fresh interpreters do: the state their server seeded once is seeded again."""
    draws = []
    for job in ("one", "two"):
        where = tmp_path / job
        request = make_request(
            where, code_dir_with(where, {"probe.py": PROGRAM_PROBE}), "probe.py", channel, warm_starts=warm_starts
        )
        result = run_training(request)
        assert result.model_archive is not None, result.failure_reason
        record = json.loads(archive_file(result.model_archive, "invocation.json"))
        assert record["found_at_start"], "the program did not start warm"
        draws.append(record["draw"])

    assert draws[0] != draws[1]


def test_a_warm_job_that_fails_is_reported_as_a_cold_one_is(
    tmp_path: Path, warm_starts: WarmStarts, channel: Path
) -> None:
    """Given a program that exits 3, when the job runs cold and warm, then both are Failed, the toolkit exits 1
    both ways, and the FailureReason is the same."""
    cold, warm = run_both_ways(tmp_path, warm_starts, {"exit3.py": EXIT_3}, "exit3.py", channel)

    assert (warm.status, warm.exit_code) == (cold.status, cold.exit_code) == ("Failed", 1)
    # The toolkit names the command it ran: the warm program's `python` is its server's launcher.
    assert cold.failure_reason is not None
    assert warm.failure_reason is not None
    assert re.search(r'Command "\S+/bin/python -- exit3.py"$', warm.failure_reason)
    assert re.sub(r'Command "\S+ --', 'Command "<python> --', warm.failure_reason) == re.sub(
        r'Command "\S+ --', 'Command "<python> --', cold.failure_reason
    )


def test_a_warm_job_is_stopped_and_its_program_killed(tmp_path: Path, warm_starts: WarmStarts, channel: Path) -> None:
    """Given a warm job whose program ignores SIGTERM, when the job is stopped, then the toolkit ends on SIGTERM
    and the program goes with it (SIGKILL to the job's group), as with a cold job."""
    cancel = threading.Event()
    request = make_request(
        tmp_path,
        code_dir_with(tmp_path, {"stubborn.py": IGNORE_SIGTERM}),
        "stubborn.py",
        channel,
        cancel=cancel,
        stop_grace_seconds=0.5,
        warm_starts=warm_starts,
    )
    cancel_once_logged(request, "ignoring SIGTERM", cancel)

    result = run_training(request)

    assert started_warm(result)
    assert (result.status, result.secondary_status, result.exit_code) == ("Stopped", "Stopped", -signal.SIGTERM)
    assert result.model_archive is not None
    pid = int(archive_file(result.model_archive, "pid"))
    assert process.poll_until(lambda: gone(pid), timeout=STOP_DEADLINE_SECONDS), f"pid {pid} outlived its job"


def test_what_a_warm_job_leaves_running_ends_with_it(tmp_path: Path, warm_starts: WarmStarts, channel: Path) -> None:
    """Given a program that starts a child and exits, when its warm job completes, then the child is killed with
    the job's group, as a container's processes end with its main process."""
    request = make_request(
        tmp_path,
        code_dir_with(tmp_path, {"leave.py": LEAVE_A_CHILD_RUNNING}),
        "leave.py",
        channel,
        warm_starts=warm_starts,
    )

    result = run_training(request)

    assert started_warm(result)
    assert result.status == "Completed", result.failure_reason
    assert result.model_archive is not None
    pid = int(archive_file(result.model_archive, "child-pid"))
    assert process.poll_until(lambda: gone(pid), timeout=STOP_DEADLINE_SECONDS), f"pid {pid} outlived its job"


# ---------------------------------------------------------------- the server itself


def start(starts: WarmStarts, entry: Path, *args: str, cwd: Path, program: Path | None = None) -> WarmProcess:
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    assert starts.prepare(entry, env, program), "the server did not start"
    started = starts.start([str(entry), *args], cwd=cwd, env=env)
    assert started is not None, "no warm start for a Python console script"
    return started


def run_to_its_end(entry: Path, *args: str, cwd: Path, program: Path | None = None) -> tuple[int | None, bytes]:
    """Start `entry` warm from warm starts of its own, read its stdout to the end, and close them."""
    starts = WarmStarts()
    try:
        job = start(starts, entry, *args, cwd=cwd, program=program)
        assert job.stdout is not None
        output = job.stdout.read()
        return job.wait(timeout=EXIT_SECONDS), output
    finally:
        starts.close()


def test_the_entry_point_finds_its_dependencies_imported_but_not_the_toolkit(tmp_path: Path) -> None:
    """Given a console script that imports botocore, when it is started warm, then it finds botocore imported
    already (what its server preloaded) and runs with its own argv and working directory; it exits with its own
    status, and its output reaches the job's stdout."""
    status, output = run_to_its_end(console_script(tmp_path, PRELOAD_PROBE), "3", cwd=tmp_path)

    assert status == 3
    report = json.loads(output)
    assert report == {"found": {"botocore": True, "sagemaker_training": False}, "argv": ["3"], "cwd": str(tmp_path)}


def test_the_entry_point_s_python_runs_scripts_warm_and_stands_in_for_them(tmp_path: Path) -> None:
    """Given a warm entry point, whose sys.executable is its server's launcher;
    When it runs a script with it as the toolkit does (`python -- program.py x`), runs an option (`-c`), and stops
    a running script with SIGTERM, then with SIGKILL;
    Then the script ran forked (its imports done already) with its own argv and exit status; the option ran on the
    real interpreter; SIGTERM reached the script, which ended by it, as the launcher did; and a launcher killed
    with SIGKILL took its script with it."""
    (tmp_path / "program.py").write_text(LAUNCHED_PROGRAM, encoding="utf-8")
    entry = console_script(tmp_path, LAUNCHES)

    status, output = run_to_its_end(entry, cwd=tmp_path, program=tmp_path / "program.py")

    assert status == 0
    report = json.loads(output)
    assert Path(report["executable"]).name == "python"
    assert Path(report["executable"]).resolve() != Path(sys.executable).resolve()
    assert report["script"] == [4, json.dumps([True, ["program.py", "x"]]) + "\n"]
    assert report["option"] == [0, "['y']\n"]
    assert report["ended"] == {
        "SIGTERM": {"launcher": -signal.SIGTERM, "program_ended": True},
        "SIGKILL": {"launcher": -signal.SIGKILL, "program_ended": True},
    }


def test_a_cold_start_of_the_same_script_finds_nothing_imported(tmp_path: Path) -> None:
    """Given the same console script, when it is run as a fresh process, then nothing was imported before it: the
    warm start's preload is what the other test sees."""
    entry = console_script(tmp_path, PRELOAD_PROBE)

    completed = subprocess.run([str(entry)], capture_output=True, check=True, timeout=EXIT_SECONDS, cwd=tmp_path)

    assert json.loads(completed.stdout)["found"] == {"botocore": False, "sagemaker_training": False}


def test_closing_the_warm_starts_ends_the_jobs_they_run(tmp_path: Path) -> None:
    """Given a warm job that sleeps, when the runtime closes its warm starts, then the job is killed and reported
    ended by a signal."""
    entry = console_script(tmp_path, SLEEPER)
    starts = WarmStarts()
    job = start(starts, entry, cwd=tmp_path)
    assert job.stdout is not None
    assert job.stdout.readline() == b"sleeping\n"

    starts.close()

    assert job.wait(timeout=EXIT_SECONDS) == -signal.SIGKILL
    assert process.poll_until(lambda: gone(job.pid), timeout=STOP_DEADLINE_SECONDS)


@pytest.mark.parametrize(
    "first_line",
    ["#!/bin/sh\n", "#!/usr/bin/env python3\n", "import sys\n"],
    ids=["another interpreter's script", "an interpreter with arguments", "no interpreter line"],
)
def test_an_entry_point_that_is_not_a_plain_python_script_starts_cold(tmp_path: Path, first_line: str) -> None:
    """Given an entry point whose #! line does not name an interpreter plainly (or a Python one), then no warm
    start is offered: the job starts cold, as a fresh process."""
    entry = tmp_path / "entry"
    entry.write_text(first_line + "echo hello\n", encoding="utf-8")
    entry.chmod(0o755)
    starts = WarmStarts()
    try:
        started = starts.start([str(entry)], cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    finally:
        starts.close()

    assert started is None


def test_a_server_serves_only_jobs_with_its_start_up_environment() -> None:
    """Given two jobs whose environments differ only in what the interpreter reads at start-up, then they need
    two servers; variables read later do not matter."""
    base = {"PATH": "/usr/bin", "HOME": "/root", "SAGEMAKER_BASE_DIR": "/a"}

    assert startup_environment(base) == startup_environment({**base, "SAGEMAKER_BASE_DIR": "/b", "HOME": "/x"})
    assert startup_environment(base) != startup_environment({**base, "PYTHONUNBUFFERED": "1"})
    assert startup_environment(base) != startup_environment({**base, "LANG": "C.UTF-8"})
    # PYTHONPATH is applied to each job's sys.path when it is forked
    assert startup_environment(base) == startup_environment({**base, "PYTHONPATH": "/opt/ml/code"})


def test_the_toolkit_s_train_names_this_venv_s_interpreter() -> None:
    """Given the toolkit's `train` console script, the local image's entry point, then its #! line names this
    venv's interpreter: its jobs can start warm."""
    interpreter = script_interpreter(Path(sys.executable).parent / "train")

    assert interpreter is not None
    assert interpreter.resolve() == Path(sys.executable).resolve()


def test_the_first_job_starts_cold_while_its_server_starts(tmp_path: Path) -> None:
    """Given no server ready for an entry point, when a job asks for a warm start, then it gets none (it starts
    cold rather than wait), and once the server has started a job of the same entry point starts warm."""
    entry = console_script(tmp_path, PRELOAD_PROBE)
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    starts = WarmStarts()
    try:
        first = starts.start([str(entry)], cwd=tmp_path, env=env)
        ready = starts.prepare(entry, env)
        later = starts.start([str(entry)], cwd=tmp_path, env=env)
        assert later is not None
        assert later.wait(timeout=EXIT_SECONDS) == 0
    finally:
        starts.close()

    assert (first, ready) == (None, True)


def test_a_warm_job_runs_in_a_runtime_holding_more_than_1024_descriptors(tmp_path: Path) -> None:
    """Given a runtime holding descriptors numbered above 1,023 (a trigger storm's sockets and threads), when a job
    starts warm, then it runs and its exit is seen: select() refuses such descriptors, so the waits must not use it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1500
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard limit on open files ({hard}) is below {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    entry = console_script(tmp_path, PRELOAD_PROBE)
    starts = WarmStarts()
    try:
        job = start(starts, entry, "0", cwd=tmp_path)
        status = job.wait(timeout=EXIT_SECONDS)
    finally:
        starts.close()
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    assert status == 0
    assert max(held) > 1024

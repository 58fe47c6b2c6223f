"""The warm `python` (sagepipe/local/warm_python.py, from sagepipe.local.warm_start.WarmStarts.python): what the
local build finds first on its PATH. `python -m <module> ...` and `python <script> ...` run forked from a server
that has imported the modules named, and must see what a fresh interpreter sees; every other form is exec'd with
the real interpreter, unchanged.

Each test runs the same command line with the warm `python` and with this venv's interpreter (cold), and compares.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagepipe.local.process import poll_until
from sagepipe.local.warm_start import WarmStarts, programs_imports

RUN_SECONDS = 60.0

MODULE_PROBE = """
import json, os, sys
FOUND_AT_START = "sqlite3" in sys.modules
import sqlite3
if __name__ == "__main__":
    print(json.dumps({
        "found_at_start": FOUND_AT_START,
        "argv": sys.argv,
        "path": sys.path,
        "name": __name__,
        "spec": __spec__.name if __spec__ else None,
        "cwd": os.getcwd(),
        "stdin": sys.stdin.read(),
    }))
    print("to stderr", file=sys.stderr)
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""
"""A module that reports what it sees, and whether what it imports (sqlite3) was imported before it started."""

EXECUTABLE_PROBE = "import sys; print(sys.executable)"

ENVIRONMENT = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "TZ": "UTC"}


@pytest.fixture(scope="module")
def warm_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The directory of a warm `python` (and `python3`) whose server has imported sqlite3."""
    starts = WarmStarts()
    try:
        directory = starts.python(Path(sys.executable), ENVIRONMENT, ["sqlite3"], ["python", "python3"])
        assert directory is not None, "the warm-start server did not start"
        yield directory
    finally:
        starts.close()


def run(
    python: Path | str, *arguments: str, cwd: Path, stdin: str = "", env: dict[str, str] = ENVIRONMENT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *arguments],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )


def both_ways(
    warm_python: Path, *arguments: str, cwd: Path, stdin: str = ""
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    return (
        run(sys.executable, *arguments, cwd=cwd, stdin=stdin),
        run(warm_python / "python", *arguments, cwd=cwd, stdin=stdin),
    )


@pytest.mark.parametrize("form", [["-m", "probe"], ["-mprobe"]], ids=["-m module", "-mmodule"])
def test_a_module_run_warm_sees_what_it_sees_cold(tmp_path: Path, warm_python: Path, form: list[str]) -> None:
    """Given a module in the working directory, when `python -m probe 3 x` runs warm and cold, then both see the
    same sys.argv (the module's file first), sys.path (the working directory first), __name__, working directory
    and standard input, write the same standard output and error, and exit with the same status; only the warm one
    found its imports done already."""
    (tmp_path / "probe.py").write_text(MODULE_PROBE, encoding="utf-8")

    cold, warm = both_ways(warm_python, *form, "3", "x", cwd=tmp_path, stdin="given on stdin")

    assert (warm.returncode, warm.stderr) == (cold.returncode, cold.stderr) == (3, "to stderr\n")
    cold_report, warm_report = json.loads(cold.stdout), json.loads(warm.stdout)
    assert (cold_report.pop("found_at_start"), warm_report.pop("found_at_start")) == (False, True)
    assert warm_report == cold_report
    assert cold_report["argv"] == [str(tmp_path / "probe.py"), "3", "x"]
    assert cold_report["path"][0] == str(tmp_path)
    assert (cold_report["name"], cold_report["spec"], cold_report["stdin"]) == ("__main__", "probe", "given on stdin")


def test_a_package_runs_its_main_warm_as_cold(tmp_path: Path, warm_python: Path) -> None:
    """Given a package with a __main__ module, when `python -m package` runs warm and cold, then both run its
    __main__ as __main__, with the same argv and path."""
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "package" / "__main__.py").write_text(MODULE_PROBE, encoding="utf-8")

    cold, warm = both_ways(warm_python, "-m", "package", cwd=tmp_path)

    assert warm.returncode == cold.returncode == 0
    cold_report, warm_report = json.loads(cold.stdout), json.loads(warm.stdout)
    assert {**warm_report, "found_at_start": None} == {**cold_report, "found_at_start": None}
    assert (cold_report["spec"], cold_report["argv"][0]) == (
        "package.__main__",
        str(tmp_path / "package" / "__main__.py"),
    )


@pytest.mark.parametrize("module", ["no_such_module", "json.no_such", "json"])
def test_a_module_python_m_cannot_run_fails_warm_as_cold(tmp_path: Path, warm_python: Path, module: str) -> None:
    """Given a module that does not exist, or a package without __main__, then warm and cold both fail with
    status 1 and the interpreter's one line (named after their own sys.executable)."""
    cold, warm = both_ways(warm_python, "-m", module, cwd=tmp_path)

    assert warm.returncode == cold.returncode == 1
    assert warm.stdout == cold.stdout == ""
    assert cold.stderr.startswith(f"{sys.executable}: No module named {module}")
    assert warm.stderr == cold.stderr.replace(sys.executable, str(warm_python / "python"), 1)


def test_a_warm_module_s_sys_executable_is_the_warm_python_it_was_started_by(tmp_path: Path, warm_python: Path) -> None:
    """Given the warm `python3`, when a module run with it starts `sys.executable -m ...` in turn, then that child
    starts warm too: sys.executable is the launcher each time."""
    (tmp_path / "outer.py").write_text(
        "import subprocess, sys\n"
        "print(sys.executable, flush=True)\n"
        "subprocess.run([sys.executable, '-m', 'inner'], check=True)\n",
        encoding="utf-8",
    )
    (tmp_path / "inner.py").write_text(
        "import sys\nprint(sys.executable, 'sqlite3' in sys.modules)\n", encoding="utf-8"
    )

    warm = run(warm_python / "python3", "-m", "outer", cwd=tmp_path)

    assert warm.returncode == 0, warm.stderr
    assert warm.stdout.splitlines() == [str(warm_python / "python3"), f"{warm_python / 'python3'} True"]


@pytest.mark.parametrize(
    ("arguments", "stdin"),
    [
        (["-c", EXECUTABLE_PROBE], ""),
        (["-u", "-m", "executable_probe"], ""),
        (["-"], EXECUTABLE_PROBE),
        ([], EXECUTABLE_PROBE),
        (["-m"], ""),
    ],
    ids=["-c", "another option first", "- (stdin)", "no arguments (stdin)", "-m without a module"],
)
def test_every_other_form_execs_the_real_interpreter(
    tmp_path: Path, warm_python: Path, arguments: list[str], stdin: str
) -> None:
    """Given a command line the server does not serve, when it runs with the warm `python`, then the real
    interpreter runs it, unchanged: the same output, error and status as cold, sys.executable the interpreter's."""
    (tmp_path / "executable_probe.py").write_text(EXECUTABLE_PROBE, encoding="utf-8")

    cold, warm = both_ways(warm_python, *arguments, cwd=tmp_path, stdin=stdin)

    assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    if cold.returncode == 0:
        assert warm.stdout == f"{sys.executable}\n"


def test_programs_imports_leave_out_every_program_s_own_modules(tmp_path: Path) -> None:
    """Given a program and its tests in a directory beside it, which import the program by name, then the modules
    to preload are the libraries they import, never the program (a file beside one of them)."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "train.py").write_text("import json\nfrom sqlite3 import connect\n", encoding="utf-8")
    (tmp_path / "tests" / "test_train.py").write_text("import pytest\nimport train\n", encoding="utf-8")

    found = programs_imports([tmp_path / "train.py", tmp_path / "tests" / "test_train.py"])

    assert found == ["json", "pytest", "sqlite3", "sqlite3.connect"]


def test_a_command_whose_start_up_variables_are_not_the_server_s_runs_cold(tmp_path: Path, warm_python: Path) -> None:
    """Given a warm `python` whose server started with TZ=UTC, when a module runs with another TZ (which the
    interpreter reads once, at start-up), then the real interpreter runs it: its sys.executable is the interpreter's,
    and it sees its own time zone."""
    (tmp_path / "zone.py").write_text("import sys, time\nprint(sys.executable, time.tzname[0])\n", encoding="utf-8")

    ran = subprocess.run(
        [str(warm_python / "python"), "-m", "zone"],
        cwd=tmp_path,
        env={**ENVIRONMENT, "TZ": "JST-9"},
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=True,
    )

    assert ran.stdout == f"{sys.executable} JST\n"


def test_a_launcher_gone_before_its_reply_leaves_the_server_serving(tmp_path: Path, warm_python: Path) -> None:
    """Given a launcher that sends its job and is gone before the server replies (killed as soon as its program
    printed something), then the server goes on serving: the next command still runs warm."""
    request = {"argv": ["-c", "pass"], "module": "this", "cwd": str(tmp_path), "env": ENVIRONMENT}
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as connection:
        connection.connect(str(warm_python.parent / "jobs.sock"))
        with Path(os.devnull).open("rb") as devnull:
            socket.send_fds(connection, [json.dumps(request).encode()], [devnull.fileno()] * 3)

    (tmp_path / "executable_probe.py").write_text(EXECUTABLE_PROBE, encoding="utf-8")
    warm = run(warm_python / "python", "-m", "executable_probe", cwd=tmp_path)

    assert (warm.returncode, warm.stdout) == (0, f"{warm_python / 'python'}\n")


SEED_PROBE = "import json, sys\nprint(json.dumps([sys.executable, 'sqlite3' in sys.modules, hash('sagepipe')]))\n"
"""Whether it runs warm (its sys.executable, and what its server imported), and its string hashing."""


def test_a_command_whose_start_up_variables_differ_runs_warm_from_a_sibling_server_once_it_is_ready(
    tmp_path: Path, warm_python: Path
) -> None:
    """Given a warm `python` whose server has no PYTHONHASHSEED, when a script runs with PYTHONHASHSEED=3 (as the
    container tests' trainings in fresh processes run, in every build), then the first run is cold and has the
    server start a sibling server with that seed; once the sibling listens, the same command runs forked from it:
    its sys.executable is the warm `python`, what the server imported is there, and its strings hash as a fresh
    interpreter's with that seed do."""
    # Given
    (tmp_path / "seed_probe.py").write_text(SEED_PROBE, encoding="utf-8")
    environment = {**ENVIRONMENT, "PYTHONHASHSEED": "3"}
    fresh = run(sys.executable, "seed_probe.py", cwd=tmp_path, env=environment)

    def probe() -> list[object]:
        ran = run(warm_python / "python", "seed_probe.py", cwd=tmp_path, env=environment)
        assert ran.returncode == 0, ran.stderr
        result: list[object] = json.loads(ran.stdout)
        return result

    # When: the first run
    first = probe()

    # Then it ran cold, as a fresh interpreter
    assert first == json.loads(fresh.stdout)
    # When the sibling it asked for serves (each try until then runs cold), and the command runs again
    assert poll_until(lambda: probe()[0] == str(warm_python / "python"), timeout=RUN_SECONDS), "no sibling served"
    second = probe()
    # Then it ran warm, from the sibling, with the seed's hashing
    executable, preloaded, hashed = second
    assert (executable, preloaded) == (str(warm_python / "python"), True)
    assert hashed == json.loads(fresh.stdout)[2]

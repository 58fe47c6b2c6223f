"""A warm start for the image's entry point: a training job's process forked from an interpreter that has already
imported what the toolkit's `train` imports, instead of a fresh interpreter importing it all again.

Importing the sagemaker-training toolkit takes about a second here (boto3 with s3transfer and awscrt, paramiko for
its MPI runner), which is most of what a local job costs beyond its program. On SageMaker that cost is the
container's start-up, paid on an instance of its own; locally it is paid on the machine that also runs the
emulator, for every job. Lambda's SnapStart and Python's own forkserver answer the same problem the same way.

The program the toolkit then runs (SAGEMAKER_PROGRAM, started as `<sys.executable> -- <program> <arguments>`) starts
warm too: the job's sys.executable is the server's launcher (warm_python.py), which has the server fork the program
from the same interpreter, which has also imported what the program imports at its top level (scikit-learn here:
about 1.3 s of every job's start). The launcher stands in for the program towards the toolkit: same streams,
signals passed on, same exit.

What stays exactly as in a fresh start: each process runs its own script as __main__ (the toolkit's console
script, the program), in a session of its own, with its environment, working directory, argv, sys.path (PYTHONPATH
applied as the interpreter applies it) and standard streams; numpy's global random state is seeded afresh; the
toolkit's modules and the program's own are imported by the job (the toolkit's import reads SAGEMAKER_BASE_DIR).
What the interpreter fixes at start-up (the other PYTHON* variables, the locale) is the server's, so a server
serves only jobs whose start-up environment equals the one it started with; another one starts for another. When a
warm start cannot be had (the entry point is not a Python script, the server will not start), the job starts
cold, as before. tests/unit/test_warm_start.py runs jobs both ways and compares what they see.

The local build (sagepipe.local.codebuild) uses the same servers another way: `WarmStarts.python` gives it a
directory holding a `python` launcher, first on the build's PATH, whose server has imported the modules the build's
Python uses (the build reads them from its buildspec and source: codebuild/warm.py). Its `python -m pytest`,
`python -m pip` and the scripts those start with sys.executable (the launcher, for them) are forked; any other form
runs on the real interpreter. tests/unit/test_warm_python.py runs each form both ways and compares.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from sagepipe.local.warm_python import STARTUP_VARIABLES, read_at_start
from sagepipe.local.warm_start_server import program_imports

__all__ = [
    "STARTUP_VARIABLES",
    "WarmProcess",
    "WarmStarts",
    "programs_imports",
    "script_interpreter",
    "startup_environment",
]

SERVER_SCRIPT: Final = Path(__file__).with_name("warm_start_server.py")
LAUNCHER_SCRIPT: Final = Path(__file__).with_name("warm_python.py")
SERVER_START_SECONDS: Final = 60.0
"""Bound on the server's start: an interpreter and the toolkit's dependencies, imported twice."""
FORK_REPLY_SECONDS: Final = 10.0
CLOSE_SECONDS: Final = 10.0
StartupEnvironment = tuple[tuple[str, str], ...]


def startup_environment(env: Mapping[str, str]) -> StartupEnvironment:
    """The part of a job's environment its interpreter reads at start-up: it must be the server's own
    (warm_python.STARTUP_VARIABLES, PYTHON* but PYTHONPATH; the launcher checks it for each command too)."""
    return tuple(sorted((name, value) for name, value in env.items() if read_at_start(name)))


def readable(stream: socket.socket | IO[bytes], timeout: float | None) -> bool:
    """Whether `stream` has something to read (or has reached its end) within `timeout` seconds (None: no limit).
    poll(), not select(): an emulator under a trigger storm holds more than select()'s 1,024 descriptors."""
    poller = select.poll()
    poller.register(stream.fileno(), select.POLLIN)
    return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))


def script_interpreter(entry_point: Path) -> Path | None:
    """The interpreter a console script names on its #! line, when it names one plainly (no arguments)."""
    try:
        with entry_point.open("rb") as script:
            first = script.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if len(words) != 1:
        return None
    interpreter = Path(words[0])
    return interpreter if interpreter.is_file() and os.access(interpreter, os.X_OK) else None


class WarmProcess:
    """A job process a warm-start server forked: what the supervisor needs of a subprocess.Popen."""

    def __init__(self, connection: socket.socket, pid: int, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self._connection = connection
        self.pid = pid
        self.stdout: IO[bytes] | None = stdout
        self.stderr: IO[bytes] | None = stderr
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def poll(self) -> int | None:
        """The exit status once the server has reported it (and has reaped the process and ended its group)."""
        return self.wait(timeout=0) if self.returncode is None else self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        with self._lock:
            if self.returncode is not None:
                return self.returncode
            if not readable(self._connection, timeout):
                if timeout is not None and timeout > 0:
                    raise subprocess.TimeoutExpired(str(self.pid), timeout)
                return None
            message = self._connection.recv(4096)
            # No message: the server died; its job died with it (killed, or orphaned and killed by the close).
            self.returncode = int(json.loads(message)["exit"]) if message else -9
            self._connection.close()
            return self.returncode


@dataclass
class _Server:
    process: subprocess.Popen[bytes]
    socket_path: Path
    scratch: tempfile.TemporaryDirectory[str]
    launcher: Path
    """The `python` its entry points see as sys.executable (warm_python.py, for this server)."""

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=CLOSE_SECONDS)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.scratch.cleanup()


@dataclass
class WarmStarts:
    """The runtime's warm-start servers, one per interpreter and start-up environment, kept across resets (they
    hold no state of a run); `close()` ends them and every job they run.

    A server starts in the background the first time a job could use it, and that job starts cold: a warm start
    is never slower than a cold one, and every later job of the same entry point starts warm."""

    _servers: dict[tuple[Path, StartupEnvironment, tuple[str, ...]], Future[_Server | None]] = field(
        default_factory=dict
    )
    """By interpreter, start-up environment and the modules named to preload (none for a training job's)."""
    _closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> WarmProcess | None:
        """Start argv[0], a console script, as a job forked from its warm server, with stdout and stderr piped;
        None when no warm start can be had now (the caller starts the job cold). The job's program
        (SAGEMAKER_PROGRAM, in `cwd`) is what a server started now preloads besides the entry point's imports."""
        server = self._server(Path(argv[0]), env, wait=False, program=program_of(cwd, env))
        return _fork(server, argv, cwd=cwd, env=env) if server is not None else None

    def prepare(self, entry_point: Path, env: Mapping[str, str], program: Path | None = None) -> bool:
        """Start the server jobs of this entry point and environment use, and wait until it is ready; True if
        it is (False: such jobs start cold)."""
        return self._server(entry_point, env, wait=True, program=program) is not None

    def python(
        self, interpreter: Path, env: Mapping[str, str], modules: Sequence[str], names: Sequence[str]
    ) -> Path | None:
        """A directory holding a `python` (also under each of `names`) that runs scripts and `-m` modules forked
        from a server of `interpreter` that has imported `modules`, and everything else with `interpreter`
        itself; the programs it runs see it as their sys.executable. Waits until the server is ready (a bounded
        wait); None when none can be had (the caller runs `interpreter` cold)."""
        server = self._server(None, env, wait=True, program=None, interpreter=interpreter, modules=tuple(modules))
        if server is None:
            return None
        for name in names:
            alias = server.launcher.with_name(name)
            with contextlib.suppress(FileExistsError):  # made by an earlier build, or one starting beside this one
                alias.symlink_to(server.launcher.name)
        return server.launcher.parent

    def _server(
        self,
        entry_point: Path | None,
        env: Mapping[str, str],
        *,
        wait: bool,
        program: Path | None,
        interpreter: Path | None = None,
        modules: tuple[str, ...] = (),
    ) -> _Server | None:
        if entry_point is not None:
            interpreter = script_interpreter(entry_point)
        if interpreter is None:
            return None
        startup = startup_environment(env)
        key = (interpreter, startup, modules)
        with self._lock:
            if self._closed:
                return None
            starting = self._servers.get(key)
            if starting is None:
                starting = self._servers[key] = Future()
                threading.Thread(
                    target=_start_into,
                    args=(starting, interpreter, entry_point, startup, program),
                    kwargs={"modules": modules},
                    name="warm-start-server",
                    daemon=True,
                ).start()
        if not wait and not starting.done():
            return None
        return starting.result(timeout=SERVER_START_SECONDS + CLOSE_SECONDS)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            starting = list(self._servers.values())
            self._servers.clear()
        for future in starting:
            # Bounded: a server's start gives up after SERVER_START_SECONDS.
            server = future.result(timeout=SERVER_START_SECONDS + CLOSE_SECONDS)
            if server is not None:
                server.close()


def program_of(cwd: Path, env: Mapping[str, str]) -> Path | None:
    """The job's program, SAGEMAKER_PROGRAM in its working directory (the image's /opt/ml/code), if it is a file."""
    name = env.get("SAGEMAKER_PROGRAM")
    program = cwd / name if name else None
    return program if program is not None and program.is_file() else None


def programs_imports(programs: Sequence[Path]) -> list[str]:
    """The modules the programs import at their top level (warm_start_server.program_imports, read, never run),
    without any program's own modules: a file or package beside any of them is the job's code, not a library."""
    own = {path.stem for program in programs if program.parent.is_dir() for path in program.parent.iterdir()}
    found = [name for program in programs for name in program_imports(str(program))]
    return sorted({name for name in found if name.split(".")[0] not in own})


def _start_into(
    starting: Future[_Server | None],
    interpreter: Path,
    entry_point: Path | None,
    startup: StartupEnvironment,
    program: Path | None,
    *,
    modules: tuple[str, ...],
) -> None:
    try:
        starting.set_result(_start_server(interpreter, entry_point, startup, program, modules))
    except Exception:  # the start failed: jobs start cold
        starting.set_result(None)


def _start_server(
    interpreter: Path,
    entry_point: Path | None,
    startup: StartupEnvironment,
    program: Path | None,
    modules: tuple[str, ...] = (),
) -> _Server | None:
    scratch = tempfile.TemporaryDirectory(prefix="sagepipe-warm-start-")
    socket_path = Path(scratch.name) / "jobs.sock"
    home = Path(scratch.name) / "home"
    home.mkdir()
    # A training job's program keeps the server's interpreter as its sys.executable; a build's programs (no entry
    # point) get the launcher, so that what they start with sys.executable starts warm too.
    launcher = _write_launcher(
        Path(scratch.name) / "bin" / "python", interpreter, socket_path, startup, own_executable=entry_point is None
    )
    process = subprocess.Popen(
        [
            str(interpreter),
            str(SERVER_SCRIPT),
            str(entry_point) if entry_point else "",
            str(socket_path),
            *([str(program)] if program else []),
            *(f"--import={module}" for module in modules),
        ],
        cwd=scratch.name,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **dict(startup)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = _Server(process, socket_path, scratch, launcher)
    announced = process.stdout
    if announced is None or not readable(announced, SERVER_START_SECONDS) or announced.readline() != b"ready\n":
        server.close()
        return None
    return server


def _write_launcher(
    path: Path, interpreter: Path, socket_path: Path, startup: StartupEnvironment, *, own_executable: bool
) -> Path:
    """The server's `python`: a script of the interpreter's, in isolated mode without site (-IS: it needs neither),
    that runs warm_python.py for this server. No shell stands between (a shell would add PWD to the environment).
    With `own_executable`, the programs it runs see the path it was started by (python, python3...) as their
    sys.executable."""
    path.parent.mkdir()
    arguments = [str(socket_path), str(interpreter)]
    server_startup = json.dumps([list(pair) for pair in startup])
    executable = "__import__('os').path.abspath(sys.argv[0])" if own_executable else "''"
    path.write_text(
        f"#!{interpreter} -IS\n"
        "import runpy, sys\n"
        f"sys.argv[1:1] = [*{arguments!r}, {executable}, {server_startup!r}]\n"
        f"runpy.run_path({str(LAUNCHER_SCRIPT)!r}, run_name='__main__')\n",
        encoding="utf-8",
    )
    path.chmod(0o755)
    return path


def _fork(server: _Server, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> WarmProcess | None:
    request = json.dumps(
        {"argv": list(argv), "cwd": str(cwd), "env": dict(env), "executable": str(server.launcher)}
    ).encode()
    stdout_read, stdout_write = os.pipe()
    stderr_read, stderr_write = os.pipe()
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        with Path(os.devnull).open("rb") as devnull:
            connection.connect(str(server.socket_path))
            socket.send_fds(connection, [request], [devnull.fileno(), stdout_write, stderr_write])
        reply = connection.recv(4096) if readable(connection, FORK_REPLY_SECONDS) else b""
    except OSError:
        reply = b""
    finally:
        os.close(stdout_write)
        os.close(stderr_write)
    if not reply:
        connection.close()
        os.close(stdout_read)
        os.close(stderr_read)
        return None
    stdout, stderr = os.fdopen(stdout_read, "rb"), os.fdopen(stderr_read, "rb")
    return WarmProcess(connection, int(json.loads(reply)["pid"]), stdout, stderr)

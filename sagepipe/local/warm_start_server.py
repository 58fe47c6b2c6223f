"""The warm start's server: one interpreter that has imported what the image's entry point imports, forking a
session of its own for each job that then runs the entry point's own script.

Run as a script: `<the entry point's interpreter> warm_start_server.py <entry point> <socket> [<program> ...]
[--import=<module> ...]`, with the standard library only, so that a job's process holds in sys.modules what a fresh
`train` would, plus the entry point's dependencies already loaded, the modules the programs (SAGEMAKER_PROGRAM)
import at their top level, and the modules named (the local build's: sagepipe.local.warm_start, which imports this
file for program_imports, finds them). The entry point may be empty: the local build's server has none. The
toolkit's own modules are left out: sagemaker_training.environment reads SAGEMAKER_BASE_DIR when it is imported
(its module-level `base_dir`), and every job has its own; so are the programs' own modules (files beside them),
which are the job's code.

The server forks three kinds of job, all from the same preloaded interpreter: the entry point (the toolkit's
`train`), a script its launcher (warm_python.py) is asked to run (`<python> -- <program> <arguments>`, as the toolkit
starts the program), and a module the launcher is asked to run as `python -m` does (`python -m pytest ...` in the
local build). The request's "executable" becomes the job's sys.executable.

The protocol (one SOCK_SEQPACKET connection per job, so each message arrives whole):
    request   a JSON object {"argv", "cwd", "env"}, with three file descriptors (SCM_RIGHTS): stdin, stdout, stderr;
              optionally "module" (run that module as __main__, as `python -m` does; argv[0] is then "-m"),
              "executable" (the job's sys.executable) and "watch" (a pid: when that process ends first,
              the job's group is killed, as the group of a process killed with its parent's would be)
    reply     {"pid": <the job's pid>} once the job leads a session of its own, so that its group can be signalled
    reply     {"exit": <status>} once it has exited, as subprocess reports it (negative: the signal that ended it);
              whatever it left running in its group is killed first, before its group id can be reused
    sibling   {"sibling": <socket path>, "startup": [[name, value], ...]} with no file descriptors and no reply: start,
              in the background, a server like this one (the same preloads) whose start-up variables are those,
              listening at that path in this server's directory (warm_python.py asks, for a command whose
              start-up variables are not this server's; at most SIBLINGS_LIMIT of them)
The server ends, with every job it runs and its siblings, when its standard input reaches end of file: the runtime
that started it has closed it, or has died.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import importlib
import importlib.util
import json
import os
import runpy
import select
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

REQUEST_LIMIT_BYTES = 1 << 20
"""A request's JSON: the job's environment is the largest part (SageMaker allows 100 variables of 512 characters)."""

SIBLINGS_LIMIT = 4
"""Sibling servers, at most: each holds what this one has imported. A fifth start-up environment runs cold."""
SIBLING_STOP_SECONDS = 10.0

NOT_PRELOADED = frozenset({"sagemaker_training", "gethostname", "__main__", "__mp_main__"})
"""Top-level modules a job imports itself: the toolkit (which reads SAGEMAKER_BASE_DIR on import) and its C
extension, and the script's own main modules."""


def entry_point_imports(entry_point: str) -> list[str]:
    """The modules the entry point's script imports, found by importing them in a throwaway child (its
    SAGEMAKER_BASE_DIR points nowhere real: the toolkit creates nothing when the variable is set)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            os.close(read_end)
            os.environ["SAGEMAKER_BASE_DIR"] = str(Path(os.environ.get("HOME", "/nonexistent")) / "probe")
            before = set(sys.modules)
            # Not "__main__": the script imports its entry function and stops short of calling it.
            runpy.run_path(entry_point, run_name="sagepipe_warm_start_probe")
            with os.fdopen(write_end, "w", encoding="utf-8") as out:
                json.dump(sorted(set(sys.modules) - before), out)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, encoding="utf-8") as found:
        text = found.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not text:
        return []
    names: list[str] = json.loads(text)
    return names


def program_imports(program: str) -> list[str]:
    """The modules the program imports at its top level (in `if`, `try` and `with` blocks too), read from its
    source, never run: the program is the user's, and running it here could train. Relative imports and the
    program's own modules (a file or package beside it) are left out."""
    try:
        tree = ast.parse(Path(program).read_bytes(), filename=program)
    except (OSError, SyntaxError, ValueError):
        return []
    beside = Path(program).parent
    if not beside.is_dir():
        return []
    names: list[str] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody"):
                pending += getattr(node, block, [])
            pending += [stmt for handler in getattr(node, "handlers", []) for stmt in handler.body]
    own = {path.stem for path in beside.iterdir() if path.suffix == ".py" or path.is_dir()}
    return [name for name in names if name.split(".")[0] not in own]


def preload(entry_point: str, programs: list[str], modules: list[str]) -> None:
    """Import the entry point's dependencies, the programs' and the modules named, here, once."""
    names = entry_point_imports(entry_point) if entry_point else []
    for program in programs:
        names += program_imports(program)
    for name in [*names, *modules]:
        if name.split(".")[0] in NOT_PRELOADED:
            continue
        # A module some import made under another name (six.moves' aliases) may not import on its own: the job
        # then imports it as it would have anyway.
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def exit_status(code: object) -> int:
    """The process status a fresh interpreter exits with for SystemExit(code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def run_job(request: dict[str, Any], streams: list[int], ready: int, inherited: list[int]) -> None:
    """In the forked child: become the job's process, run the entry point's script as __main__, and exit."""
    status = 1
    try:
        os.setsid()
        os.write(ready, b".")
        os.close(ready)
        for target, fd in enumerate(streams):
            os.dup2(fd, target)
        for fd in {*streams, *inherited} - {0, 1, 2}:
            with contextlib.suppress(OSError):
                os.close(fd)
        # A fresh process starts with default signal dispositions; SIGPIPE is ignored by every Python
        # interpreter at start-up, as it is here.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        module = request.get("module")
        # `python -m` puts the working directory in front; a script, its own directory (symbolic links resolved).
        # Neither with PYTHONSAFEPATH, which the server started with when the job has it (a start-up variable).
        front = [] if module and sys.flags.safe_path else [os.getcwd() if module else script_directory(sys.argv[0])]  # noqa: PTH109
        sys.path[:] = search_path(front, request["env"].get("PYTHONPATH", ""), sys.path[1:])
        if request.get("executable"):
            sys.executable = request["executable"]
        # A fresh interpreter has not chosen its temporary directory yet (TMPDIR is the job's).
        tempfile.tempdir = None
        # Imported in the server, numpy's global random state was seeded there, once: a fresh interpreter seeds
        # it from the operating system's entropy at import (random reseeds itself in a forked child).
        numpy_random = sys.modules.get("numpy.random")
        if numpy_random is not None:
            numpy_random.seed()
        try:
            if module:
                run_module_as_main(module)
            else:
                runpy.run_path(sys.argv[0], run_name="__main__")
            status = 0
        except SystemExit as ended:
            status = exit_status(ended.code)
        except BaseException:  # an uncaught exception ends a fresh interpreter the same way
            traceback.print_exc()
            status = 1
        # What interpreter shutdown does before the process ends: exit handlers (logging's flush among them),
        # then the standard streams.
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    finally:
        os._exit(status)


def run_module_as_main(module: str) -> None:
    """Run `module` as `python -m module` does: as __main__ (a package's __main__ submodule), with sys.argv[0] its
    file. A module that cannot be found ends the job as the interpreter does: `<executable>: No module named ...`,
    status 1 (an ImportError the module's own code raises is its own, with its traceback)."""
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except ImportError as error:
        if module_found(module):
            raise
        sys.exit(f"{sys.executable}: {error}")


def module_found(module: str) -> bool:
    """Whether `module` names something `python -m` can run: a module, or a package with a __main__."""
    try:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations is not None:
            spec = importlib.util.find_spec(f"{module}.__main__")
    except (ImportError, ValueError):
        return False
    return spec is not None


def script_directory(script: str) -> str:
    return str(Path(script).resolve().parent)


def search_path(front: list[str], pythonpath: str, installation: list[str]) -> list[str]:
    """sys.path as a fresh interpreter builds it: PYTHONPATH's entries made absolute and each kept once, as `site`
    leaves them (site.removeduppaths), then the installation's entries (this server's, which started without
    PYTHONPATH) that are not there already, as they are (`site` adds site-packages only once, and a .pth file's
    hook as it is); and, in front, what the interpreter adds after `site` has run, so even when PYTHONPATH names it
    too: the script's directory with symbolic links resolved, or with -m the working directory. The Python
    documentation, "The initialization of the sys.path module search path" and "-m";
    tests/unit/test_warm_start.py compares the result with a fresh interpreter's."""
    path: list[str] = []
    for entry in pythonpath.split(os.pathsep) if pythonpath else []:
        absolute = os.path.abspath(entry)  # noqa: PTH100 - what site.makepath does: absolute and normalised
        if absolute not in path:
            path.append(absolute)
    return [*front, *path, *(entry for entry in installation if entry not in path)]


class Siblings:
    """The sibling servers this one started, by socket path: the same script and preloads, other start-up variables."""

    def __init__(self, entry_point: str, arguments: list[str], directory: str) -> None:
        self.entry_point = entry_point
        self.arguments = arguments
        """This server's own command line after the socket path (entry point excepted): programs and --import=."""
        self.directory = directory
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, request: dict[str, Any]) -> None:
        """Start the sibling a request asks for, unless it is started already, or is not one this server may start."""
        path, startup = request.get("sibling"), request.get("startup")
        if (
            not isinstance(path, str)
            or str(Path(path).parent) != self.directory
            or path in self.processes
            or len(self.processes) >= SIBLINGS_LIMIT
            or not isinstance(startup, list)
            or not all(
                isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
                for pair in startup
            )
        ):
            return
        # This server's environment is PATH, HOME and its start-up variables (warm_start._start_server): the
        # sibling's is the same PATH and HOME with its own.
        environment = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ} | dict(startup)
        # This very script, with this server's arguments but the socket.
        self.processes[path] = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), self.entry_point, path, *self.arguments],
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def descriptors(self) -> list[int]:
        """The write ends of the siblings' standard input, which no job may hold open."""
        return [process.stdin.fileno() for process in self.processes.values() if process.stdin is not None]

    def stop(self) -> None:
        """End every sibling as this server ends: their standard input reaches end of file."""
        for process in self.processes.values():
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes.values():
            try:
                process.wait(timeout=SIBLING_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve(entry_point: str, socket_path: str, programs: list[str], modules: list[str]) -> None:
    """Accept job requests until standard input closes; fork each job, report its pid and its exit."""
    siblings = Siblings(
        entry_point, [*programs, *(f"--import={module}" for module in modules)], str(Path(socket_path).parent)
    )
    try:
        _serve(entry_point, socket_path, programs, modules, siblings)
    finally:
        siblings.stop()


def _serve(entry_point: str, socket_path: str, programs: list[str], modules: list[str], siblings: Siblings) -> None:
    preload(entry_point, programs, modules)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(socket_path)
    listener.listen()
    # Told on standard output: the runtime waits for this line before it sends a job.
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    jobs: dict[int, tuple[socket.socket, int]] = {}
    """pidfd -> (the job's connection, its pid)."""
    watches: dict[int, int] = {}
    """pidfd of a watched process -> the pid of the job that ends with it."""
    while True:
        # poll(), not select(): select() refuses descriptors above 1,023.
        poller = select.poll()
        for watched in (listener.fileno(), sys.stdin.fileno(), *jobs, *watches):
            poller.register(watched, select.POLLIN)
        ready = {fd for fd, _ in poller.poll()}
        if sys.stdin.fileno() in ready and not os.read(sys.stdin.fileno(), 1):
            for connection, pid in jobs.values():
                end_group_and_reap(pid)
                connection.close()
            listener.close()
            return
        if listener.fileno() in ready:
            connection, _ = listener.accept()
            start(connection, listener, jobs, watches, siblings)
        for pidfd in ready & watches.keys():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(watches.pop(pidfd), signal.SIGKILL)
            os.close(pidfd)
        for pidfd in ready & jobs.keys():
            connection, pid = jobs.pop(pidfd)
            status = end_group_and_reap(pid)
            os.close(pidfd)
            # Its pid may be reused now: nothing may signal it any more.
            for watch in [watch for watch, job in watches.items() if job == pid]:
                os.close(watch)
                del watches[watch]
            with contextlib.suppress(OSError):
                connection.send(json.dumps({"exit": status}).encode())
            connection.close()


def end_group_and_reap(pid: int) -> int:
    """Kill what is left in a job's group, then reap the job; its exit status as subprocess reports it.

    Before the reap the leader (exited, or not yet) still holds its group id, so no other group can have taken it:
    what the job left running goes with it, as a container's processes go when its main process ends."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def start(
    connection: socket.socket,
    listener: socket.socket,
    jobs: dict[int, tuple[socket.socket, int]],
    watches: dict[int, int],
    siblings: Siblings,
) -> None:
    """Fork one job from a request on `connection` (or start the sibling server it asks for)."""
    message, streams, _, _ = socket.recv_fds(connection, REQUEST_LIMIT_BYTES, 3)
    if not streams and message:
        with contextlib.suppress(ValueError):
            siblings.start(json.loads(message))
        connection.close()
        return
    if len(streams) != 3 or not message:
        connection.close()
        for fd in streams:
            os.close(fd)
        return
    request = json.loads(message)
    ready_read, ready_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        os.close(ready_read)
        inherited = [
            listener.detach(),
            connection.detach(),
            sys.stdin.fileno(),
            *jobs,
            *watches,
            *siblings.descriptors(),
        ]
        for other, _ in jobs.values():
            inherited.append(other.detach())
        run_job(request, streams, ready_write, inherited)
    os.close(ready_write)
    for fd in streams:
        os.close(fd)
    # The child leads its own session once it says so: only then can its group be signalled.
    os.read(ready_read, 1)
    os.close(ready_read)
    jobs[os.pidfd_open(pid)] = (connection, pid)
    if request.get("watch"):
        try:
            watches[os.pidfd_open(int(request["watch"]))] = pid
        except ProcessLookupError:  # it has ended already
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    # Its launcher may be gone already (killed as soon as the job printed something): the watch above ends the
    # job then, and the server goes on serving the others.
    with contextlib.suppress(OSError):
        connection.send(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    IMPORT = "--import="
    serve(
        sys.argv[1],
        sys.argv[2],
        [argument for argument in sys.argv[3:] if not argument.startswith(IMPORT)],
        [argument.removeprefix(IMPORT) for argument in sys.argv[3:] if argument.startswith(IMPORT)],
    )

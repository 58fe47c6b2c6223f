"""The `python` a warm-started process sees as sys.executable (or finds first on its PATH): it runs a script, or
a module with `-m`, forked from the warm-start server, and anything else with the real interpreter.

The toolkit starts the program as `<sys.executable> -- <program> <arguments>` (sagemaker_training.process,
ProcessRunner._create_command), and the local build's buildspec runs `python -m pip ...`, `python -m pytest ...`,
whose tests start `<sys.executable> train.py ...`. This launcher hands such a command to its server
(warm_start_server.py), which forks it from an interpreter that has imported what it imports; a container would
start a fresh interpreter, which imports it all again. Only the forms it serves exactly are forked: `[--] <script>
<arguments>` and `-m <module> <arguments>` (`-m<module>` too) as the first words; every other command line
(`-c ...`, `-`, no arguments, any other option first) is exec'd with the real interpreter, unchanged, as the
interpreter's own usage reads it ("python [option] ... [-c cmd | -m mod | file | -] [arg] ...").

For the process that started it, the launcher is the program: the program's standard streams are the launcher's
own (passed to the server), a signal the launcher gets is sent on to the program's group, and the launcher exits
as the program did (with its status, or killed by the same signal). If the launcher is killed (SIGKILL with its
container's group), the server kills the program's group. If the server cannot take the job, the program starts
cold: the real interpreter is exec'd with the same command line.

The server's bin/python (a script of the interpreter's, run in isolated mode without site: `-IS`) runs this file
with the arguments `<socket> <interpreter> <executable> <start-up> [python arguments]`. <executable> is the
launcher's own path when the program's sys.executable is to be the launcher (the local build: what its programs
start with sys.executable starts warm too), or empty (the program's sys.executable is the server's interpreter);
<start-up> is the server's start-up variables, as JSON: a command whose own differ runs forked from a sibling server
the server starts with those variables (the container tests' `PYTHONHASHSEED=1` and `=2` trainings, in every
build), or cold until that sibling is ready. It uses the standard library only: a start costs about 20 ms, not an
import of the program's dependencies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import socket
import sys

STARTUP_VARIABLES = frozenset(
    {"LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}
)
"""Besides PYTHON*, what a Python interpreter reads once, at start-up: the locale (hence its streams' encoding), and
the time zone (the time module calls tzset() when it is imported; the local build sets TZ); and what the native
libraries a server preloads read once, when they are loaded: the thread counts of OpenMP (scikit-learn's; the GNU
libgomp manual, "Environment Variables") and of numpy's BLAS (OpenBLAS's and MKL's). The container tests train in
fresh processes with OMP_NUM_THREADS=1 and =2 to show the model does not depend on it."""
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
REPLY_SECONDS = 10.0


def read_at_start(name: str) -> bool:
    """Whether the interpreter reads this variable at start-up: a forked job must then have the server's value.
    PYTHONPATH is not: it is applied to each job's sys.path when it is forked (warm_start_server.search_path),
    where the toolkit gives the program its own."""
    return (name.startswith("PYTHON") and name != "PYTHONPATH") or name in STARTUP_VARIABLES


def script_command(arguments: list[str]) -> list[str] | None:
    """`[script, *its arguments]` when the interpreter's command line runs a script file; None otherwise."""
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    elif arguments[:1] and arguments[0].startswith("-"):
        return None
    if not arguments or arguments[0] == "-":
        return None
    return arguments


def module_command(arguments: list[str]) -> tuple[str, list[str]] | None:
    """`(module, its arguments)` when the command line is `-m <module> ...` (or `-m<module> ...`); None otherwise.
    The module's sys.argv starts with "-m", as the interpreter's does while it finds the module."""
    if arguments[:1] == ["-m"] and len(arguments) > 1:
        return arguments[1], ["-m", *arguments[2:]]
    if arguments[:1] and arguments[0].startswith("-m") and len(arguments[0]) > 2:
        return arguments[0][2:], ["-m", *arguments[1:]]
    return None


def job_request(arguments: list[str], executable: str) -> dict[str, object] | None:
    """What the server is asked to run for this command line; None when it is not a form the server serves."""
    request: dict[str, object]
    script = script_command(arguments)
    module = module_command(arguments) if script is None else None
    if script is not None:
        request = {"argv": script}
    elif module is not None:
        request = {"module": module[0], "argv": module[1]}
    else:
        return None
    return {**request, **({"executable": executable} if executable else {})}


def run_warm(socket_path: str, job: dict[str, object]) -> int | None:
    """Run the job forked from the server; its exit status, as subprocess reports it (None: not started)."""
    request = {**job, "cwd": os.getcwd(), "env": dict(os.environ), "watch": os.getpid()}  # noqa: PTH109 - no pathlib: start-up time
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        connection.connect(socket_path)
        socket.send_fds(connection, [json.dumps(request).encode()], [0, 1, 2])
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN)
        reply = connection.recv(4096) if poller.poll(int(REPLY_SECONDS * 1000)) else b""
    except OSError:
        reply = b""
    if not reply:
        connection.close()
        return None
    pid = int(json.loads(reply)["pid"])

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # it has ended: its exit is on its way
            os.killpg(pid, signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    message = connection.recv(4096)
    # No message: the server died, and the program with it.
    return int(json.loads(message)["exit"]) if message else -signal.SIGKILL


def sibling_socket(socket_path: str, startup: list[list[str]]) -> str:
    """Where the sibling server for these start-up variables listens: beside the server's own socket."""
    digest = hashlib.sha256(json.dumps(startup).encode()).hexdigest()[:16]
    return os.path.join(os.path.dirname(socket_path), f"jobs-{digest}.sock")  # noqa: PTH118, PTH120 - start-up time


def ask_for_sibling(socket_path: str, sibling: str, startup: list[list[str]]) -> None:
    """Ask the server to start, in the background, a sibling server with these start-up variables (no reply)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as connection:
        connection.connect(socket_path)
        connection.send(json.dumps({"sibling": sibling, "startup": startup}).encode())


def main(argv: list[str]) -> int:
    socket_path, interpreter, executable, server_startup, *arguments = argv
    startup = sorted([name, value] for name, value in os.environ.items() if read_at_start(name))
    job = job_request(arguments, executable)
    status = None
    if job is not None and startup == json.loads(server_startup):
        status = run_warm(socket_path, job)
    elif job is not None:
        # Start-up variables not the server's (a locale, TZ, a PYTHON* option such as PYTHONHASHSEED): the job runs
        # forked from the sibling server that started with them, once there is one; until then it runs cold, and
        # the first such command has the server start that sibling.
        sibling = sibling_socket(socket_path, startup)
        status = run_warm(sibling, job)
        if status is None:
            ask_for_sibling(socket_path, sibling, startup)
    if status is None:
        os.execv(interpreter, [interpreter, *arguments])  # noqa: S606 - the very command line it was given
    if status < 0:
        # Ended by a signal: end the same way, so that whoever waits on this process sees what a fresh one shows.
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        return 128 - status
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

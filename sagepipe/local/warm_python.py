"""The `python` a warm-started entry point sees as sys.executable: it runs a script forked from the warm-start
server, and anything else with the real interpreter.

The toolkit starts the program as `<sys.executable> -- <program> <arguments>` (sagemaker_training.process,
ProcessRunner._create_command). This launcher hands that command to its server (warm_start_server.py), which forks
the program from an interpreter that has imported what the program imports; a container would start a fresh
interpreter, which imports it all again. Every other command line (`-m pip install ...`, `-c ...`, options) is
exec'd with the real interpreter, unchanged: only the first words are read, to tell a script from an option, as the
interpreter's own usage does ("python [option] ... [-- | file | -] [arg] ...").

For the process that started it, the launcher is the program: the program's standard streams are the launcher's
own (passed to the server), a signal the launcher gets is sent on to the program's group, and the launcher exits
as the program did (with its status, or killed by the same signal). If the launcher is killed (SIGKILL with its
container's group), the server kills the program's group. If the server cannot take the job, the program starts
cold: the real interpreter is exec'd with the same command line.

The server's bin/python (a script of the interpreter's, run in isolated mode without site: `-IS`) runs this file
with the arguments `<socket> <interpreter> [python arguments]`. It uses the standard library only: a start costs
about 20 ms, not an import of the program's dependencies.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
REPLY_SECONDS = 10.0


def script_command(arguments: list[str]) -> list[str] | None:
    """`[script, *its arguments]` when the interpreter's command line runs a script file; None otherwise."""
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    elif arguments[:1] and arguments[0].startswith("-"):
        return None
    if not arguments or arguments[0] == "-":
        return None
    return arguments


def run_warm(socket_path: str, command: list[str]) -> int | None:
    """Run the script forked from the server; its exit status, as subprocess reports it (None: not started)."""
    request = {"argv": command, "cwd": os.getcwd(), "env": dict(os.environ), "watch": os.getpid()}  # noqa: PTH109 - no pathlib: start-up time
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


def main(argv: list[str]) -> int:
    socket_path, interpreter, *arguments = argv
    command = script_command(arguments)
    status = run_warm(socket_path, command) if command is not None else None
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

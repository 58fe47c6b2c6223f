"""The stub server of one build: answers its `docker` and `aws` calls, records them, and logs them.

It runs in the sagepipe process for as long as the build's shell does, on a Unix socket in a private temporary
directory (mode 0700: only this user can call it), so the stubs need no credentials and the build's commands see
none. Each call is answered on a thread of its own, as calls may overlap (`aws ... | docker login ...`).
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import shutil
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from sagepipe.local.codebuild.results import ToolCall, now
from sagepipe.local.codebuild.stubs import StubConfig, StubFiles, install, record_call
from sagepipe.local.codebuild.stubs.common import Call, NotEmulated

_FAILED: Final = {"docker": 1, "aws": 255}
"""docker's exit status for a failed command; the AWS CLI's for a failure it does not classify (return codes)."""
_SECRET_OPTIONS: Final = frozenset({"-p", "--password"})
_SHUTDOWN_POLL_SECONDS: Final = 0.02
"""How often the server's loop looks for shutdown (a select() timeout): the longest a build's end waits for it."""
_SOCKET_PATH_LIMIT: Final = 100
"""AF_UNIX paths are at most 107 bytes on Linux (sun_path is 108, with its NUL)."""


@contextlib.contextmanager
def serve(root: Path, config: StubConfig) -> Iterator[StubFiles]:
    """Install the stubs of one build in `root` and answer their calls until the block ends."""
    directory = Path(tempfile.mkdtemp(prefix="sagepipe-stubs-"))
    if len(str(directory)) > _SOCKET_PATH_LIMIT - len("/socket"):
        shutil.rmtree(directory)
        directory = Path(tempfile.mkdtemp(prefix="sagepipe-stubs-", dir="/tmp"))  # TMPDIR is too long for a socket path
    socket_path = directory / "socket"
    files = install(root, socket_path, config.log_path)
    answerer = _Answerer(files, config)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            request = json.loads(self.rfile.read())
            self.wfile.write(json.dumps(answerer.answer(request)).encode())

    class Server(socketserver.ThreadingUnixStreamServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            """A stub that died mid-call (its build was stopped) has no one to answer: nothing to report."""

    server = Server(str(socket_path), Handler)
    # serve_forever sees shutdown() only between polls, so the end of every build waited up to one poll interval.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS}, name="codebuild-stubs"
    )
    thread.start()
    try:
        yield files
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


class _Answerer:
    def __init__(self, files: StubFiles, config: StubConfig) -> None:
        self.files, self.config = files, config
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str) -> Any:
        """One botocore client per service and region, made once (clients are thread-safe; making one is not)."""
        emulator = self.config.emulator
        if emulator is None:
            raise NotEmulated("this build runs without an emulator, so no registry answers")
        with self._lock:
            found = self._clients.get((service, region))
            if found is None:
                import botocore.session
                from botocore.config import Config

                found = self._clients[(service, region)] = botocore.session.Session().create_client(
                    service,
                    region_name=region,
                    endpoint_url=emulator.endpoint_url,
                    aws_access_key_id=emulator.access_key_id,
                    aws_secret_access_key=emulator.secret_access_key,
                    config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60),
                )
            return found

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        program, args = str(request["program"]), [str(arg) for arg in request["args"]]
        stdout, stderr = io.StringIO(), io.StringIO()
        call = Call(
            program=program,
            args=args,
            cwd=Path(request["cwd"]),
            environment={str(key): str(value) for key, value in request["environment"].items()},
            files=self.files,
            config=self.config,
            clients=self.client,
            stdin=io.StringIO(request.get("stdin", "")),
            stdout=stdout,
            stderr=stderr,
        )
        started = now()
        status = _FAILED.get(program, 1)
        try:
            status = _dispatch(call)
        except NotEmulated as error:
            call.err(f"sagepipe local build: {error}")
            call.notes.append("not emulated locally")
        except Exception as error:  # whatever went wrong, the build sees a failed command, not a traceback
            call.err(f"sagepipe local build: {program} failed in the local runtime: {type(error).__name__}: {error}")
            call.notes.append(f"{type(error).__name__}: {error}")
        shown = (program, *_masked(args))
        record_call(self.files, ToolCall(argv=shown, cwd=str(call.cwd), time=started, exit_status=status))
        return {
            "stdout": stdout.getvalue(),
            "stderr": stderr.getvalue(),
            "status": status,
            "log": _log_line(call, shown, status),
        }


def _log_line(call: Call, shown: tuple[str, ...], status: int) -> str:
    """The call's line in the build log; the stub appends it after the call's own output, so the log reads in order."""
    stamp = now().strftime("%Y/%m/%d %H:%M:%S.%f")
    outcome = f" ({'; '.join(call.notes)})" if call.notes else ""
    return f"[Container] {stamp} [sagepipe local {call.program}] {shlex.join(shown)} -> exit status {status}{outcome}\n"


def _dispatch(call: Call) -> int:
    if call.program == "docker":
        from sagepipe.local.codebuild.stubs import docker

        return docker.run(call)
    if call.program == "aws":
        from sagepipe.local.codebuild.stubs import aws

        return aws.run(call)
    raise NotEmulated(f"{call.program}: not a program the local build provides")


def _masked(args: list[str]) -> list[str]:
    """The arguments with a password given on the command line (docker login -p) replaced: secrets are not logged."""
    shown: list[str] = []
    hide_next = False
    for word in args:
        name, equals, _ = word.partition("=")
        if hide_next:
            shown.append("****")
            hide_next = False
        elif equals and name in _SECRET_OPTIONS:
            shown.append(f"{name}=****")
        else:
            shown.append(word)
            hide_next = word in _SECRET_OPTIONS
    return shown

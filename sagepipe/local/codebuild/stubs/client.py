"""What `docker` and `aws` run on a local build's PATH: hand the call to the build's stub server, print its answer.

stub.sh runs this file with the venv's interpreter in isolated mode (-I). It uses the standard library only, so a
call costs a Python start-up and one round trip on a Unix socket (about 0.1 s), not an SDK's import: the answer
comes from the server the executor runs for the build (server.py), where botocore is loaded already.

Usage: python -I client.py SOCKET LOG PROGRAM [ARGS...] (LOG: the build log, which the call's line is appended to)
"""

from __future__ import annotations

import json
import os
import socket
import sys

_FAILED = {"docker": 1, "aws": 255}


def main(argv: list[str]) -> int:
    path, log, program, *args = argv
    # Only `docker login --password-stdin` reads stdin; reading it otherwise could wait on a pipe that never closes.
    stdin = sys.stdin.read() if program == "docker" and "--password-stdin" in args else ""
    cwd = os.getcwd()  # noqa: PTH109 - pathlib's import is time this call does not need
    request = {"program": program, "args": args, "cwd": cwd, "environment": dict(os.environ), "stdin": stdin}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(path)
            connection.sendall(json.dumps(request).encode())
            connection.shutdown(socket.SHUT_WR)
            reply = json.loads(b"".join(iter(lambda: connection.recv(65536), b"")))
    except (OSError, ValueError) as error:
        sys.stderr.write(f"sagepipe local build: {program} cannot reach the build's stub server ({error})\n")
        return _FAILED.get(program, 1)
    sys.stdout.write(reply["stdout"])
    sys.stderr.write(reply["stderr"])
    sys.stdout.flush()
    sys.stderr.flush()
    with open(log, "a", encoding="utf-8") as build_log:  # noqa: PTH123 - pathlib's import is time this call does not need
        build_log.write(reply["log"])  # O_APPEND, as the driver's bash writes the log
    return int(reply["status"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

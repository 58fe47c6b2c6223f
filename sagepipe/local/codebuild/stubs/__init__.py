"""`docker` and `aws` for a local build: small programs first on the build's PATH that answer from the emulator.

AWS
    CodeBuild's standard image has the Docker engine and the AWS CLI v2; the buildspec logs in to ECR, builds
    the training image, pushes it and asks ECR for its digest.
Locally
    There is no Docker engine, and the real AWS CLI is not installed. Each build gets its own copies of
    stub.sh named `docker` and `aws`, first on its PATH; whatever runs them (a buildspec command, `eval`, a
    function, `$(...)`, a script, xargs) reaches the same stub. A stub hands its call (arguments, working
    directory, environment, and stdin for `docker login --password-stdin`) over a private Unix socket to the
    build's stub server (server.py), which the executor runs in the sagepipe process for the build's duration:
    the server answers from the emulator with botocore and the local credentials, appends the call to the
    build's record of calls (`read_calls`) and logs it in the build log. Nothing reaches the buildspec's
    commands: no endpoint, no credentials, no variable CodeBuild would not set.

    - `docker build` checks the context as a training image (the Dockerfile's SAGEMAKER_PROGRAM and what it
      copies into /opt/ml/code), snapshots it, and tags it; `docker push` puts its manifest in the
      emulator's ECR (one layer, the context's content digest) and keeps the snapshot as the local image
      training runs (sagepipe.local.images); `docker pull` and `docker login` answer as the registry would.
    - `aws ecr get-login-password`, `aws ecr-public get-login-password` and `aws ecr describe-images` answer
      from the emulator with the AWS CLI's output and exit codes (`--query`, `--output json|text|off`).
    - Anything else fails with "not emulated locally", so a buildspec change that needs more fails loudly.
How it differs
    No image is built: a Dockerfile instruction other than ENV SAGEMAKER_PROGRAM and the COPY into /opt/ml/code
    is not run or checked. Only the emulator's ECR is a registry; ECR Public logins take the local token.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from sagepipe.local.codebuild.results import ToolCall

PROGRAMS: Final = ("docker", "aws")
LAUNCHER: Final = Path(__file__).with_name("stub.sh")
CLIENT: Final = Path(__file__).resolve().with_name("client.py")


@dataclass(frozen=True)
class EmulatorAccess:
    """How the stubs reach the emulator: its endpoint, the local credentials, and where local images are kept."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    image_store: Path


@dataclass(frozen=True)
class StubConfig:
    """What the stub server of one build knows; it stays in the sagepipe process, out of the build's reach."""

    emulator: EmulatorAccess | None
    """None when the build runs without an emulator (unit tests): registry calls then fail."""
    region: str
    """The region a call without --region or AWS_REGION uses."""
    source_version: str
    """The commit being built: the local image's commit."""
    log_path: Path
    """The build log, which each call appends a line to (absolute)."""


@dataclass(frozen=True)
class StubFiles:
    """The stubs' files of one build, under one directory."""

    root: Path

    @property
    def bin(self) -> Path:
        """Goes first on the build's PATH: `docker` and `aws`, copies of stub.sh."""
        return self.root / "bin"

    @property
    def launch(self) -> Path:
        """Four lines for stub.sh: the interpreter to run, client.py, the stub server's socket, the build log."""
        return self.root / "launch"

    @property
    def calls(self) -> Path:
        """The record of calls: one JSON object a line."""
        return self.root / "calls.jsonl"

    @property
    def docker(self) -> Path:
        """The build's own Docker daemon state: the images it built, pulled or logged in to."""
        return self.root / "docker"


def install(root: Path, socket_path: Path, log_path: Path) -> StubFiles:
    """Set up the stubs of one build in `root` (which must not exist), talking to the server at socket_path."""
    files = StubFiles(root)
    files.bin.mkdir(parents=True)
    files.docker.mkdir()
    launch = (sys.executable, str(CLIENT), str(socket_path), str(log_path))
    for value in launch:
        if "\n" in value:
            raise ValueError(f"the stubs cannot be launched from a path with a newline: {value!r}")
    files.launch.write_text("".join(f"{value}\n" for value in launch), encoding="utf-8")
    files.calls.touch()
    for program in PROGRAMS:
        # Copies, not links: stub.sh finds its build's files next to the path it was run as, and a package's files
        # may be installed without their executable bit.
        target = files.bin / program
        shutil.copyfile(LAUNCHER, target)
        target.chmod(0o755)
    return files


def record_call(files: StubFiles, call: ToolCall) -> None:
    """Append one call to the record (O_APPEND: concurrent calls, as in a pipeline, do not overwrite each other)."""
    line = json.dumps(
        {"argv": list(call.argv), "cwd": call.cwd, "time": call.time.isoformat(), "exit_status": call.exit_status}
    )
    with files.calls.open("a", encoding="utf-8") as record:
        record.write(line + "\n")


def read_calls(root: Path) -> tuple[ToolCall, ...]:
    """The calls the build's stubs recorded, in the order they ended."""
    path = StubFiles(root).calls
    if not path.exists():
        return ()
    calls: list[ToolCall] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            calls.append(
                ToolCall(
                    argv=tuple(record["argv"]),
                    cwd=record["cwd"],
                    time=datetime.fromisoformat(record["time"]),
                    exit_status=int(record["exit_status"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short when the build was killed
    return tuple(calls)

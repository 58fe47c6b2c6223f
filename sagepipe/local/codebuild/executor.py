"""Runs a CodeBuild buildspec for one commit on this machine, the way CodeBuild runs it.

The local runtime's moto adapter calls :func:`run_build` for ``codebuild:startBuild.sync``: the build really
runs (the install, the training tests, every shell command, ``docker`` and ``aws`` included). What is faithful
to CodeBuild, and where each rule comes from:

- **Source.** A commit is cloned with ``--shared`` (no objects are copied and the user's repository is
  never written to) and checked out detached, as CodeBuild checks out ``sourceVersion``. An unknown
  commit fails DOWNLOAD_SOURCE with CodeBuild's own message. ``source_version=None`` builds the
  working tree: the files ``git ls-files --cached --others --exclude-standard`` lists, which is what a
  commit made now would hold.
- **The buildspec** is read with CodeBuild's rules (buildspec.py); one it would refuse fails DOWNLOAD_SOURCE.
- **Phases and one shell.** driver.sh runs every command in one bash process with CodeBuild's phase
  transitions (driver.py says which).
- **docker and aws** are the stubs first on the build's PATH (stubs/), which answer from the emulator: the
  buildspec's registry step runs as written, however it calls them.
- **Environment.** Nothing of the caller's environment reaches the build but PATH (behind the stubs and the
  venv's bin directory, so ``python`` is the venv's Python), and so none of the caller's AWS credentials do.
- **A warm python.** With the runtime's warm starts (``BuildRequest.warm_starts``), a ``python`` launcher comes
  before the venv's bin directory: ``python <script>`` and ``python -m <module>`` run forked from a server that
  has imported what the build's Python imports (warm.py says how that is read), everything else runs on the
  venv's Python itself (sagepipe.local.warm_python). Where CodeBuild starts a fresh interpreter in a fresh
  container, the build's programs see the same argv, path, environment, streams and exit status; only their
  imports are done already. When no warm start can be had, the build runs cold, exactly as without.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Self

from sagepipe.local import git, process
from sagepipe.local.codebuild.buildspec import NAME, Buildspec, BuildspecError, parse_buildspec, read_buildspec
from sagepipe.local.codebuild.driver import SCRIPT, read_exports, read_outcome, write_plan
from sagepipe.local.codebuild.results import (
    BUILD,
    COMPLETED,
    DOWNLOAD_SOURCE,
    FAILED,
    FAULT,
    FINALIZING,
    PROVISIONING,
    QUEUED,
    STOPPED,
    SUBMITTED,
    SUCCEEDED,
    TIMED_OUT,
    UPLOAD_ARTIFACTS,
    BuildResult,
    Phase,
    ToolCall,
    interruption_context,
    now,
    phase,
)
from sagepipe.local.codebuild.stubs import EmulatorAccess, StubConfig, read_calls
from sagepipe.local.codebuild.stubs.server import serve as serve_stubs
from sagepipe.local.codebuild.warm import preload_modules, python_names
from sagepipe.local.warm_start import WarmStarts

__all__ = ["BuildError", "BuildRequest", "BuildResult", "EmulatorAccess", "Phase", "ToolCall", "run_build"]

INITIATOR: Final = "sagepipe-local"
DEFAULT_REGION: Final = "us-east-1"
"""The region the stubs use when the build's environment names none."""

_GRACE_SECONDS: Final = 2.0
"""Between SIGTERM and SIGKILL when a build times out or is stopped."""

_STATUS_OF: Final[dict[process.Interruption, str]] = {"cancelled": STOPPED, "deadline": TIMED_OUT}


class BuildError(Exception):
    """A programming error in the request (bad paths, reused work_dir, ...); a failing build is a BuildResult."""


@dataclass(frozen=True)
class BuildRequest:
    """One StartBuild: what to build, where, and for how long."""

    repository: Path
    """A local git repository (its top level)."""
    source_version: str | None
    """The commit to check out (a full SHA; anything `git rev-parse` resolves works); None builds the working tree."""
    build_id: str
    """CodeBuild's `project:uuid` build id."""
    environment: Mapping[str, str]
    """Project and StartBuild override variables, already merged; they win over the buildspec's."""
    work_dir: Path
    """A directory this build may use; the source goes in work_dir/"src", which must not exist yet."""
    log_path: Path
    """The build log, like the build's CloudWatch log stream."""
    timeout_seconds: float
    """The project's TimeoutInMinutes * 60, for the whole build."""
    buildspec_path: str = "buildspec.yml"
    """Relative to the source root, as the project's BuildSpec property; YAML text (with a newline) is used as is."""
    cancel: threading.Event | None = None
    """Set it to stop the build (StopBuild): the build ends STOPPED."""
    build_number: int = 1
    """CODEBUILD_BUILD_NUMBER."""
    emulator: EmulatorAccess | None = None
    """Where the build's docker and aws reach ECR; None: every registry call fails (a build without an emulator)."""
    warm_starts: WarmStarts | None = None
    """The runtime's warm starts: the build's `python` starts its scripts and `-m` modules warm; None: cold."""


def run_build(request: BuildRequest) -> BuildResult:
    """Run request's buildspec as CodeBuild would, and return the completed build."""
    tools = _check_request(request)
    layout = _Layout.create(request.work_dir)
    supervisor = process.Supervisor.for_seconds(request.timeout_seconds, request.cancel, grace_seconds=_GRACE_SECONDS)
    with _Log(request.log_path) as log:
        return _Build(request, tools, layout, log, supervisor).run()


# ---------------------------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class _Tools:
    bash: str
    git: str


def _check_request(request: BuildRequest) -> _Tools:
    """Reject what only a caller's mistake can cause; everything the buildspec or the source causes is a result."""
    if not (request.repository / ".git").exists():
        raise BuildError(f"{request.repository} is not the top level of a git repository")
    if not (math.isfinite(request.timeout_seconds) and request.timeout_seconds > 0):
        raise BuildError(f"timeout_seconds must be a positive number of seconds, not {request.timeout_seconds!r}")
    if not request.build_id or any(char in request.build_id for char in "\n\0"):
        raise BuildError(f"build_id {request.build_id!r} is not a CodeBuild build id")
    for name, value in request.environment.items():
        if not NAME.fullmatch(name) or "\0" in value:
            raise BuildError(
                f"environment variable {name!r} is not a valid shell variable name or has a NUL in its value"
            )
    for sub in ("src", _Layout.RUNTIME):
        if (request.work_dir / sub).exists():
            raise BuildError(f"{request.work_dir / sub} already exists: give each build a work_dir of its own")
    if not sys.executable:
        raise BuildError("sys.executable is unknown, so the build cannot run the venv's Python")
    bash, git = shutil.which("bash"), shutil.which("git")
    if bash is None or git is None:
        raise BuildError("the local build needs bash and git on PATH")
    return _Tools(bash=bash, git=git)


@dataclass(frozen=True)
class _Layout:
    """The build's files under work_dir: the source, and the build's own files beside it."""

    RUNTIME = ".sagepipe-build"

    source: Path
    runtime: Path
    """driver.sh's files (see its header) and git's output."""
    stubs: Path
    """The docker and aws stubs' files (stubs.StubFiles)."""
    home: Path
    tmp: Path

    @classmethod
    def create(cls, work_dir: Path) -> _Layout:
        runtime = work_dir.resolve() / cls.RUNTIME
        layout = cls(
            source=work_dir.resolve() / "src",
            runtime=runtime,
            stubs=runtime / "stubs",
            home=runtime / "home",
            tmp=runtime / "tmp",
        )
        for directory in (layout.home, layout.tmp):
            directory.mkdir(parents=True)
        return layout

    def file(self, name: str) -> Path:
        return self.runtime / name


# ---------------------------------------------------------------------------------------------- the log


class _Log:
    """The build log. The driver's bash and the stubs append to the same file, all with O_APPEND: none overwrites."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        self.file: BinaryIO = path.open("ab")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.file.close()

    def line(self, message: str) -> None:
        stamp = now().strftime("%Y/%m/%d %H:%M:%S.%f")
        self.file.write(f"[Container] {stamp} {message}\n".encode())
        self.file.flush()

    def phase_complete(self, completed: Phase) -> None:
        context = completed.contexts[0] if completed.contexts else {"statusCode": "", "message": ""}
        self.line(f"Phase complete: {completed.phase_type} State: {completed.phase_status}")
        self.line(f"Phase context status code: {context['statusCode']} Message: {context['message']}")


# ---------------------------------------------------------------------------------------------- the build


class _Build:
    """One build, phase by phase; each step records its phases, and run() assembles the result."""

    def __init__(
        self, request: BuildRequest, tools: _Tools, layout: _Layout, log: _Log, supervisor: process.Supervisor
    ) -> None:
        self.request, self.tools, self.layout, self.log, self.supervisor = request, tools, layout, log, supervisor
        self.start = now()
        self.phases: list[Phase] = []
        self.resolved = ""
        self.ended_as: str | None = None
        """TIMED_OUT, STOPPED or FAULT when the build did not run to its end."""
        self.exported: dict[str, str] = {}

    def run(self) -> BuildResult:
        self.log.line(f"Build {self.request.build_id} runs locally: sagepipe's local runtime, no container, no AWS")
        for phase_type in (SUBMITTED, QUEUED, PROVISIONING):
            # The work directory was provisioned before the build started; these phases only keep CodeBuild's shape.
            self.phases.append(phase(phase_type, SUCCEEDED, self.start, self.start))
        spec = self.download_source()
        if spec is not None:
            self.run_commands(spec)
        return self.finish()

    def download_source(self) -> Buildspec | None:
        started = now()
        self.log.line(f"Entering phase {DOWNLOAD_SOURCE}")
        try:
            self.supervisor.check()
            if self.request.source_version is None:
                # This build's own files, should they be inside the repository and not ignored, are not its source.
                own = (self.layout.runtime.parent, self.request.log_path.resolve())
                self.resolved = git.copy_worktree(
                    self.git, self.request.repository, self.layout.source, exclude=own, check=self.supervisor.check
                )
                self.log.line(f"Copied the working tree of {self.request.repository} ({self.resolved})")
            else:
                self.resolved = git.checkout(
                    self.git, self.request.repository, self.request.source_version, self.layout.source
                )
                self.log.line(f"Checked out {self.resolved} from {self.request.repository}")
            self.log.line(f"CODEBUILD_SRC_DIR={self.layout.source}")
            text, name = read_buildspec(self.layout.source, self.request.buildspec_path)
            self.log.line(f"YAML location is {name}")
            spec = parse_buildspec(text, name)
        except git.GitError as error:
            self.end_phase(DOWNLOAD_SOURCE, FAILED, started, {"statusCode": "CLIENT_ERROR", "message": str(error)})
            return None
        except BuildspecError as error:
            self.end_phase(DOWNLOAD_SOURCE, FAILED, started, {"statusCode": "YAML_FILE_ERROR", "message": str(error)})
            return None
        except process.Interrupted as interrupted:
            self.ended_as = _STATUS_OF[interrupted.why]
            self.end_phase(DOWNLOAD_SOURCE, self.ended_as, started, interruption_context(self.ended_as))
            return None
        for note in spec.notes:
            self.log.line(note)
        self.end_phase(DOWNLOAD_SOURCE, SUCCEEDED, started, None)
        return spec

    def git(self, args: Sequence[str], cwd: Path) -> tuple[int, bytes, str]:
        """Run git under the build's supervisor, without the caller's GIT_* variables."""
        stdout, stderr = self.layout.file("git.stdout"), self.layout.file("git.stderr")
        status = self.supervisor.run(
            [self.tools.git, *args], cwd=cwd, env=git.environment(), stdout=stdout, stderr=stderr
        )
        return status, stdout.read_bytes(), stderr.read_text(errors="replace").strip()

    def end_phase(self, phase_type: str, status: str, started: datetime, context: dict[str, str] | None) -> None:
        ended = phase(phase_type, status, started, now(), () if context is None else (context,))
        self.phases.append(ended)
        self.log.phase_complete(ended)

    def run_commands(self, spec: Buildspec) -> None:
        write_plan(spec, self.layout.runtime)
        environment = self.environment(spec)
        config = StubConfig(
            emulator=self.request.emulator,
            region=environment.get("AWS_REGION", DEFAULT_REGION),
            source_version=self.resolved,
            log_path=self.request.log_path.resolve(),
        )
        warm_python = self.warm_python(spec, environment)
        if warm_python is not None:
            environment["PATH"] = os.pathsep.join([str(warm_python), environment["PATH"]])
        with serve_stubs(self.layout.stubs, config) as stub_files:
            environment["PATH"] = os.pathsep.join([str(stub_files.bin), environment["PATH"]])
            self.log.file.flush()
            # Its own process group, so a timeout or StopBuild ends every process it started.
            shell = self.supervisor.start(
                [self.tools.bash, "--noprofile", "--norc", str(SCRIPT), str(self.layout.runtime)],
                cwd=self.layout.source,
                env=environment,
                stdout=self.log.file,
                stderr=subprocess.STDOUT,
            )
            why = self.supervisor.supervise(shell)
        interruption = _STATUS_OF[why] if why is not None else None
        ended = now()
        outcome = read_outcome(self.layout.runtime, spec)
        self.phases += outcome.phases
        if interruption is not None or not outcome.done:
            self.ended_as = interruption or FAULT
            context = (
                interruption_context(interruption)
                if interruption
                else {
                    "statusCode": "CLIENT_ERROR",
                    "message": f"the build's shell ended before the build did (exit status {shell.returncode})",
                }
            )
            if outcome.open_phase is not None:
                phase_type, started = outcome.open_phase
                cut_short = phase(phase_type, self.ended_as, started, ended, (context,))
                self.phases.append(cut_short)
                self.log.phase_complete(cut_short)
            else:
                self.log.line(f"Build ended {self.ended_as}: {context['message']}")
            return
        self.exported = read_exports(self.layout.runtime)
        if any(completed.phase_type == BUILD for completed in outcome.phases):
            # Attempted whenever BUILD ran, failed or not; the local build has no artifacts to upload.
            uploaded = phase(UPLOAD_ARTIFACTS, SUCCEEDED, ended, now())
            self.phases.append(uploaded)
            self.log.phase_complete(uploaded)

    def warm_python(self, spec: Buildspec, environment: Mapping[str, str]) -> Path | None:
        """The directory of the build's warm `python` (python3, python3.13 too); None: the build runs cold."""
        if self.request.warm_starts is None:
            return None
        interpreter = Path(sys.executable)
        try:
            modules = preload_modules(self.layout.source, spec)
        except OSError:  # the source cannot be read for it: the build itself will say what is wrong
            return None
        directory = self.request.warm_starts.python(
            interpreter, environment, modules, python_names(interpreter.parent, interpreter)
        )
        if directory is not None:
            packages = sorted({module.split(".")[0] for module in modules})
            self.log.line(f"python starts warm: forked from a process that has imported {', '.join(packages)}")
        return directory

    def environment(self, spec: Buildspec) -> dict[str, str]:
        request = self.request
        # Not resolved: the venv's bin directory, whose python is the venv's even though it links elsewhere.
        venv_bin = str(Path(sys.executable).parent)
        env = {
            "PATH": os.pathsep.join([venv_bin, os.environ.get("PATH", os.defpath)]),
            # A home and a temporary directory of the build's own: nothing of the user's (~/.aws included) is read,
            # and the tests the build runs cannot touch the caller's pytest temporary directories.
            "HOME": str(self.layout.home),
            "TMPDIR": str(self.layout.tmp),
            "LANG": "C.UTF-8",
            "TZ": "UTC",  # CodeBuild's images run in UTC, and the log's timestamps are UTC
            "AWS_EC2_METADATA_DISABLED": "true",  # no credentials here: let an SDK say so at once, not after probing
        }
        region = request.environment.get("AWS_REGION") or request.environment.get("AWS_DEFAULT_REGION")
        if region:
            env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
        env.update(spec.variables)
        env.update(request.environment)  # project and StartBuild variables win over the buildspec's, as in CodeBuild
        env.update(
            {
                "CODEBUILD_BUILD_ID": request.build_id,
                "CODEBUILD_BUILD_NUMBER": str(request.build_number),
                "CODEBUILD_RESOLVED_SOURCE_VERSION": self.resolved,
                "CODEBUILD_SOURCE_VERSION": request.source_version or self.resolved,
                "CODEBUILD_SRC_DIR": str(self.layout.source),
                "CODEBUILD_START_TIME": str(int(self.start.timestamp() * 1000)),
                "CODEBUILD_INITIATOR": INITIATOR,
                "CODEBUILD_BUILD_SUCCEEDING": "1",
            }
        )
        # The install phase's `pip install -r ...` then succeeds only if the venv already satisfies every pin: pip
        # never reaches an index (the local runtime is offline) and never changes the venv with a download.
        env["PIP_NO_INDEX"] = "1"
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        return env

    def finish(self) -> BuildResult:
        end = now()
        self.phases.append(phase(FINALIZING, SUCCEEDED, end, end))
        self.phases.append(phase(COMPLETED, None, end, None))
        if self.ended_as is not None:
            status = self.ended_as
        elif any(item.phase_status != SUCCEEDED for item in self.phases if item.phase_status is not None):
            status = FAILED
        else:
            status = SUCCEEDED
        failure = next((item.contexts[0] for item in self.phases if item.contexts), None)
        if failure is None and status == FAULT:
            failure = {"statusCode": "CLIENT_ERROR", "message": "the build ended unexpectedly"}
        elif failure is None and status in (TIMED_OUT, STOPPED):
            failure = interruption_context(status)
        self.log.line(f"[sagepipe local build] {self.request.build_id} completed: {status}")
        return BuildResult(
            build_status=status,
            phases=tuple(self.phases),
            resolved_source_version=self.resolved,
            source_dir=self.layout.source,
            exported_variables=self.exported,
            tool_calls=read_calls(self.layout.stubs),
            log_path=self.request.log_path,
            start_time=self.start,
            end_time=end,
            failure_message=None if failure is None else f"{failure['statusCode']}: {failure['message']}",
        )

"""Runs a CodeBuild buildspec for one commit on this machine, the way CodeBuild runs it.

The local runtime's moto adapter calls :func:`run_build` for ``codebuild:startBuild.sync``: the build
really runs (the install, the training tests, every shell command), and only the container registry
work is left to the emulator. What is faithful to CodeBuild, and where each rule comes from:

- **Source.** A commit is cloned with ``--shared`` (no objects are copied and the user's repository is
  never written to) and checked out detached, as CodeBuild checks out ``sourceVersion``. An unknown
  commit fails DOWNLOAD_SOURCE with CodeBuild's own message. ``source_version=None`` builds the
  working tree: the files ``git ls-files --cached --others --exclude-standard`` lists, which is what a
  commit made now would hold.
- **Phases** follow "Build phase transitions" and the buildspec reference (build-spec-ref): a failed
  ``install`` or ``pre_build`` ends the build, so none of the later command phases run, not even
  ``post_build``; a failed ``build`` still goes on to ``post_build``, which sees
  CODEBUILD_BUILD_SUCCEEDING=0; ``on-failure: CONTINUE`` goes on to the next phase whatever failed;
  ``finally`` runs after its phase's ``commands`` whether they failed or not, and a failure in either
  fails the phase.
- **One shell.** Buildspec 0.2 keeps state from command to command, so one bash process runs the whole
  build from a generated driver script. Each command runs in a subshell of that process and hands its
  variables, functions, shell options and working directory back when it ends. That subshell is what
  makes ``exit 1`` inside a command fail that command only, as it does on CodeBuild, instead of ending
  the build (the project's own buildspec does exactly that in ``post_build``). The driver reports phase
  and command outcomes through an events file, never by parsing the build's output.
- **Registry commands are skipped.** A command that runs ``docker`` or the ``aws`` CLI is logged and
  listed in ``skipped_commands`` but not run: the emulator registers the image itself (see the header
  of buildspec.yml).
- **Environment.** Nothing of the caller's environment reaches the build but PATH (behind the venv's
  bin directory, so ``python`` is the venv's Python), and so none of the caller's AWS credentials do.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Self

import yaml

from sagepipe.local import git, process

__all__ = [
    "SKIP_LOG_PREFIX",
    "BuildError",
    "BuildRequest",
    "BuildResult",
    "Phase",
    "is_registry_command",
    "run_build",
]

# Build and phase statuses (BuildPhase.phaseStatus and Build.buildStatus share them).
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
FAULT: Final = "FAULT"
TIMED_OUT: Final = "TIMED_OUT"
STOPPED: Final = "STOPPED"

# Phase types, in the order CodeBuild goes through them.
SUBMITTED: Final = "SUBMITTED"
QUEUED: Final = "QUEUED"
PROVISIONING: Final = "PROVISIONING"
DOWNLOAD_SOURCE: Final = "DOWNLOAD_SOURCE"
INSTALL: Final = "INSTALL"
PRE_BUILD: Final = "PRE_BUILD"
BUILD: Final = "BUILD"
POST_BUILD: Final = "POST_BUILD"
UPLOAD_ARTIFACTS: Final = "UPLOAD_ARTIFACTS"
FINALIZING: Final = "FINALIZING"
COMPLETED: Final = "COMPLETED"

SKIP_LOG_PREFIX: Final = "[sagepipe local build] skipped (container registry step, done by the emulator): "
INITIATOR: Final = "sagepipe-local"

_SPEC_PHASES: Final = (("install", INSTALL), ("pre_build", PRE_BUILD), ("build", BUILD), ("post_build", POST_BUILD))
_TOP_LEVEL_KEYS: Final = frozenset(
    {"version", "run-as", "env", "proxy", "batch", "phases", "reports", "artifacts", "cache"}
)
_NOT_APPLIED_TOP_LEVEL: Final = ("run-as", "proxy", "batch", "reports", "artifacts", "cache")
_ENV_KEYS: Final = frozenset(
    {"shell", "variables", "parameter-store", "exported-variables", "secrets-manager", "git-credential-helper"}
)
_PHASE_KEYS: Final = frozenset({"commands", "finally", "on-failure", "run-as", "runtime-versions"})
_ON_FAILURE: Final = frozenset({"ABORT", "CONTINUE"})
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_GRACE_SECONDS: Final = 2.0
"""Between SIGTERM and SIGKILL when a build times out or is stopped."""

# CodeBuild's phase contexts for the ways a build can end early.
_TIMED_OUT_CONTEXT: Final = {"statusCode": "BUILD_TIMED_OUT", "message": "Build has timed out. "}
_STOPPED_CONTEXT: Final = {"statusCode": "BUILD_STOPPED", "message": "Build was stopped. "}


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


@dataclass(frozen=True)
class Phase:
    """One entry of Build.phases (CodeBuild's BuildPhase)."""

    phase_type: str
    phase_status: str | None
    """SUCCEEDED, FAILED, FAULT, TIMED_OUT or STOPPED; None for COMPLETED."""
    start_time: datetime
    end_time: datetime | None
    duration_seconds: int | None
    contexts: tuple[dict[str, str], ...]
    """Empty for a phase that succeeded, else [{"statusCode": ..., "message": ...}]."""


@dataclass(frozen=True)
class BuildResult:
    """What BatchGetBuilds would say of the build once it completed."""

    build_status: str
    phases: tuple[Phase, ...]
    resolved_source_version: str
    """The commit checked out, "WORKTREE-<sha256 prefix>" for a working-tree build, "" when no source was got."""
    source_dir: Path
    """The checked-out tree, kept: its container/ is the image's build context."""
    exported_variables: dict[str, str]
    """env/exported-variables as they were when post_build ended; unset ones are left out."""
    skipped_commands: tuple[str, ...]
    """The docker / aws commands the build reached and did not run, in order."""
    log_path: Path
    start_time: datetime
    end_time: datetime
    failure_message: str | None
    """"<statusCode>: <message>" of the first phase that did not succeed."""


def run_build(request: BuildRequest) -> BuildResult:
    """Run request's buildspec as CodeBuild would, and return the completed build."""
    tools = _check_request(request)
    layout = _Layout.create(request.work_dir)
    supervisor = process.Supervisor.for_seconds(request.timeout_seconds, request.cancel, grace_seconds=_GRACE_SECONDS)
    with _Log(request.log_path) as log:
        return _Build(request, tools, layout, log, supervisor).run()


def is_registry_command(command: str) -> bool:
    """True if the shell would run `docker` or the `aws` CLI anywhere in command.

    A program counts where the shell would run it: at the start, after an operator (`;`, `|`, `&&`, `(`,
    ...), a keyword (`then`, `do`, ...) or a variable assignment, or inside `$(...)`, backquotes or
    `<(...)`. A word that merely contains the name (`awsome`, `dockerfile-lint`, `echo "docker"`) does
    not count, nor does a here-document's body.
    """
    return any(word.rsplit("/", 1)[-1] in _REGISTRY_PROGRAMS for word in _ShellScanner(command).command_words())


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
        if not _NAME.fullmatch(name) or "\0" in value:
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
    """The build's files under work_dir: the source, and the driver's own files beside it."""

    RUNTIME = ".sagepipe-build"

    source: Path
    runtime: Path
    home: Path
    tmp: Path

    @classmethod
    def create(cls, work_dir: Path) -> _Layout:
        runtime = work_dir.resolve() / cls.RUNTIME
        layout = cls(source=work_dir.resolve() / "src", runtime=runtime, home=runtime / "home", tmp=runtime / "tmp")
        for directory in (layout.home, layout.tmp):
            directory.mkdir(parents=True)
        return layout

    def file(self, name: str) -> Path:
        return self.runtime / name


# ---------------------------------------------------------------------------------------------- the log


class _Log:
    """The build log. The driver's bash appends to the same file; both write with O_APPEND, so neither overwrites."""

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
        stamp = _now().strftime("%Y/%m/%d %H:%M:%S.%f")
        self.file.write(f"[Container] {stamp} {message}\n".encode())
        self.file.flush()

    def phase_complete(self, phase: Phase) -> None:
        context = phase.contexts[0] if phase.contexts else {"statusCode": "", "message": ""}
        self.line(f"Phase complete: {phase.phase_type} State: {phase.phase_status}")
        self.line(f"Phase context status code: {context['statusCode']} Message: {context['message']}")


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------- interruptions


_STATUS_OF: Final[dict[process.Interruption, str]] = {"cancelled": STOPPED, "deadline": TIMED_OUT}


# ---------------------------------------------------------------------------------------------- the buildspec


class _SpecError(Exception):
    """A buildspec CodeBuild would not run; the build fails in DOWNLOAD_SOURCE with YAML_FILE_ERROR."""


@dataclass(frozen=True)
class _Command:
    index: int
    text: str
    registry: bool


@dataclass(frozen=True)
class _PhaseSpec:
    phase_type: str
    on_failure: str
    commands: tuple[_Command, ...]
    finally_commands: tuple[_Command, ...]
    notes: tuple[str, ...]
    """Logged when the phase starts."""


@dataclass(frozen=True)
class _Buildspec:
    phases: tuple[_PhaseSpec, ...]
    """Always the four command phases, in order: CodeBuild goes through the ones a buildspec leaves out too."""
    variables: dict[str, str]
    exported_variables: tuple[str, ...]
    notes: tuple[str, ...]
    """Logged in DOWNLOAD_SOURCE."""

    @property
    def commands(self) -> tuple[_Command, ...]:
        return tuple(command for phase in self.phases for command in (*phase.commands, *phase.finally_commands))


def _read_buildspec(source: Path, buildspec_path: str) -> tuple[str, str]:
    """The buildspec's text and a name for it in messages."""
    if "\n" in buildspec_path:
        return buildspec_path, "the inline buildspec"
    relative = Path(buildspec_path)
    if relative.is_absolute() or ".." in relative.parts:
        raise _SpecError(f"buildspec path {buildspec_path} is not inside the source")
    try:
        return (source / relative).read_bytes().decode(), buildspec_path
    except FileNotFoundError as error:
        raise _SpecError(f"{buildspec_path} was not found in the source") from error
    except (OSError, UnicodeDecodeError) as error:
        raise _SpecError(f"{buildspec_path} cannot be read: {error}") from error


def _parse_buildspec(text: str, name: str) -> _Buildspec:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _SpecError(f"{name} is not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise _SpecError(f"{name} must be a YAML mapping with version and phases")
    version = document.get("version")
    if str(version) != "0.2":
        raise _SpecError(f"{name} has version {version!r}; the local build runs buildspec version 0.2 only")
    notes: list[str] = []
    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            raise _SpecError(f"{name} has an unknown top-level key {key!r}")
        if key in _NOT_APPLIED_TOP_LEVEL:
            notes.append(f"{key}: not applied by the local build")
    variables, exported = _parse_env(document.get("env"), notes)
    return _Buildspec(
        phases=_parse_phases(document.get("phases")),
        variables=variables,
        exported_variables=exported,
        notes=tuple(notes),
    )


def _parse_env(raw: object, notes: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    env = _mapping(raw, "env")
    unknown = sorted(str(key) for key in env if key not in _ENV_KEYS)
    if unknown:
        raise _SpecError(f"env has unknown keys {unknown}")
    shell = env.get("shell")
    if shell is None:
        notes.append(
            "env/shell is not set: CodeBuild would run the commands with /bin/sh, the local build runs them with "
            "bash, so bash-only syntax passes here and can fail there"
        )
    elif shell != "bash":
        raise _SpecError(f"env/shell {shell!r} is not supported by the local build, which runs commands with bash only")
    for secret_key in ("parameter-store", "secrets-manager"):
        if env.get(secret_key):
            raise _SpecError(f"env/{secret_key} is not supported by the local build: its values live in AWS")
    if "git-credential-helper" in env:
        notes.append("env/git-credential-helper: not applied by the local build")
    variables: dict[str, str] = {}
    for key, value in _mapping(env.get("variables"), "env/variables").items():
        variable = _variable_name(key, "env/variables")
        if variable.startswith("CODEBUILD_"):
            notes.append(f"env/variables/{variable} ignored: the CODEBUILD_ prefix is reserved for CodeBuild")
            continue
        variables[variable] = _scalar(value, f"env/variables/{variable}")
    exported: list[str] = []
    for item in _sequence(env.get("exported-variables"), "env/exported-variables"):
        variable = _variable_name(item, "env/exported-variables")
        if variable.startswith("AWS_"):
            notes.append(f"env/exported-variables/{variable} ignored: CodeBuild does not export AWS_ variables")
            continue
        exported.append(variable)
    return variables, tuple(exported)


def _parse_phases(raw: object) -> tuple[_PhaseSpec, ...]:
    if raw is None:
        raise _SpecError("the buildspec has no phases")
    phases = _mapping(raw, "phases")
    known = {key for key, _ in _SPEC_PHASES}
    unknown = sorted(str(key) for key in phases if key not in known)
    if unknown:
        raise _SpecError(f"phases has unknown phases {unknown}; the phases are install, pre_build, build, post_build")
    counter = itertools.count()
    return tuple(_parse_phase(key, phase_type, phases.get(key), counter) for key, phase_type in _SPEC_PHASES)


def _parse_phase(key: str, phase_type: str, raw: object, counter: Iterator[int]) -> _PhaseSpec:
    phase = _mapping(raw, f"phases/{key}")
    unknown = sorted(str(name) for name in phase if name not in _PHASE_KEYS)
    if unknown:
        raise _SpecError(f"phases/{key} has unknown keys {unknown}")
    on_failure = phase.get("on-failure", "ABORT")
    if on_failure not in _ON_FAILURE:
        raise _SpecError(f"phases/{key}/on-failure {on_failure!r} is not supported locally; use ABORT or CONTINUE")
    notes: list[str] = []
    runtime_versions = phase.get("runtime-versions")
    if runtime_versions is not None:
        if key != "install":
            raise _SpecError(f"phases/{key}/runtime-versions: runtime versions belong to the install phase")
        versions = ", ".join(f"{runtime}: {version}" for runtime, version in _mapping(runtime_versions, key).items())
        notes.append(
            f"runtime-versions ({versions}) not applied locally: the venv's Python runs the build "
            f"({sys.executable}, Python {sys.version.split()[0]})"
        )
    if "run-as" in phase:
        notes.append(f"phases/{key}/run-as: not applied locally; commands run as the current user")

    def commands(block: str) -> tuple[_Command, ...]:
        texts = [
            _scalar(item, f"phases/{key}/{block}[{number}]")
            for number, item in enumerate(_sequence(phase.get(block), f"phases/{key}/{block}"))
        ]
        # A `|` block's final newline would only print a blank line after "Running command" and in messages.
        return tuple(_Command(next(counter), text.rstrip("\n"), is_registry_command(text)) for text in texts)

    return _PhaseSpec(phase_type, str(on_failure), commands("commands"), commands("finally"), tuple(notes))


def _mapping(raw: object, where: str) -> dict[object, object]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _SpecError(f"{where} must be a mapping")
    return raw


def _sequence(raw: object, where: str) -> list[object]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _SpecError(f"{where} must be a list")
    return raw


def _scalar(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # YAML's spelling, which is what the buildspec's author wrote
    if isinstance(value, str | int | float):
        return str(value)
    if value is None:
        return ""
    kind = "a mapping (quote a command that contains ': ')" if isinstance(value, dict) else type(value).__name__
    raise _SpecError(f"{where} must be a string, found {kind}")


def _variable_name(value: object, where: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise _SpecError(f"{where}: {value!r} is not a valid environment variable name")
    return value


# ---------------------------------------------------------------------------------------------- the driver

# The driver's helpers. Everything of the driver's own is named __sp_*, and such names are never carried from a
# command back into the driver; nor are bash's special variables, or CODEBUILD_BUILD_SUCCEEDING, which only the
# driver sets. The events file is the side channel: "<EPOCHREALTIME>\t<EVENT>\t<args...>" lines.
_DRIVER_FUNCTIONS: Final = r"""
__sp_skip='^(BASH.*|EPOCHREALTIME|EPOCHSECONDS|EUID|PPID|UID|SHELLOPTS|FUNCNAME|GROUPS|LINENO|RANDOM|SRANDOM|SECONDS|HISTCMD|PIPESTATUS|DIRSTACK|PWD|OLDPWD|SHLVL|COMP_.*|_|__sp_.*|CODEBUILD_BUILD_SUCCEEDING)$'

__sp_log() {
  local __sp_t=$EPOCHREALTIME
  printf '[Container] %(%Y/%m/%d %H:%M:%S)T.%s %s\n' "${__sp_t%[.,]*}" "${__sp_t#*[.,]}" "$1"
}

__sp_event() {
  local IFS=$'\t'
  printf '%s\t%s\n' "$EPOCHREALTIME" "$*" >>"$__sp_events"
}

__sp_phase_start() {
  __sp_phase=$1
  __sp_phase_ok=1
  __sp_event PHASE_START "$1"
  __sp_log "Entering phase $1"
}

# $1 phase, $2 its on-failure. CodeBuild's transitions: a failed INSTALL or PRE_BUILD ends the build (no later
# command phase runs); a failed BUILD goes on to POST_BUILD; CONTINUE goes on whatever failed.
__sp_phase_end() {
  if [ "$__sp_phase_ok" = 1 ]; then
    __sp_log "Phase complete: $1 State: SUCCEEDED"
    __sp_log "Phase context status code:  Message: "
    __sp_event PHASE_END "$1" SUCCEEDED
    return 0
  fi
  local __sp_why="Error while executing command: ${__sp_cmds[$__sp_fail_idx]}. Reason: exit status $__sp_fail_rc"
  __sp_log "Phase complete: $1 State: FAILED"
  __sp_log "Phase context status code: COMMAND_EXECUTION_ERROR Message: $__sp_why"
  __sp_event PHASE_END "$1" FAILED
  if [ "$2" = ABORT ] && { [ "$1" = INSTALL ] || [ "$1" = PRE_BUILD ]; }; then
    __sp_aborted=1
  fi
}

__sp_announce() {
  __sp_log "Running command ${__sp_cmds[$1]}"
  : >"$__sp_state"
}

# $1 command index, $2 its exit status; returns non-zero if the command failed.
__sp_check() {
  [ "$2" = 0 ] && return 0
  __sp_log "Command did not exit successfully ${__sp_cmds[$1]} exit status $2"
  __sp_event COMMAND_FAILED "$__sp_phase" "$1" "$2"
  if [ "$__sp_phase_ok" = 1 ]; then
    __sp_fail_idx=$1
    __sp_fail_rc=$2
  fi
  __sp_phase_ok=0
  export CODEBUILD_BUILD_SUCCEEDING=0
  return 1
}

# $1 command index, $2 the command's first line.
__sp_skip_registry() {
  __sp_log "Running command ${__sp_cmds[$1]}"
  printf '%s%s\n' "$__sp_skip_prefix" "$2"
  __sp_event SKIPPED "$__sp_phase" "$1"
}

# First thing in a command's subshell: note the variables it starts with (to see which it unsets), arrange for
# its state to be saved however it ends (exit included), and give it the functions and options of the commands
# before it.
__sp_child() {
  local __sp_n
  __sp_start_names=()
  while IFS= read -r __sp_n; do
    [[ $__sp_n =~ $__sp_skip ]] || __sp_start_names+=("$__sp_n")
  done < <(compgen -v)
  trap '__sp_rc=$?; { set +o; shopt -p; } >"$__sp_opts" 2>/dev/null; __sp_save; exit "$__sp_rc"' EXIT
  . "$__sp_funcs" 2>/dev/null
  . "$__sp_opts" 2>/dev/null
}

# Last thing in a command's subshell: write what the driver sources to take the command's state over.
__sp_save() {
  set +o errexit +o nounset +o xtrace +o verbose
  local __sp_n
  local -a __sp_keep=()
  local -A __sp_now=()
  while IFS= read -r __sp_n; do
    [[ $__sp_n =~ $__sp_skip ]] && continue
    __sp_now[$__sp_n]=1
    __sp_keep+=("$__sp_n")
  done < <(compgen -v)
  {
    for __sp_n in "${__sp_start_names[@]}"; do
      [ -n "${__sp_now[$__sp_n]+set}" ] || printf 'unset -v %s\n' "$__sp_n"
    done
    declare -p "${__sp_keep[@]}"
    printf 'builtin cd -- %q\n' "$PWD"
  } >"$__sp_state" 2>/dev/null
  declare -f >"$__sp_funcs" 2>/dev/null
}
"""

_DRIVER_FILES: Final = ("events", "state", "funcs", "opts", "exports")


def _driver_script(spec: _Buildspec, layout: _Layout) -> str:
    lines = ["# Generated by sagepipe.local.codebuild for one build: CodeBuild's buildspec 0.2 semantics in one bash."]
    lines += [f"__sp_{name}={shlex.quote(str(layout.file(name)))}" for name in _DRIVER_FILES]
    lines.append(f"__sp_skip_prefix={shlex.quote(SKIP_LOG_PREFIX)}")
    lines.append(_DRIVER_FUNCTIONS)
    lines.append("__sp_cmds=(")
    lines += [f"  {shlex.quote(command.text)}" for command in spec.commands]
    lines.append(")")
    lines += [': >"$__sp_funcs"', ': >"$__sp_opts"', ': >"$__sp_exports"', "__sp_aborted=0"]
    lines.append("export CODEBUILD_BUILD_SUCCEEDING=1")
    for phase in spec.phases:
        lines += _phase_block(phase)
    # CodeBuild fixes exported variables when post_build ends; NUL-separated, since a value may hold any other byte.
    lines += [
        f'[[ -v {name} ]] && printf \'%s\\0%s\\0\' {name} "${name}" >>"$__sp_exports"'
        for name in spec.exported_variables
    ]
    lines.append("__sp_event DONE")
    return "\n".join(lines) + "\n"


def _phase_block(phase: _PhaseSpec) -> list[str]:
    lines = [f"# ---------------------------------------------------------------- {phase.phase_type}"]
    lines += ['if [ "$__sp_aborted" = 0 ]; then', f"__sp_phase_start {phase.phase_type}"]
    lines += [f"__sp_log {shlex.quote(note)}" for note in phase.notes]
    lines.append("__sp_go=1")
    for command in phase.commands:
        lines += _command_block(command)
    lines.append("__sp_go=1  # finally runs whether the commands failed or not")
    for command in phase.finally_commands:
        lines += _command_block(command)
    lines += [f"__sp_phase_end {phase.phase_type} {phase.on_failure}", "fi"]
    return lines


def _command_block(command: _Command) -> list[str]:
    if command.registry:
        stripped = command.text.strip()
        first_line = stripped.splitlines()[0] if stripped else ""
        return [f'[ "$__sp_go" = 1 ] && __sp_skip_registry {command.index} {shlex.quote(first_line)}']
    # Sourcing the state has to happen here, at the top level: a declare inside a function would make locals.
    return [
        'if [ "$__sp_go" = 1 ]; then',
        f"  __sp_announce {command.index}",
        f'  ( __sp_child; eval "${{__sp_cmds[{command.index}]}}" )',
        "  __sp_rc=$?",
        '  . "$__sp_state" 2>/dev/null',
        f'  __sp_check {command.index} "$__sp_rc" || __sp_go=0',
        "fi",
    ]


@dataclass(frozen=True)
class _Event:
    time: datetime
    kind: str
    args: tuple[str, ...]


# How many fields follow each event's name.
_EVENT_ARITY: Final = {"PHASE_START": 1, "PHASE_END": 2, "COMMAND_FAILED": 3, "SKIPPED": 2, "DONE": 0}


def _read_events(path: Path) -> list[_Event]:
    events: list[_Event] = []
    if not path.exists():
        return events
    for line in path.read_text(errors="replace").splitlines():
        stamp, *fields = line.split("\t")
        try:
            # EPOCHREALTIME's decimal point follows the locale, and a command may have changed the locale.
            when = datetime.fromtimestamp(float(stamp.replace(",", ".")), UTC)
        except ValueError:
            continue
        if not fields or _EVENT_ARITY.get(fields[0]) != len(fields) - 1:
            continue  # a line cut short when the build was killed
        events.append(_Event(when, fields[0], tuple(fields[1:])))
    return events


@dataclass
class _DriverOutcome:
    phases: list[Phase]
    open_phase: tuple[str, datetime] | None
    skipped: list[str]
    done: bool


def _driver_outcome(events: Sequence[_Event], spec: _Buildspec) -> _DriverOutcome:
    texts = {command.index: command.text for command in spec.commands}
    outcome = _DriverOutcome(phases=[], open_phase=None, skipped=[], done=False)
    failure: dict[str, str] | None = None
    for event in events:
        if event.kind == "PHASE_START":
            outcome.open_phase, failure = (event.args[0], event.time), None
        elif event.kind == "COMMAND_FAILED" and failure is None:
            text, status = texts.get(int(event.args[1]), "?"), event.args[2]
            failure = {
                "statusCode": "COMMAND_EXECUTION_ERROR",
                "message": f"Error while executing command: {text}. Reason: exit status {status}",
            }
        elif event.kind == "PHASE_END" and outcome.open_phase is not None:
            phase_type, started = outcome.open_phase
            contexts = (failure,) if event.args[1] == FAILED and failure is not None else ()
            outcome.phases.append(_phase(phase_type, event.args[1], started, event.time, contexts))
            outcome.open_phase = None
        elif event.kind == "SKIPPED":
            outcome.skipped.append(texts.get(int(event.args[1]), "?"))
        elif event.kind == "DONE":
            outcome.done = True
    return outcome


def _read_exports(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    fields = path.read_bytes().split(b"\0")
    return {
        fields[i].decode(errors="replace"): fields[i + 1].decode(errors="replace") for i in range(0, len(fields) - 1, 2)
    }


def _phase(
    phase_type: str,
    status: str | None,
    start: datetime,
    end: datetime | None,
    contexts: tuple[dict[str, str], ...] = (),
) -> Phase:
    duration = None if end is None else max(0, int((end - start).total_seconds()))
    return Phase(phase_type, status, start, end, duration, contexts)


# ---------------------------------------------------------------------------------------------- the build


class _Build:
    """One build, phase by phase; each step records its phases, and run() assembles the result."""

    def __init__(
        self, request: BuildRequest, tools: _Tools, layout: _Layout, log: _Log, supervisor: process.Supervisor
    ) -> None:
        self.request, self.tools, self.layout, self.log, self.supervisor = request, tools, layout, log, supervisor
        self.start = _now()
        self.phases: list[Phase] = []
        self.resolved = ""
        self.ended_as: str | None = None
        """TIMED_OUT, STOPPED or FAULT when the build did not run to its end."""
        self.skipped: tuple[str, ...] = ()
        self.exported: dict[str, str] = {}

    def run(self) -> BuildResult:
        self.log.line(f"Build {self.request.build_id} runs locally: sagepipe's local runtime, no container, no AWS")
        for phase_type in (SUBMITTED, QUEUED, PROVISIONING):
            # The work directory was provisioned before the build started; these phases only keep CodeBuild's shape.
            self.phases.append(_phase(phase_type, SUCCEEDED, self.start, self.start))
        spec = self.download_source()
        if spec is not None:
            self.run_commands(spec)
        return self.finish()

    def download_source(self) -> _Buildspec | None:
        started = _now()
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
            text, name = _read_buildspec(self.layout.source, self.request.buildspec_path)
            self.log.line(f"YAML location is {name}")
            spec = _parse_buildspec(text, name)
        except git.GitError as error:
            self.end_phase(DOWNLOAD_SOURCE, FAILED, started, {"statusCode": "CLIENT_ERROR", "message": str(error)})
            return None
        except _SpecError as error:
            self.end_phase(DOWNLOAD_SOURCE, FAILED, started, {"statusCode": "YAML_FILE_ERROR", "message": str(error)})
            return None
        except process.Interrupted as interrupted:
            self.ended_as = _STATUS_OF[interrupted.why]
            self.end_phase(DOWNLOAD_SOURCE, self.ended_as, started, _interruption_context(self.ended_as))
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
        phase = _phase(phase_type, status, started, _now(), () if context is None else (context,))
        self.phases.append(phase)
        self.log.phase_complete(phase)

    def run_commands(self, spec: _Buildspec) -> None:
        driver = self.layout.file("driver.sh")
        driver.write_text(_driver_script(spec, self.layout))
        self.log.file.flush()
        # Its own process group, so a timeout or StopBuild ends every process it started.
        shell = self.supervisor.start(
            [self.tools.bash, "--noprofile", "--norc", str(driver)],
            cwd=self.layout.source,
            env=self.environment(spec),
            stdout=self.log.file,
            stderr=subprocess.STDOUT,
        )
        why = self.supervisor.supervise(shell)
        interruption = _STATUS_OF[why] if why is not None else None
        ended = _now()
        outcome = _driver_outcome(_read_events(self.layout.file("events")), spec)
        self.phases += outcome.phases
        self.skipped = tuple(outcome.skipped)
        if interruption is not None or not outcome.done:
            self.ended_as = interruption or FAULT
            context = (
                _interruption_context(interruption)
                if interruption
                else {
                    "statusCode": "CLIENT_ERROR",
                    "message": f"the build's shell ended before the build did (exit status {shell.returncode})",
                }
            )
            if outcome.open_phase is not None:
                phase_type, started = outcome.open_phase
                phase = _phase(phase_type, self.ended_as, started, ended, (context,))
                self.phases.append(phase)
                self.log.phase_complete(phase)
            else:
                self.log.line(f"Build ended {self.ended_as}: {context['message']}")
            return
        self.exported = _read_exports(self.layout.file("exports"))
        if any(phase.phase_type == BUILD for phase in outcome.phases):
            # Attempted whenever BUILD ran, failed or not; the local build has no artifacts to upload.
            phase = _phase(UPLOAD_ARTIFACTS, SUCCEEDED, ended, _now())
            self.phases.append(phase)
            self.log.phase_complete(phase)

    def environment(self, spec: _Buildspec) -> dict[str, str]:
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
        end = _now()
        self.phases.append(_phase(FINALIZING, SUCCEEDED, end, end))
        self.phases.append(_phase(COMPLETED, None, end, None))
        if self.ended_as is not None:
            status = self.ended_as
        elif any(phase.phase_status != SUCCEEDED for phase in self.phases if phase.phase_status is not None):
            status = FAILED
        else:
            status = SUCCEEDED
        failure = next((phase.contexts[0] for phase in self.phases if phase.contexts), None)
        if failure is None and status == FAULT:
            failure = {"statusCode": "CLIENT_ERROR", "message": "the build ended unexpectedly"}
        elif failure is None and status in (TIMED_OUT, STOPPED):
            failure = _interruption_context(status)
        self.log.line(f"[sagepipe local build] {self.request.build_id} completed: {status}")
        return BuildResult(
            build_status=status,
            phases=tuple(self.phases),
            resolved_source_version=self.resolved,
            source_dir=self.layout.source,
            exported_variables=self.exported,
            skipped_commands=self.skipped,
            log_path=self.request.log_path,
            start_time=self.start,
            end_time=end,
            failure_message=None if failure is None else f"{failure['statusCode']}: {failure['message']}",
        )


def _interruption_context(status: str) -> dict[str, str]:
    return dict(_TIMED_OUT_CONTEXT if status == TIMED_OUT else _STOPPED_CONTEXT)


# ---------------------------------------------------------------------------------------------- docker and aws

_REGISTRY_PROGRAMS: Final = frozenset({"docker", "aws"})
# After these words the shell still expects a command: reserved words, and programs that run the command after
# them (their options and, for env, assignments may come first).
_RESERVED_WORDS: Final = frozenset({"!", "{", "if", "then", "else", "elif", "do", "while", "until", "time"})
_PREFIX_PROGRAMS: Final = frozenset({"exec", "command", "builtin", "nohup", "sudo", "env", "xargs"})
_COMMAND_PREFIXES: Final = _RESERVED_WORDS | _PREFIX_PROGRAMS
_OPERATORS: Final = frozenset(";&|()")
_WORD_ENDS: Final = frozenset(" \t\n;&|()<>")
_ASSIGNMENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")


class _ShellScanner:
    """Finds the words bash would run as programs: enough of bash's grammar to tell `docker build` from `echo docker`.

    Quoting, escapes, operators, keywords, assignments, redirections, command substitution ($(...), `...`,
    <(...)) and here-documents are understood. A program run indirectly (`eval "docker ..."`, `bash -c '...'`, a
    script that calls docker) is not seen, and runs: keep registry work in commands of its own, as buildspec.yml's
    header asks. Its failure then shows in the build, as the missing docker would.
    """

    def __init__(self, text: str, *, arguments_only: bool = False) -> None:
        self.text = text
        self.pos = 0
        self.found: list[str] = []
        self.arguments_only = arguments_only
        self.heredocs: list[tuple[str, bool]] = []

    def command_words(self) -> list[str]:
        expect_command, after_prefix, word_before = True, False, ""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t" or text.startswith("\\\n", self.pos):
                self.pos += 2 if char == "\\" else 1
            elif char == "\n" or char in _OPERATORS:
                self.pos += 1
                if char == "\n":
                    self.skip_heredoc_bodies()
                expect_command, after_prefix = True, False
            elif char == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif char in "<>":
                self.redirection()
            else:
                raw, value = self.word()
                if raw.isdigit() and text.startswith(("<", ">"), self.pos):
                    continue  # the descriptor of a redirection, as in 2>/dev/null
                if self.arguments_only or not expect_command or _ASSIGNMENT.match(raw):
                    continue  # an argument, or an assignment before the command
                if after_prefix and value.startswith("-"):
                    # sudo -E, env -i, time -p: the command is still to come; `command -v docker` only looks it up.
                    expect_command = not (word_before == "command" and value in ("-v", "-V"))
                    continue
                self.found.append(value)
                after_prefix, word_before = value in _COMMAND_PREFIXES, value
                expect_command = after_prefix
        return self.found

    def word(self) -> tuple[str, str]:
        """Read one word; return its text and its value with the quotes removed (expansions left out)."""
        start, value, text = self.pos, [], self.text
        while self.pos < len(text) and text[self.pos] not in _WORD_ENDS:
            char = text[self.pos]
            if char == "\\":
                value.append(text[self.pos + 1 : self.pos + 2])
                self.pos += 2
            elif char == "'":
                end = self.closing("'", self.pos + 1, escapes=False)
                value.append(text[self.pos + 1 : end])
                self.pos = end + 1
            elif text.startswith("$'", self.pos):
                end = self.closing("'", self.pos + 2, escapes=True)
                value.append(text[self.pos + 2 : end])
                self.pos = end + 1
            elif char == '"':
                value.append(self.double_quoted())
            elif self.at_expansion():
                self.expansion()
            else:
                value.append(char)
                self.pos += 1
        return text[start : self.pos], "".join(value)

    def at_expansion(self) -> bool:
        return self.text.startswith(("$(", "${", "`"), self.pos)

    def expansion(self) -> None:
        """At $(, ${ or a backquote: collect the programs that run inside, and step over it."""
        text, pos = self.text, self.pos
        if text.startswith("$((", pos):
            self.pos = self.balanced(pos + 1)[1]  # arithmetic, which runs nothing
        elif text.startswith("$(", pos):
            inner, self.pos = self.balanced(pos + 1)
            self.found += _ShellScanner(inner).command_words()
        elif text.startswith("${", pos):
            inner, self.pos = self.balanced(pos + 1)
            self.found += _ShellScanner(inner, arguments_only=True).command_words()
        else:
            end = self.closing("`", pos + 1, escapes=True)
            self.found += _ShellScanner(text[pos + 1 : end].replace("\\`", "`")).command_words()
            self.pos = end + 1

    def double_quoted(self) -> str:
        value, text = [], self.text
        self.pos += 1
        while self.pos < len(text) and text[self.pos] != '"':
            char = text[self.pos]
            if char == "\\":
                value.append(text[self.pos + 1 : self.pos + 2])
                self.pos += 2
            elif self.at_expansion():
                self.expansion()
            else:
                value.append(char)
                self.pos += 1
        self.pos += 1
        return "".join(value)

    def closing(self, quote: str, start: int, *, escapes: bool) -> int:
        """Index of the quote that closes a quoted span starting at start (len(text) if none)."""
        pos = start
        while pos < len(self.text) and self.text[pos] != quote:
            pos += 2 if escapes and self.text[pos] == "\\" else 1
        return min(pos, len(self.text))

    def balanced(self, open_at: int) -> tuple[str, int]:
        """The text inside the ( or { at open_at and the index after its match; quotes are skipped whole."""
        depth, pos, text = 0, open_at, self.text
        opener = text[open_at]
        closer = {"(": ")", "{": "}"}[opener]
        while pos < len(text):
            char = text[pos]
            if char == "\\":
                pos += 1
            elif char in "'\"":
                pos = self.closing(char, pos + 1, escapes=char == '"')
            elif char == opener:
                depth += 1
            elif char == closer:
                depth -= 1
                if depth == 0:
                    return text[open_at + 1 : pos], pos + 1
            pos += 1
        return text[open_at + 1 :], len(text)

    def redirection(self) -> None:
        """At < or >: a process substitution runs its contents; otherwise the operator's target is not a command."""
        text = self.text
        if text.startswith(("<(", ">("), self.pos):
            inner, self.pos = self.balanced(self.pos + 1)
            self.found += _ShellScanner(inner).command_words()
            return
        heredoc = text.startswith("<<", self.pos) and not text.startswith("<<<", self.pos)
        strip_tabs = text.startswith("<<-", self.pos)
        while self.pos < len(text) and text[self.pos] in "<>&|-":
            self.pos += 1
        while self.pos < len(text) and text[self.pos] in " \t":
            self.pos += 1
        if self.pos < len(text) and text[self.pos] not in _WORD_ENDS:
            _, target = self.word()
            if heredoc:
                self.heredocs.append((target, strip_tabs))

    def skip_heredoc_bodies(self) -> None:
        """After a newline: step over the bodies of the here-documents opened on the line before."""
        for delimiter, strip_tabs in self.heredocs:
            while self.pos < len(self.text):
                end = self.text.find("\n", self.pos)
                end = len(self.text) if end < 0 else end
                line = self.text[self.pos : end]
                self.pos = end + 1
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
        self.heredocs.clear()

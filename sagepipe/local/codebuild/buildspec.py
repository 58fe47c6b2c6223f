"""Reads a buildspec with CodeBuild's rules (buildspec reference, version 0.2).

A buildspec CodeBuild would refuse, or one the local build cannot run faithfully (another shell, values that
live in AWS), is a `BuildspecError`: the build fails in DOWNLOAD_SOURCE with YAML_FILE_ERROR, as CodeBuild's
does. What the local build accepts but does not apply is returned as notes for the build log.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from sagepipe.local.codebuild.results import BUILD, INSTALL, POST_BUILD, PRE_BUILD

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
NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A shell variable name."""


class BuildspecError(Exception):
    """A buildspec CodeBuild would not run; the build fails in DOWNLOAD_SOURCE with YAML_FILE_ERROR."""


@dataclass(frozen=True)
class Command:
    index: int
    """Its position among all the buildspec's commands (finally blocks included)."""
    text: str


@dataclass(frozen=True)
class PhaseSpec:
    phase_type: str
    on_failure: str
    commands: tuple[Command, ...]
    finally_commands: tuple[Command, ...]
    notes: tuple[str, ...]
    """Logged when the phase starts."""


@dataclass(frozen=True)
class Buildspec:
    phases: tuple[PhaseSpec, ...]
    """Always the four command phases, in order: CodeBuild goes through the ones a buildspec leaves out too."""
    variables: dict[str, str]
    exported_variables: tuple[str, ...]
    notes: tuple[str, ...]
    """Logged in DOWNLOAD_SOURCE."""

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(command for phase in self.phases for command in (*phase.commands, *phase.finally_commands))


def read_buildspec(source: Path, buildspec_path: str) -> tuple[str, str]:
    """The buildspec's text and a name for it in messages (YAML text with a newline is an inline buildspec)."""
    if "\n" in buildspec_path:
        return buildspec_path, "the inline buildspec"
    relative = Path(buildspec_path)
    if relative.is_absolute() or ".." in relative.parts:
        raise BuildspecError(f"buildspec path {buildspec_path} is not inside the source")
    try:
        return (source / relative).read_bytes().decode(), buildspec_path
    except FileNotFoundError as error:
        raise BuildspecError(f"{buildspec_path} was not found in the source") from error
    except (OSError, UnicodeDecodeError) as error:
        raise BuildspecError(f"{buildspec_path} cannot be read: {error}") from error


def parse_buildspec(text: str, name: str) -> Buildspec:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise BuildspecError(f"{name} is not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise BuildspecError(f"{name} must be a YAML mapping with version and phases")
    version = document.get("version")
    if str(version) != "0.2":
        raise BuildspecError(f"{name} has version {version!r}; the local build runs buildspec version 0.2 only")
    notes: list[str] = []
    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            raise BuildspecError(f"{name} has an unknown top-level key {key!r}")
        if key in _NOT_APPLIED_TOP_LEVEL:
            notes.append(f"{key}: not applied by the local build")
    variables, exported = _parse_env(document.get("env"), notes)
    return Buildspec(
        phases=_parse_phases(document.get("phases")),
        variables=variables,
        exported_variables=exported,
        notes=tuple(notes),
    )


def _parse_env(raw: object, notes: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    env = _mapping(raw, "env")
    unknown = sorted(str(key) for key in env if key not in _ENV_KEYS)
    if unknown:
        raise BuildspecError(f"env has unknown keys {unknown}")
    shell = env.get("shell")
    if shell is None:
        notes.append(
            "env/shell is not set: CodeBuild would run the commands with /bin/sh, the local build runs them with "
            "bash, so bash-only syntax passes here and can fail there"
        )
    elif shell != "bash":
        raise BuildspecError(
            f"env/shell {shell!r} is not supported by the local build, which runs commands with bash only"
        )
    for secret_key in ("parameter-store", "secrets-manager"):
        if env.get(secret_key):
            raise BuildspecError(f"env/{secret_key} is not supported by the local build: its values live in AWS")
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


def _parse_phases(raw: object) -> tuple[PhaseSpec, ...]:
    if raw is None:
        raise BuildspecError("the buildspec has no phases")
    phases = _mapping(raw, "phases")
    known = {key for key, _ in _SPEC_PHASES}
    unknown = sorted(str(key) for key in phases if key not in known)
    if unknown:
        raise BuildspecError(
            f"phases has unknown phases {unknown}; the phases are install, pre_build, build, post_build"
        )
    counter = itertools.count()
    return tuple(_parse_phase(key, phase_type, phases.get(key), counter) for key, phase_type in _SPEC_PHASES)


def _parse_phase(key: str, phase_type: str, raw: object, counter: Iterator[int]) -> PhaseSpec:
    phase = _mapping(raw, f"phases/{key}")
    unknown = sorted(str(name) for name in phase if name not in _PHASE_KEYS)
    if unknown:
        raise BuildspecError(f"phases/{key} has unknown keys {unknown}")
    on_failure = phase.get("on-failure", "ABORT")
    if on_failure not in _ON_FAILURE:
        raise BuildspecError(f"phases/{key}/on-failure {on_failure!r} is not supported locally; use ABORT or CONTINUE")
    notes: list[str] = []
    runtime_versions = phase.get("runtime-versions")
    if runtime_versions is not None:
        if key != "install":
            raise BuildspecError(f"phases/{key}/runtime-versions: runtime versions belong to the install phase")
        versions = ", ".join(f"{runtime}: {version}" for runtime, version in _mapping(runtime_versions, key).items())
        notes.append(
            f"runtime-versions ({versions}) not applied locally: the venv's Python runs the build "
            f"({sys.executable}, Python {sys.version.split()[0]})"
        )
    if "run-as" in phase:
        notes.append(f"phases/{key}/run-as: not applied locally; commands run as the current user")

    def commands(block: str) -> tuple[Command, ...]:
        texts = [
            _scalar(item, f"phases/{key}/{block}[{number}]")
            for number, item in enumerate(_sequence(phase.get(block), f"phases/{key}/{block}"))
        ]
        if any("\0" in text for text in texts):
            raise BuildspecError(f"phases/{key}/{block} has a NUL character, which no shell command can hold")
        # A `|` block's final newline would only print a blank line after "Running command" and in messages.
        return tuple(Command(next(counter), text.rstrip("\n")) for text in texts)

    return PhaseSpec(phase_type, str(on_failure), commands("commands"), commands("finally"), tuple(notes))


def _mapping(raw: object, where: str) -> dict[object, object]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BuildspecError(f"{where} must be a mapping")
    return raw


def _sequence(raw: object, where: str) -> list[object]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BuildspecError(f"{where} must be a list")
    return raw


def _scalar(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # YAML's spelling, which is what the buildspec's author wrote
    if isinstance(value, str | int | float):
        return str(value)
    if value is None:
        return ""
    kind = "a mapping (quote a command that contains ': ')" if isinstance(value, dict) else type(value).__name__
    raise BuildspecError(f"{where} must be a string, found {kind}")


def _variable_name(value: object, where: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise BuildspecError(f"{where}: {value!r} is not a valid environment variable name")
    return value

"""What a local build reports: CodeBuild's statuses and phases, and the build's result.

The names follow CodeBuild's API (BuildPhase.phaseType and phaseStatus, Build.buildStatus), so the adapter can
write them into moto's build record as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

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

# CodeBuild's phase contexts for the ways a build can end early.
_TIMED_OUT_CONTEXT: Final = {"statusCode": "BUILD_TIMED_OUT", "message": "Build has timed out. "}
_STOPPED_CONTEXT: Final = {"statusCode": "BUILD_STOPPED", "message": "Build was stopped. "}


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
class ToolCall:
    """One call of the build's `docker` or `aws` (the stubs on its PATH), as the stub recorded it."""

    argv: tuple[str, ...]
    """The program's name, then its arguments (a password given on the command line is masked)."""
    cwd: str
    time: datetime
    exit_status: int

    @property
    def program(self) -> str:
        return self.argv[0]


@dataclass(frozen=True)
class BuildResult:
    """What BatchGetBuilds would say of the build once it completed."""

    build_status: str
    phases: tuple[Phase, ...]
    resolved_source_version: str
    """The commit checked out, "WORKTREE-<sha256 prefix>" for a working-tree build, "" when no source was got."""
    source_dir: Path
    """The checked-out tree, kept."""
    exported_variables: dict[str, str]
    """env/exported-variables as they were when post_build ended; unset ones are left out."""
    tool_calls: tuple[ToolCall, ...]
    """Every `docker` and `aws` call the build made, in the order they ended."""
    log_path: Path
    start_time: datetime
    end_time: datetime
    failure_message: str | None
    """"<statusCode>: <message>" of the first phase that did not succeed."""


def now() -> datetime:
    return datetime.now(UTC)


def phase(
    phase_type: str,
    status: str | None,
    start: datetime,
    end: datetime | None,
    contexts: tuple[dict[str, str], ...] = (),
) -> Phase:
    duration = None if end is None else max(0, int((end - start).total_seconds()))
    return Phase(phase_type, status, start, end, duration, contexts)


def interruption_context(status: str) -> dict[str, str]:
    """The phase context CodeBuild gives a build that timed out or was stopped."""
    return dict(_TIMED_OUT_CONTEXT if status == TIMED_OUT else _STOPPED_CONTEXT)

"""What the adapters need to know about the local stack, in one place.

moto's backends are process-wide, so there is one local runtime per process: the emulator creates this
context when it starts, the provisioner fills in the functions and build projects it creates, and the
adapters read it while serving requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagepipe.local.account import LocalAccount
from sagepipe.local.faults import FaultPlan, LocalClock

if TYPE_CHECKING:
    from sagepipe.local.images import ImageStore


S3_COPY_OBJECT_MAX_BYTES = 5 * 1024**3
"""5,368,709,120 bytes: the largest source S3's CopyObject copies in one request (Amazon S3 API Reference,
CopyObject); a larger one fails with InvalidRequest (adapters/s3_copy_limit.py)."""


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function of the template, as the in-process Lambda runtime runs it."""

    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int


@dataclass(frozen=True)
class BuildProjectSpec:
    """A CodeBuild project of the template, as the local build runs it."""

    name: str
    environment: dict[str, str]
    timeout_seconds: int
    buildspec: str = "buildspec.yml"


@dataclass(frozen=True)
class StartedExecution:
    """An execution an EventBridge rule started: which event, which rule."""

    execution_arn: str
    event_id: str
    rule_name: str
    event: dict[str, Any]


@dataclass
class RuntimeContext:
    state_dir: Path
    endpoint: str
    client_factory: Callable[[str], Any]
    repository: Path | None = None
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    build_projects: dict[str, BuildProjectSpec] = field(default_factory=dict)
    started_executions: list[StartedExecution] = field(default_factory=list)
    job_logs: dict[str, Path] = field(default_factory=dict)
    """Log file of each local build (by build id) and training job (by job name)."""
    clock: LocalClock = field(default_factory=LocalClock)
    """Retry waits and timeouts of this local run (tests shorten them; the definition is unchanged)."""
    faults: FaultPlan = field(init=False)
    """Faults tests arm on the integrations (sagepipe.local.faults)."""
    copy_object_max_bytes: int = S3_COPY_OBJECT_MAX_BYTES
    """The largest source S3 CopyObject accepts here (AWS's limit; tests lower it to stand for a 5 GiB object)."""
    account: LocalAccount = field(default_factory=LocalAccount)
    """Quotas, Lambda's account limit and connections, which moto lacks (sagepipe.local.account)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _execution_started: threading.Condition = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._execution_started = threading.Condition(self._lock)
        self.faults = FaultPlan(self.clock)

    def client(self, service: str) -> Any:
        return self.client_factory(service)

    def function(self, name_or_arn: str) -> FunctionSpec | None:
        name = name_or_arn.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        return self.functions.get(name)

    @property
    def images(self) -> ImageStore:
        from sagepipe.local.images import ImageStore

        return ImageStore(self.state_dir / "images")

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def work_dir(self) -> Path:
        return self.state_dir / "work"

    # ------------------------------------------------------------------ executions started by rules
    def record_execution(self, started: StartedExecution) -> None:
        with self._execution_started:
            self.started_executions.append(started)
            self._execution_started.notify_all()

    def executions_since(self, index: int) -> list[StartedExecution]:
        with self._lock:
            return list(self.started_executions[index:])

    def execution_count(self) -> int:
        with self._lock:
            return len(self.started_executions)

    def wait_for_executions(self, since: int, count: int, timeout: float) -> list[StartedExecution]:
        """Block until `count` executions have started after index `since`, or the timeout passes."""
        with self._execution_started:
            self._execution_started.wait_for(lambda: len(self.started_executions) - since >= count, timeout=timeout)
            return list(self.started_executions[since:])


_current: RuntimeContext | None = None


def set_current(context: RuntimeContext) -> None:
    global _current  # noqa: PLW0603 - moto's backends are process-wide; so is the context that serves them
    _current = context


def current() -> RuntimeContext:
    if _current is None:
        raise RuntimeError("the sagepipe local runtime is not running (start an Emulator first)")
    return _current


def copy_object_max_bytes() -> int:
    """The running runtime's CopyObject limit; AWS's when none runs (moto in process, after an emulator stopped)."""
    return _current.copy_object_max_bytes if _current is not None else S3_COPY_OBJECT_MAX_BYTES

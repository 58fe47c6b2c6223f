"""What the local services need to know about the running local stack, in one place.

moto's backends are process-wide, so there is one local runtime per process: the emulator creates this context
when it starts and makes it the current one, the provisioner fills in what it creates, and the services read
it while serving requests. Each service package keeps its own state here (its job registry, caches, the
functions it runs) as an object of its own type, created on first use by `state()`: the core knows no
service, and `reset()` forgets every service's state at once. Memos (`memo()`) hold only results of pure
functions of their keys, such as a definition's parse, and outlive a reset.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from sagepipe.local.core.in_process import InProcessTransport


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
    """The git repository local builds check out."""
    transport: InProcessTransport | None = None
    """How clients in this process reach the emulator's server application without a socket (None: over HTTP)."""
    started_executions: list[StartedExecution] = field(default_factory=list)
    job_logs: dict[str, Path] = field(default_factory=dict)
    """Log file of each local build (by build id) and training job (by job name)."""
    _states: dict[type[Any], Any] = field(default_factory=dict, repr=False)
    _memos: dict[type[Any], Any] = field(default_factory=dict, repr=False)
    _resources: dict[type[Any], Any] = field(default_factory=dict, repr=False)
    _memo_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    """Its own lock (memos and resources): a state's constructor, which runs under _lock, may read a memo."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _execution_started: threading.Condition = field(init=False, repr=False)
    _executions_ended: int = field(default=0, repr=False)
    _execution_ended: threading.Condition = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._execution_started = threading.Condition(self._lock)
        self._execution_ended = threading.Condition(self._lock)

    def client(self, service: str) -> Any:
        return self.client_factory(service)

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def work_dir(self) -> Path:
        return self.state_dir / "work"

    # ------------------------------------------------------------------ the services' own state
    def state[S](self, kind: type[S]) -> S:
        """This runtime's state of one service: the instance of `kind` it keeps, created (`kind()`) on first use."""
        with self._lock:
            found = self._states.get(kind)
            if found is None:
                found = self._states[kind] = kind()
            return cast(S, found)

    def memo[M](self, kind: type[M]) -> M:
        """This runtime's memo of one kind: results of pure functions of their keys (a definition's parse, a
        template's translation), created (`kind()`) on first use. Unlike `state()`, `reset()` keeps it: it
        holds nothing a run could have changed, only work that need not be done twice."""
        return self._kept(self._memos, kind)

    def resource[R](self, kind: type[R]) -> R:
        """This runtime's long-lived helper of one kind (a warm process a service forks jobs from), created
        (`kind()`) on first use. `reset()` keeps it, as it holds nothing of a run; `close()` ends it."""
        return self._kept(self._resources, kind)

    def _kept[K](self, table: dict[type[Any], Any], kind: type[K]) -> K:
        with self._memo_lock:
            found = table.get(kind)
            if found is None:
                found = table[kind] = kind()
            return cast(K, found)

    def close(self) -> None:
        """End the runtime's long-lived helpers (the services' state stays readable)."""
        with self._memo_lock:
            resources = list(self._resources.values())
            self._resources.clear()
        _close_each(resources)

    def reset(self) -> None:
        """Forget every service's state (job registries, caches, armed faults, limits), as a fresh runtime has
        none. A state with a `close()` is closed first (a fault plan lets its hung calls go)."""
        with self._lock:
            states = list(self._states.values())
            self._states.clear()
        _close_each(states)

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

    # ------------------------------------------------------------------ executions ending
    def record_execution_end(self) -> None:
        """An execution's evaluation is over (its status is final): wake whoever waits on an end."""
        with self._execution_ended:
            self._executions_ended += 1
            self._execution_ended.notify_all()

    def wait_for_execution_ends(
        self, condition: Callable[[], object], *, timeout: float, recheck: float, at_most_every: float = 0.0
    ) -> bool:
        """Call `condition` now, whenever an execution of this runtime ends (but not more often than
        `at_most_every` seconds: ends come by the hundred in a storm), and at least every `recheck` seconds, until it
        returns something true (True) or `timeout` seconds pass (False).

        Waiting on the end itself, rather than asking the emulator every few milliseconds whether it came, leaves
        the interpreter to the executions: polling DescribeExecution every 50 ms took 15% of the samples that held
        it in a fault-matrix run (py-spy --gil, 2026-12-02). `condition` runs without the context's lock held (it
        may call the emulator, whose handlers take it)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                seen = self._executions_ended
            checked = time.monotonic()
            if condition():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._execution_ended:
                if self._executions_ended == seen:
                    self._execution_ended.wait(timeout=min(recheck, remaining))
            pause = min(checked + at_most_every, deadline) - time.monotonic()
            if pause > 0:
                time.sleep(pause)


def _close_each(objects: list[Any]) -> None:
    for each in objects:
        close = getattr(each, "close", None)
        if callable(close):
            close()


_current: RuntimeContext | None = None
"""The one module global the local runtime keeps: moto's backends are process-wide, and so is the context that
serves them (the other is moto_internals' registry of moto's original attributes)."""


def set_current(context: RuntimeContext) -> None:
    global _current  # noqa: PLW0603 - moto's backends are process-wide; so is the context that serves them
    _current = context


def current() -> RuntimeContext:
    if _current is None:
        raise RuntimeError("the sagepipe local runtime is not running (start an Emulator first)")
    return _current


def current_or_none() -> RuntimeContext | None:
    """The running runtime's context, or None when none runs (moto in process, after an emulator stopped)."""
    return _current

"""Executions are evaluated on a few threads at a time, in the order they were started.

The gap
    moto's engine gives every started execution a thread of its own at once (`ExecutionWorker.start`). All of
    them share one interpreter lock, so a storm of 1,000 deliveries leaves hundreds of executions runnable
    together: each gets a 5 ms turn in hundreds, the delivery that starts the next execution waits its turn among
    them, and the garbage collector walks every live execution's program. The process then used half a core
    and routed 21-23 events/s (`bench/trigger_storm.py`).

What this adapter does
    StartExecution still does, at once, what AWS answers it with: the execution exists, RUNNING, with its
    ExecutionStarted event in its history. Only its evaluation (the program's copy and every state) is handed
    to the runtime's `ExecutionSlots`: a first-in, first-out queue served by at most `BASE_SLOTS` threads.
    A slot is held for a whole execution, including while it waits on a `.sync` job, a Wait state or a task
    token; so that such waits cannot hold up the queue, a watchdog adds one thread whenever the queue has
    waited `STALL_SECONDS` with no execution started or ended (the starvation rule of .NET's thread pool),
    and threads beyond the base end when the queue is empty. A StopExecution of an execution still queued
    stops it before its first state, as it would a running one. When an evaluation is over, the runtime
    context wakes whoever waits on an execution's end (`RuntimeContext.wait_for_execution_ends`: the runner's
    `follow` and `wait_until_idle`), so that they need not poll DescribeExecution.

How it differs from AWS
    AWS runs the executions of an account side by side, limited by its state-transition token bucket
    (Step Functions developer guide, "Step Functions service quotas", "Quotas related to state
    throttling"), not by a handful of threads; StartExecution answers with the execution's ARN and start
    date only (botocore's `states` service model, `StartExecutionOutput`), so when its first state runs is
    not part of the contract. Here a storm's later executions start their first state later; a state
    machine's own TimeoutSeconds counts from its first state, not from StartExecution.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "execution_slots"

BASE_SLOTS: Final = 2
"""Executions evaluated at once, before the watchdog adds any: past two, CPU-bound executions only take turns
at the interpreter lock (`bench/trigger_storm.py --storm-only` routed fastest at 2; see the README)."""

STALL_SECONDS: Final = 0.25
"""How long the queue may wait with no execution started or ended before a thread is added."""

_WATCHDOG_MIN_WAIT: Final = 0.01

_MODULE: Final = "moto.stepfunctions.parser.backend.execution_worker"

_EVENT_NAMES: Final = (
    "EventDetails",
    "ExecutionStartedEventDetails",
    "HistoryEventExecutionDataDetails",
    "HistoryEventType",
    "to_json_str",
)

MOTO_INTERNALS: Final = (
    Internal(f"{_MODULE}:ExecutionWorker.start", parameters=("self",), why="starts a thread per execution"),
    Internal(
        f"{_MODULE}:ExecutionWorker._execution_logic",
        parameters=("self",),
        why="parses, records ExecutionStarted, evaluates and reports the end: split here in two",
    ),
    Internal(
        f"{_MODULE}:ExecutionWorker._get_evaluation_entrypoint",
        parameters=("self",),
        why="the program, evaluated on a slot's thread",
    ),
    Internal(
        f"{_MODULE}:ExecutionWorker._get_evaluation_environment",
        parameters=("self",),
        why="the environment, made at StartExecution so that a queued execution can be stopped",
    ),
    Internal(
        "moto.stepfunctions.parser.asl.eval.environment:Environment.is_running",
        parameters=("self",),
        why="a queued execution may have been stopped before its turn",
    ),
    Internal(
        "moto.stepfunctions.parser.asl.component.program.program:Program._eval_body",
        parameters=("self", "env"),
        why="records the end of a program stopped before its first state (Program.eval would raise)",
    ),
    *(
        Internal(f"{_MODULE}:{name}", why="names the ExecutionStarted event as _execution_logic does")
        for name in _EVENT_NAMES
    ),
)

log = logging.getLogger(__name__)


@dataclass
class ExecutionSlots:
    """The runtime's queue of executions waiting for a thread, and the threads serving it."""

    base_slots: int = BASE_SLOTS
    stall_seconds: float = STALL_SECONDS
    _queue: deque[Callable[[], None]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _work: threading.Condition = field(init=False)
    """Idle slot threads wait on it for work."""
    _watchdog_wake: threading.Condition = field(init=False)
    """The watchdog waits on it (a condition of its own, so that it never takes a notify meant for a slot)."""
    _threads: int = 0
    _idle: int = 0
    _progress: int = 0
    """Executions started or ended so far: the watchdog adds a thread when it stops moving."""
    _watchdog: threading.Thread | None = None
    _closed: bool = False

    def __post_init__(self) -> None:
        self._work = threading.Condition(self._lock)
        self._watchdog_wake = threading.Condition(self._lock)

    def submit(self, evaluation: Callable[[], None]) -> None:
        """Queue one execution's evaluation; it runs when a thread is free."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the runtime was reset: no execution starts in it any more")
            self._queue.append(evaluation)
            if self._idle:
                self._work.notify()
            elif self._threads < self.base_slots:
                self._add_thread()
            elif self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch, name="sfn-slots-watchdog", daemon=True)
                self._watchdog.start()
            else:
                self._watchdog_wake.notify()

    def queued(self) -> int:
        """Executions waiting for a thread."""
        with self._lock:
            return len(self._queue)

    def threads(self) -> int:
        """Threads serving the queue now, busy or idle."""
        with self._lock:
            return self._threads

    def close(self) -> None:
        """Drop what is still queued (a reset forgets its executions) and let the threads end."""
        with self._lock:
            self._closed = True
            dropped = len(self._queue)
            self._queue.clear()
            self._work.notify_all()
            self._watchdog_wake.notify_all()
        if dropped:
            log.info("reset: %d queued execution(s) never evaluated", dropped)

    def _add_thread(self) -> None:
        # Called with the lock held.
        self._threads += 1
        threading.Thread(target=self._serve, name=f"sfn-slot-{self._threads}", daemon=True).start()

    def _serve(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed and self._threads <= self.base_slots:
                    self._idle += 1
                    self._work.wait()
                    self._idle -= 1
                if not self._queue:  # closed, or a thread beyond the base with nothing left to do
                    self._threads -= 1
                    return
                evaluation = self._queue.popleft()
                self._progress += 1
            try:
                evaluation()
            except Exception:  # moto's own thread would end the same way; the slot serves on
                log.exception("an execution's evaluation raised")
            finally:
                with self._lock:
                    self._progress += 1

    def _watch(self) -> None:
        with self._lock:
            seen, since = self._progress, time.monotonic()
            while not self._closed:
                if not self._queue:
                    self._watchdog_wake.wait()  # until submit() queues one, or close()
                    seen, since = self._progress, time.monotonic()
                    continue
                now = time.monotonic()
                if self._progress != seen:
                    seen, since = self._progress, now
                elif not self._idle and now - since >= self.stall_seconds:
                    self._add_thread()
                    since = now
                self._watchdog_wake.wait(timeout=max(since + self.stall_seconds - now, _WATCHDOG_MIN_WAIT))


def _started_event(worker: Any) -> None:
    """Records ExecutionStarted, as moto's `_execution_logic` does before the first state."""
    names = {name: Internal(f"{_MODULE}:{name}").resolve(ADAPTER) for name in _EVENT_NAMES}
    details = worker._evaluation_details
    worker.env.event_manager.add_event(
        context=worker.env.event_history_context,
        event_type=names["HistoryEventType"].ExecutionStarted,
        event_details=names["EventDetails"](
            executionStartedEventDetails=names["ExecutionStartedEventDetails"](
                input=names["to_json_str"](details.execution_details.inpt),
                inputDetails=names["HistoryEventExecutionDataDetails"](truncated=False),
                roleArn=details.aws_execution_details.role_arn,
            )
        ),
        update_source_event_id=False,
    )


def _start(self: Any) -> None:
    runtime = context.current_or_none()
    if runtime is None:  # moto in process, with no runtime to queue in: moto's own thread
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        original_attribute(ExecutionWorker, "start")(self)
        return
    self.env = self._get_evaluation_environment()
    # moto's environment has no program state until the program names its first state, and its set_stop
    # ignores a program that is not running: naming none yet marks it running, so a stop while queued holds.
    self.env.next_state_name = None
    _started_event(self)

    def evaluate() -> None:
        try:
            program = self._get_evaluation_entrypoint()
            if self.env.is_running():
                program.eval(self.env)
            else:  # stopped while queued: Program.eval refuses a stopped program; its body records ExecutionAborted
                program._eval_body(self.env)
            self._execution_communication.terminated()
        finally:
            runtime.record_execution_end()

    runtime.state(ExecutionSlots).submit(evaluate)


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    replace_attribute(ExecutionWorker, "start", _start)

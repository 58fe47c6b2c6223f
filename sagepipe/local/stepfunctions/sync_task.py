"""What the local `.sync` integrations (CodeBuild, SageMaker) share: a job running on a thread of its own, a
registry of those jobs in the runtime context, a resolver the engine polls, cancellation when the task is
abandoned, and AWS-shaped failures."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from sagepipe import error_names
from sagepipe.local.core.moto_internals import Internal

MOTO_INTERNALS: Final = (
    Internal(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback:"
        "StateTaskServiceCallback._build_sync_resolver",
        parameters=("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"),
        why="the engine asks it for a resolver and polls that resolver until it returns a result",
    ),
    Internal(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback:"
        "StateTaskServiceCallback._eval_sync",
        parameters=("self", "env", "sync_resolver", "timeout_seconds", "callback_endpoint", "heartbeat_endpoint"),
    ),
    Internal(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service:"
        "StateTaskService._eval_service_task",
        parameters=("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"),
    ),
    Internal(
        "moto.stepfunctions.parser.asl.component.common.error_name.failure_event:FailureEventException",
        why="a task fails with a catchable error by raising it",
    ),
    Internal("moto.stepfunctions.parser.asl.eval.environment:Environment.is_running", parameters=("self",)),
    Internal(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback:"
        "StateTaskServiceCallback._eval_integration_pattern",
        parameters=("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"),
        why="interrupts the task-token endpoint it only creates when waitForTaskToken is listed as supported",
    ),
    Internal(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback:"
        "StateTaskServiceCallback._assert_integration_pattern_is_supported",
        parameters=("self",),
    ),
)

RESOLVER_WAIT_SECONDS: Final = 1.0
"""How long one resolver call blocks for the job to finish (`sync_resolver`): it returns as soon as the job
ends, so a step's latency is the job's own duration. LocalSyncTask._eval_sync calls it again at once after a
"not yet", checking in between that the execution still runs."""

WATCH_INTERVAL_SECONDS: Final = 0.2


@dataclass
class LocalJob:
    """A job the local runtime runs for a `.sync` task."""

    job_id: str
    done: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def run_in_background(self, work: Callable[[LocalJob], None], name: str) -> None:
        def target() -> None:
            try:
                work(self)
            except BaseException as error:  # reported through the job, never lost on a thread
                self.error = error
            finally:
                self.done.set()

        threading.Thread(target=target, name=name, daemon=True).start()


@dataclass
class JobRegistry:
    """The local jobs of one service, by id. Each service subclasses it, so that the runtime context keeps one
    registry per service (`runtime.state(LocalBuilds)`) and `Emulator.reset()` forgets them."""

    jobs: dict[str, LocalJob] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, job: LocalJob) -> LocalJob:
        with self.lock:
            self.jobs[job.job_id] = job
        return job

    def get(self, job_id: str) -> LocalJob | None:
        with self.lock:
            return self.jobs.get(job_id)


def sync_resolver(job: LocalJob, finished: Callable[[], Any]) -> Callable[[], Any]:
    """The resolver moto's engine polls for a .sync task: None ("not yet") until the job is done, each call
    waiting up to RESOLVER_WAIT_SECONDS for it; then what `finished()` returns (or raises)."""

    def resolve() -> Any:
        if not job.done.wait(timeout=RESOLVER_WAIT_SECONDS):
            return None
        return finished()

    return resolve


def watch_for_abandonment(env: Any, job: LocalJob, on_abandon: Callable[[], None]) -> None:
    """When the execution stops or the task times out, AWS stops the job (StopBuild / StopTrainingJob)."""

    def watch() -> None:
        while not job.done.wait(WATCH_INTERVAL_SECONDS):
            if not env.is_running():
                job.cancel.set()
                on_abandon()
                return

    threading.Thread(target=watch, name=f"watch-{job.job_id}", daemon=True).start()


def task_failed(task: StateTaskServiceCallback, env: Any, cause: Any) -> FailureEventException:
    """The failure a .sync task reports when its job ends unsuccessfully: States.TaskFailed, cause = the job."""
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item]  # moto's TypedDict lists every kind
                taskFailedEventDetails=TaskFailedEventDetails(
                    resource=task._get_sfn_resource(),
                    resourceType=task._get_sfn_resource_type(),
                    error=StatesErrorNameType.StatesTaskFailed.to_name(),
                    cause=json.dumps(cause, separators=(",", ":"), default=str),
                )
            ),
        )
    )


def service_error(task: Any, env: Any, service: str, error: ClientError) -> FailureEventException:
    """An API error of an optimised integration, named and described as Step Functions does (the Java SDK 1.x
    exception class; sagepipe.error_names)."""
    naming = error_names.service(service, "optimised")
    code = str(error.response["Error"]["Code"])
    metadata = error.response.get("ResponseMetadata", {})
    name = error_names.error_name(naming, code)
    cause = error_names.error_cause(
        naming,
        code,
        message=error.response["Error"].get("Message", ""),
        status=metadata.get("HTTPStatusCode", 400),
        request_id=metadata.get("RequestId", ""),
    )
    return named_failure(task, env, name, cause)


def named_failure(task: Any, env: Any, name: str, cause: str) -> FailureEventException:
    """A task failure with this error name and cause, as moto's Catch, Retry and history read it."""
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=CustomErrorName(name),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item]  # moto's TypedDict lists every kind
                taskFailedEventDetails=TaskFailedEventDetails(
                    resource=task._get_sfn_resource(),
                    resourceType=task._get_sfn_resource_type(),
                    error=name,
                    cause=cause,
                )
            ),
        )
    )


def client_error(code: str, message: str, status: int = 400) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "local")


class LocalSyncTask(StateTaskServiceCallback):
    """A service integration the local runtime runs itself, supporting request-response and .sync."""

    service_label: str = ""
    service: str = ""
    """The botocore name of the service, which names its errors (sagepipe.error_names)."""
    supported: ClassVar[dict[str, set[str]]] = {}

    def __init__(self) -> None:
        # moto's callback base always sets up (and later interrupts) a task-token endpoint, and only creates it
        # when waitForTaskToken is listed as supported; so it is listed, and refused below as AWS refuses it.
        super().__init__(
            supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken}  # type: ignore[arg-type]
        )

    def _assert_integration_pattern_is_supported(self) -> None:
        if self.resource.condition == ResourceCondition.WaitForTaskToken:
            raise ValueError(
                f"{self.resource.resource_arn}: {self.service_label} supports request-response and .sync, "
                "not .waitForTaskToken"
            )

    def _eval_sync(
        self,
        env: Any,
        sync_resolver: Callable[[], Any] | None,
        timeout_seconds: int | None,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        """moto's loop without its pause: moto sleeps _DELAY_SECONDS_SYNC_CONDITION_CHECK (0.5 s) after each
        "not yet", so a job that ended during the pause was seen up to 0.5 s late. The local resolvers block
        themselves until the job ends (at most RESOLVER_WAIT_SECONDS a call), so the loop needs no pause. A
        .sync task waits for no task token (these tasks refuse .waitForTaskToken), so moto's token listener is
        not started either; with a heartbeat, moto's loop runs as it is."""
        if heartbeat_endpoint is not None or sync_resolver is None:
            return super()._eval_sync(
                env=env,
                sync_resolver=sync_resolver,
                timeout_seconds=timeout_seconds,
                callback_endpoint=callback_endpoint,
                heartbeat_endpoint=heartbeat_endpoint,
            )
        result: Any = None
        while env.is_running():
            result = sync_resolver()
            if result:
                break
        return result

    def _get_supported_parameters(self) -> set[str] | None:
        return self.supported.get(self.resource.api_action.lower())

    def _from_error(self, env: Any, ex: Exception) -> Any:
        if isinstance(ex, ClientError):
            return service_error(self, env, self.service, ex).failure_event
        return super()._from_error(env=env, ex=ex)

    def _eval_integration_pattern(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        if not env.is_running():
            # The state gave up (it timed out) before this call started its job: nobody will wait for the job.
            # Step Functions stops the job of a .sync task that gives up; so does the local runtime. (moto's own
            # wait would fail in this ended frame: its components no longer evaluate.)
            self._stop_abandoned_job(normalised_parameters, env.stack[-1] if env.stack else None)
            return
        super()._eval_integration_pattern(
            env=env,
            resource_runtime_part=resource_runtime_part,
            normalised_parameters=normalised_parameters,
            state_credentials=state_credentials,
        )

    def _stop_abandoned_job(self, normalised_parameters: dict[str, Any], task_output: Any) -> None:
        """Stop the job this task started, after its state gave up on it."""


def millis(value: Any) -> Any:
    """Step Functions presents the timestamps of optimised integrations as epoch milliseconds."""
    if hasattr(value, "timestamp"):
        return int(value.timestamp() * 1000)
    return value

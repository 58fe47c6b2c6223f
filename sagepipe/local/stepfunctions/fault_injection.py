"""Task integrations fail or hang when a test's fault plan says so (sagepipe.local.stepfunctions.faults).

The gap
    moto's services answer every valid call successfully: there is no way to make DynamoDB throttle on the
    third write, SNS refuse a publish, or a Lambda invocation hang, so a workflow's Retry and Catch paths
    cannot be exercised against its real definition.

What this adapter does
    Wraps `StateTaskService._before_eval_execution`, which every Task integration calls after scheduling
    and starting the task (so the history has TaskScheduled and TaskStarted, as on AWS) and just before
    calling the service. If an armed fault matches the call (integration, and state when the fault names
    one), the call either raises the service's error response as botocore would (named then as Step Functions
    names it, by the service_errors, aws_sdk and .sync adapters through sagepipe.error_names), or blocks until
    the state's (shortened) timeout has passed and the test lets it
    go. A call let go after its state timed out still reaches the service: a late writer, as on AWS;
    `_eval_execution` is wrapped to keep how that late call went.
    The .sync integrations call `after_call` once their job has started, for faults where the job starts
    and the response is lost.

How it differs from AWS
    With no fault armed, not at all. This is test tooling: see sagepipe.local.stepfunctions.faults for why a deployed
    stack cannot use it.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any, Final

from botocore.exceptions import ClientError

from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute
from sagepipe.local.stepfunctions.faults import InjectedCall, controls, injected_error

ADAPTER = "fault_injection"

_SERVICE_MODULE: Final = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service"
_RESOURCE_PREFIX: Final = "arn:aws:states:::"

MOTO_INTERNALS: Final = (
    Internal(
        f"{_SERVICE_MODULE}:StateTaskService._before_eval_execution",
        parameters=("self", "env", "resource_runtime_part", "raw_parameters", "state_credentials"),
        why="every Task integration calls it after TaskScheduled/TaskStarted, just before calling the service",
    ),
    Internal(
        f"{_SERVICE_MODULE}:StateTaskService._eval_execution",
        parameters=("self", "env"),
        why="runs _before_eval_execution, then the service call, in the state's timeout thread",
    ),
)

log = logging.getLogger(__name__)
_this_thread = threading.local()
"""The hung call this thread let through late, if any: its task's own call still follows."""


def integration_of(task: Any) -> str:
    """The Task's integration as the fault plan names it: its Resource after arn:aws:states:::, without .sync."""
    resource = str(task.resource.resource_arn).removeprefix(_RESOURCE_PREFIX)
    return resource.removesuffix(".sync").removesuffix(".waitForTaskToken")


def _where(env: Any) -> tuple[str, int]:
    data = env.states.context_object.context_object_data["State"]
    return str(data["Name"]), int(data.get("RetryCount", 0))


def _interfere(env: Any, integration: str, *, after_call: bool) -> None:
    plan = controls().faults
    state, retry_count = _where(env)
    call = plan.take(state=state, integration=integration, retry_count=retry_count, after_call=after_call)
    if call is None:
        return
    operation = integration.rsplit(":", 1)[-1]
    if call.outcome == "failed":
        log.info("fault plan: %s %s attempt %d fails with %s", state, integration, retry_count + 1, call.fault.error)
        raise injected_error(call, operation)
    log.info("fault plan: %s %s attempt %d hangs", state, integration, retry_count + 1)
    plan.wait_while_hung()
    # The state has timed out by now; the call itself still goes through (a late writer), and
    # _eval_execution keeps how it went for the test.
    _this_thread.late_call = call


def _eval_execution(self: Any, env: Any) -> None:
    module = importlib.import_module(_SERVICE_MODULE)
    _this_thread.late_call = None
    try:
        original_attribute(module.StateTaskService, "_eval_execution")(self, env)
    except Exception as error:
        _settle_late_call(error)
        raise
    _settle_late_call(None)


def _settle_late_call(error: Exception | None) -> None:
    call: InjectedCall | None = getattr(_this_thread, "late_call", None)
    if call is None:
        return
    _this_thread.late_call = None
    if error is None:
        call.late_result = "ok"
    elif isinstance(error, ClientError):
        call.late_result = str(error.response.get("Error", {}).get("Code"))
    else:
        call.late_result = type(error).__name__
    call.late_done.set()


def _before_eval_execution(
    self: Any, env: Any, resource_runtime_part: Any, raw_parameters: Any, state_credentials: Any
) -> None:
    module = importlib.import_module(_SERVICE_MODULE)
    original_attribute(module.StateTaskService, "_before_eval_execution")(
        self,
        env=env,
        resource_runtime_part=resource_runtime_part,
        raw_parameters=raw_parameters,
        state_credentials=state_credentials,
    )
    _interfere(env, integration_of(self), after_call=False)


def after_call(task: Any, env: Any) -> None:
    """For the .sync integrations, once the job has started: fail now if a fault says the response was lost."""
    _interfere(env, integration_of(task), after_call=True)


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    module = importlib.import_module(_SERVICE_MODULE)
    replace_attribute(module.StateTaskService, "_before_eval_execution", _before_eval_execution)
    replace_attribute(module.StateTaskService, "_eval_execution", _eval_execution)

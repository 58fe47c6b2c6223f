"""A DynamoDB Task that runs past its TimeoutSeconds fails with States.Timeout, as on AWS.

The gap
    moto's engine reports a Task that outlives its TimeoutSeconds as a TimeoutError, which `StateTask._from_error`
    turns into States.Timeout. The DynamoDB integration overrides `_from_error` and names every error that is
    not a service error `DynamoDB.AmazonDynamoDBException`, with an empty cause, timeouts included: a
    `"Retry": [{"ErrorEquals": ["States.Timeout"]}]` on a DynamoDB task never matches.

What this adapter does
    Wraps `StateTaskServiceDynamoDB._from_error`: a TimeoutError goes to the class it overrides (so the task
    fails with States.Timeout and a TaskTimedOut event); everything else still goes to moto's DynamoDB code.

How it differs from AWS
    It does not.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "task_timeouts"

_DYNAMODB_MODULE: Final = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb"
)

MOTO_INTERNALS: Final = (
    Internal(
        f"{_DYNAMODB_MODULE}:StateTaskServiceDynamoDB._from_error",
        parameters=("self", "env", "ex"),
        why="names a timeout DynamoDB.AmazonDynamoDBException instead of States.Timeout",
    ),
    Internal(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task:StateTask._from_error",
        parameters=("self", "env", "ex"),
        why="turns a TimeoutError into States.Timeout",
    ),
)


def _from_error(self: Any, env: Any, ex: Exception) -> Any:
    task_class = importlib.import_module(_DYNAMODB_MODULE).StateTaskServiceDynamoDB
    if isinstance(ex, TimeoutError):
        return super(task_class, self)._from_error(env=env, ex=ex)
    return original_attribute(task_class, "_from_error")(self, env, ex)


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    replace_attribute(importlib.import_module(_DYNAMODB_MODULE).StateTaskServiceDynamoDB, "_from_error", _from_error)

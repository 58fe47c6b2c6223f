"""Routes Task resources of services the local runtime runs itself (`codebuild:*`, `sagemaker:*`) to their
local integrations.

The gap
    moto's Step Functions parser picks a service task class per service with `state_task_service_for`;
    CodeBuild and SageMaker map to `StateTaskServiceUnsupported`, which cannot `.sync`.

What this adapter does
    Wraps the factory (in its own module and where state_task_factory imported it by name) with one that
    builds the local task class for each service it was given, and moto's class for every other service. The
    Step Functions package knows no service: the composition root (sagepipe.local.services) passes the
    task classes of the codebuild and sagemaker packages, and the wrapper keeps them (it is the patch; nothing
    else holds them). The factory runs when a definition is parsed, so this must be installed before state
    machines are created.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "service_tasks"

_FACTORY_MODULE: Final = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_factory"
)
_CALLER_MODULE: Final = "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_factory"

MOTO_INTERNALS: Final = (
    Internal(f"{_FACTORY_MODULE}:state_task_service_for", parameters=("service_name",)),
    Internal(
        f"{_CALLER_MODULE}:state_task_service_for",
        parameters=("service_name",),
        why="state_task_factory imports the factory by name, so it must be replaced there too",
    ),
)

TaskFactory = Callable[[], Any]


def factory(local_tasks: Mapping[str, TaskFactory]) -> Callable[[str], Any]:
    """moto's `state_task_service_for`, except that the services in `local_tasks` get their local task class."""
    tasks = dict(local_tasks)

    def state_task_service_for(service_name: str) -> Any:
        make = tasks.get(service_name)
        if make is not None:
            return make()
        return original_attribute(importlib.import_module(_FACTORY_MODULE), "state_task_service_for")(service_name)

    return state_task_service_for


def install(local_tasks: Mapping[str, TaskFactory]) -> None:
    """Route each service named in `local_tasks` (the botocore name, as in the Resource) to its task class."""
    check_all(ADAPTER, MOTO_INTERNALS)
    routed = factory(local_tasks)
    for module_name in (_FACTORY_MODULE, _CALLER_MODULE):
        replace_attribute(importlib.import_module(module_name), "state_task_service_for", routed)

"""Routes `codebuild:*` and `sagemaker:*` Task resources to the local integrations.

The gap
    moto's Step Functions parser picks a service task class per service with `state_task_service_for`;
    CodeBuild and SageMaker map to `StateTaskServiceUnsupported`, which cannot `.sync`.

What this adapter does
    Wraps the factory (in its own module and where state_task_factory imported it by name): `codebuild`
    gets codebuild_sync.CodeBuildTask and `sagemaker` gets sagemaker_sync.SageMakerTask; every other
    service keeps moto's class. The factory runs when a definition is parsed, so this must be installed
    before state machines are created.
"""

from __future__ import annotations

from typing import Any, Final

from sagepipe.local.adapters._moto import Internal, check_all, original_attribute, replace_attribute

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


def state_task_service_for(service_name: str) -> Any:
    from sagepipe.local.adapters.codebuild_sync import CodeBuildTask
    from sagepipe.local.adapters.sagemaker_sync import SageMakerTask

    if service_name == "codebuild":
        return CodeBuildTask()
    if service_name == "sagemaker":
        return SageMakerTask()
    import importlib

    factory = importlib.import_module(_FACTORY_MODULE)
    return original_attribute(factory, "state_task_service_for")(service_name)


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    import importlib

    for module_name in (_FACTORY_MODULE, _CALLER_MODULE):
        replace_attribute(importlib.import_module(module_name), "state_task_service_for", state_task_service_for)

"""The composition root of the local runtime: which services the emulator installs, and how they are wired.

The service packages do not know each other: Step Functions routes `codebuild:*` and `sagemaker:*` Task
resources to the task classes it is given here. The order is the one the patches were written for (each
patches a different moto class, except the Step Functions engine's, which its package installs in order).

Every adapter module has a docstring naming the gap, a `MOTO_INTERNALS` tuple listing the moto internals it
touches (each checked by a contract test in tests/contract), and an idempotent `install()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from sagepipe.local import (
    account,
    cloudformation,
    codebuild,
    codecommit,
    dynamodb,
    eventbridge,
    lambda_,
    s3,
    sagemaker,
    stepfunctions,
)
from sagepipe.local.core import jsonpath_cache, server_dispatch
from sagepipe.local.core.emulator import Emulator

ADAPTER_MODULES: Final = (
    "sagepipe.local.core.server_dispatch",
    "sagepipe.local.core.jsonpath_cache",
    "sagepipe.local.stepfunctions.jsonata",
    "sagepipe.local.stepfunctions.program_cache",
    "sagepipe.local.stepfunctions.value_copies",
    "sagepipe.local.stepfunctions.execution_slots",
    "sagepipe.local.stepfunctions.aws_sdk",
    "sagepipe.local.stepfunctions.service_tasks",
    "sagepipe.local.stepfunctions.task_clients",
    "sagepipe.local.stepfunctions.task_timeouts",
    "sagepipe.local.stepfunctions.service_errors",
    "sagepipe.local.stepfunctions.local_clock",
    "sagepipe.local.stepfunctions.fault_injection",
    "sagepipe.local.dynamodb.atomic",
    "sagepipe.local.dynamodb.attribute_values",
    "sagepipe.local.s3.bucket_policy",
    "sagepipe.local.s3.copy_limit",
    "sagepipe.local.s3.events",
    "sagepipe.local.eventbridge.targets",
    "sagepipe.local.lambda_.runtime",
    "sagepipe.local.codebuild.adapter",
    "sagepipe.local.sagemaker.adapter",
    "sagepipe.local.sagemaker.registry",
    "sagepipe.local.account.lambda_settings",
    "sagepipe.local.account.service_quotas",
    "sagepipe.local.account.code_connections",
    "sagepipe.local.codecommit.get_folder",
    "sagepipe.local.cloudformation.stacks",
)
"""Every module that patches moto (tests/contract checks each one's MOTO_INTERNALS)."""


def install_all() -> None:
    """Install every local service into moto (idempotent)."""
    server_dispatch.install()
    jsonpath_cache.install()
    stepfunctions.install({"codebuild": codebuild.task, "sagemaker": sagemaker.task})
    for service in (dynamodb, s3, eventbridge, lambda_, codebuild, codecommit, sagemaker, account, cloudformation):
        service.install()


def start_emulator(state_dir: Path, *, port: int | None = None) -> Emulator:
    """A running emulator with every local service installed."""
    return Emulator(state_dir=state_dir, port=port, install=install_all).start()

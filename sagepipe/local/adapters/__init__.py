"""One adapter per gap between moto and AWS, each in its own module.

Every adapter module has a docstring naming the gap, a `MOTO_INTERNALS` tuple listing the moto internals it
touches (each checked by a contract test in tests/contract), and an idempotent `install()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sagepipe.local.emulator import Emulator


def install_all(emulator: Emulator) -> None:
    """Install every adapter, and create the runtime context they read."""
    from sagepipe.local import context
    from sagepipe.local.adapters import (
        aws_sdk,
        cloudformation_stacks,
        code_connections,
        codebuild_sync,
        dynamodb_atomic,
        eventbridge_targets,
        fault_injection,
        jsonata,
        lambda_account_settings,
        lambda_runtime,
        local_clock,
        program_cache,
        s3_bucket_policy,
        s3_copy_limit,
        s3_events,
        sagemaker_sync,
        server_dispatch,
        service_errors,
        service_quotas,
        service_tasks,
        task_clients,
        task_timeouts,
    )

    context.set_current(
        context.RuntimeContext(state_dir=emulator.state_dir, endpoint=emulator.endpoint, client_factory=emulator.client)
    )
    for adapter in (
        server_dispatch,
        jsonata,
        program_cache,
        aws_sdk,
        dynamodb_atomic,
        s3_bucket_policy,
        s3_copy_limit,
        s3_events,
        eventbridge_targets,
        lambda_runtime,
        codebuild_sync,
        sagemaker_sync,
        service_tasks,
        task_clients,
        task_timeouts,
        service_errors,
        local_clock,
        fault_injection,
        lambda_account_settings,
        service_quotas,
        code_connections,
        cloudformation_stacks,
    ):
        adapter.install()


ADAPTER_MODULES = (
    "server_dispatch",
    "jsonata",
    "program_cache",
    "aws_sdk",
    "dynamodb_atomic",
    "s3_bucket_policy",
    "s3_copy_limit",
    "s3_events",
    "eventbridge_targets",
    "lambda_runtime",
    "codebuild_sync",
    "sagemaker_sync",
    "service_tasks",
    "task_clients",
    "task_timeouts",
    "service_errors",
    "local_clock",
    "fault_injection",
    "lambda_account_settings",
    "service_quotas",
    "code_connections",
    "cloudformation_stacks",
)

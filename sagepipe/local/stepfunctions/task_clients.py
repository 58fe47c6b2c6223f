"""Task states reuse one boto3 client per service instead of building one per call.

The gap
    moto's Step Functions engine calls `boto_client_for` for every Task state it runs, and each call builds a
    new boto3 client: it loads the service model and deep-copies the event emitter, about 15 ms of CPU. In a
    storm of 1,000 deliveries that is a fifth of the emulator's CPU time.

What this adapter does
    Wraps `boto_client_for` where the task integrations sagepipe's definition uses imported it by name
    (Lambda, DynamoDB, SNS and the aws-sdk integration) and keeps the client moto builds in the runtime context
    (so a reset or a new emulator, on another port, starts without them), one per region, service and state
    role (moto's clients ignore the role, but keeping them apart costs nothing). boto3 clients are
    thread-safe, and moto builds them with retries off, so sharing one changes no behaviour. Each client's
    requests reach the emulator's server application in process, without a socket (sagepipe/local/core/in_process.py).

How it differs from AWS
    It does not: this is only about the emulator's speed.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Final

from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "task_clients"

_FACTORY_MODULE: Final = "moto.stepfunctions.parser.asl.utils.boto_client"
_TASKS: Final = "moto.stepfunctions.parser.asl.component.state.exec.state_task"
CALLER_MODULES: Final = (
    f"{_TASKS}.lambda_eval_utils",
    f"{_TASKS}.service.state_task_service_dynamodb",
    f"{_TASKS}.service.state_task_service_sns",
    f"{_TASKS}.service.state_task_service_aws_sdk",
)

MOTO_INTERNALS: Final = (
    Internal(f"{_FACTORY_MODULE}:boto_client_for", parameters=("region", "service", "state_credentials")),
    *(
        Internal(
            f"{module}:boto_client_for",
            parameters=("region", "service", "state_credentials"),
            why="the task module imports boto_client_for by name, so it is wrapped there",
        )
        for module in CALLER_MODULES
    ),
)


@dataclass
class TaskClients:
    """The clients the runtime's Task states share, by region, service and state role."""

    clients: dict[tuple[str, str, str | None], Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    build = original_attribute(importlib.import_module(_FACTORY_MODULE), "boto_client_for")
    runtime = context.current_or_none()
    if runtime is None:
        return build(region, service, state_credentials)  # nowhere to keep it (moto in process): moto's way
    shared = runtime.state(TaskClients)
    key = (region, service, getattr(state_credentials, "role_arn", None))
    with shared.lock:
        client = shared.clients.get(key)
        if client is None:
            client = build(region, service, state_credentials)
            if runtime.transport is not None:
                # No socket to the emulator's own server: its application answers in this thread (in_process.py).
                runtime.transport.attach(client)
            shared.clients[key] = client
    return client


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    factory = importlib.import_module(_FACTORY_MODULE)
    replace_attribute(factory, "boto_client_for", boto_client_for)
    for module in CALLER_MODULES:
        replace_attribute(importlib.import_module(module), "boto_client_for", boto_client_for)

"""Step Functions: the deployed state machine runs on moto's ASL engine, with the gaps closed.

AWS
    Step Functions runs the state machine's definition: JSONata expressions, AWS's own JSONata functions,
    optimised and `aws-sdk:*` integrations whose errors it names after the Java SDK's exception classes,
    Retry waits and timeouts in real time.
Locally
    moto's engine (its port of LocalStack's interpreter) runs the same definition file. The modules here
    patch it: jsonata (the evaluator moto ships stubbed out), aws_sdk (AWS's casing and error names),
    service_errors and task_timeouts (the names optimised integrations fail with), program_cache,
    value_copies and task_clients (speed), execution_slots (executions evaluated a few at a time, so that a storm's
    deliveries are not slowed by its executions), service_tasks (routes the integrations other packages run
    themselves to their task classes), sync_task (what such `.sync` tasks share), provisioning (the state
    machine from its DefinitionUri). For tests only: faults, fault_injection and local_clock (fail or hang an
    integration, scale Retry waits).
How it differs
    No Express workflows; execution history is in memory; JSONata error messages are jsonata-python's. Under
    a storm, executions begin their first state later than AWS would begin them (execution_slots).
"""

from __future__ import annotations

from collections.abc import Mapping

from sagepipe.local.stepfunctions.service_tasks import TaskFactory


def install(local_tasks: Mapping[str, TaskFactory]) -> None:
    """Patch moto's engine; `local_tasks` maps the services other packages run locally to their task classes."""
    from sagepipe.local.stepfunctions import (
        aws_sdk,
        execution_slots,
        fault_injection,
        jsonata,
        local_clock,
        program_cache,
        service_errors,
        service_tasks,
        task_clients,
        task_timeouts,
        value_copies,
    )

    for adapter in (jsonata, program_cache, value_copies, execution_slots, aws_sdk):
        adapter.install()
    service_tasks.install(local_tasks)
    for adapter in (task_clients, task_timeouts, service_errors, local_clock, fault_injection):
        adapter.install()

"""EventBridge rules whose target is a state machine start an execution.

The gap
    moto's `Rule.send_to_targets` knows log groups, archives, queues, buses and API destinations. A Step
    Functions target raises `NotImplementedError: Expr not defined for Rule`, so no trigger ever starts the
    pipeline. A Lambda function target is ignored: nothing is invoked. moto also stamps `time` as a Unix number
    (AWS: an ISO 8601 string), adds a non-AWS `ingestion-time` field, and delivers to DISABLED rules.

What this adapter does
    Wraps `Rule.send_to_targets`: for every matching rule, each `arn:aws:states:...:stateMachine:` target
    starts an execution with a fresh UUID name (as EventBridge does: it never reuses a name, so duplicate
    deliveries become duplicate executions, which the pipeline must tolerate) and the event as input (or the
    target's Input / InputPath / InputTransformer). The other targets go to moto. A target that cannot be
    started (state machine deleted, bad input) goes to the target's dead-letter queue with EventBridge's
    error attributes, as AWS does after its retries. Every started execution is recorded with its event id,
    so the local runner can follow what an upload or push started. A Lambda function target is invoked
    asynchronously, as EventBridge invokes functions (Lambda developer guide, "Invoking a Lambda function
    asynchronously": services such as EventBridge invoke functions asynchronously): on a thread of its own, through
    the emulator's Lambda Invoke API with InvocationType Event, with the event (or the target's input) as payload;
    an invocation Lambda refuses goes to the target's dead-letter queue.

How it differs from AWS
    Delivery is synchronous and there are no retries before the dead-letter queue (a local failure to
    start an execution is not transient). The IAM role of the target is not checked. A function that fails an
    asynchronous invocation is not retried and its own dead-letter queue gets nothing (its log has the error).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "eventbridge_targets"

MOTO_INTERNALS: Final = (
    Internal(
        "moto.events.models:Rule.send_to_targets",
        parameters=("self", "original_event", "transform_input"),
        why="put_events and S3 notifications call it for every rule of the bus.",
    ),
    Internal("moto.events.models:EventTemplateParser.parse", parameters=("input_template", "input_paths_map", "event")),
    Internal(
        "moto.stepfunctions.parser.models:stepfunctions_parser_backends",
        why="the engine's backend, whose executions actually run",
    ),
    Internal(
        "moto.stepfunctions.parser.models:StepFunctionsParserBackend.start_execution",
        parameters=("self", "state_machine_arn", "name", "execution_input"),
    ),
    Internal("moto.sqs.models:sqs_backends", why="dead-letter queues receive events a target could not start"),
    Internal("moto.utilities.arns:parse_arn", why="splits target ARNs into account, region and resource"),
    Internal(
        "moto.sqs.models:SQSBackend.send_message",
        parameters=("self", "queue_name", "message_body", "message_attributes"),
        why="parks an undeliverable event, with EventBridge's error attributes",
    ),
)

log = logging.getLogger(__name__)


def normalise_time(event: dict[str, Any]) -> dict[str, Any]:
    """AWS stamps events with an ISO 8601 `time` and no `ingestion-time`; moto with Unix seconds."""
    fixed = dict(event)
    fixed.pop("ingestion-time", None)
    if isinstance(fixed.get("time"), int | float):
        fixed["time"] = datetime.fromtimestamp(fixed["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fixed.setdefault("id", str(uuid.uuid4()))
    return fixed


def to_moto_event(event: dict[str, Any]) -> dict[str, Any]:
    """moto's own targets (logs, queues, archives) expect its internal shape: Unix `time` and `ingestion-time`."""
    shaped = dict(event)
    if isinstance(shaped.get("time"), str):
        shaped["time"] = datetime.strptime(shaped["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    shaped.setdefault("ingestion-time", datetime.now(UTC).timestamp())
    return shaped


def _json_path(event: dict[str, Any], path: str) -> Any:
    # EventBridge InputPath is a JSONPath into the event; the simple dotted form covers what rules use.
    value: Any = event
    for part in filter(None, path.removeprefix("$").split(".")):
        value = value[part]
    return value


def target_input(target: dict[str, Any], event: dict[str, Any]) -> str:
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        return json.dumps(_json_path(event, target["InputPath"]))
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        parser = Internal("moto.events.models:EventTemplateParser.parse").resolve(ADAPTER)
        # moto's parser reads its internal event shape, and returns the parsed JSON value.
        transformed = parser(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=to_moto_event(event),
        )
        return transformed if isinstance(transformed, str) else json.dumps(transformed)
    return json.dumps(event)


def _dead_letter(target: dict[str, Any], rule_arn: str, event: dict[str, Any], error: Exception) -> None:
    queue_arn = target.get("DeadLetterConfig", {}).get("Arn")
    if not queue_arn:
        log.error("rule %s could not start %s and has no dead-letter queue: %s", rule_arn, target["Arn"], error)
        return
    parse_arn = Internal("moto.utilities.arns:parse_arn").resolve(ADAPTER)
    arn = parse_arn(queue_arn)
    backend = Internal("moto.sqs.models:sqs_backends").resolve(ADAPTER)[arn.account][arn.region]
    attributes = {
        "RULE_ARN": rule_arn,
        "TARGET_ARN": target["Arn"],
        "ERROR_CODE": type(error).__name__,
        "ERROR_MESSAGE": str(error)[:256],
    }
    backend.send_message(
        queue_name=arn.resource_id,
        message_body=json.dumps(event),
        message_attributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()},
    )
    log.warning("rule %s could not start %s; event parked in %s: %s", rule_arn, target["Arn"], queue_arn, error)


def _start_execution(rule: Any, target: dict[str, Any], event: dict[str, Any]) -> None:
    parse_arn = Internal("moto.utilities.arns:parse_arn").resolve(ADAPTER)
    arn = parse_arn(target["Arn"])
    backends = Internal("moto.stepfunctions.parser.models:stepfunctions_parser_backends").resolve(ADAPTER)
    try:
        execution = backends[arn.account][arn.region].start_execution(
            state_machine_arn=target["Arn"], name=str(uuid.uuid4()), execution_input=target_input(target, event)
        )
    except Exception as error:  # any failure to start is a delivery failure, as on AWS
        _dead_letter(target, rule.arn, event, error)
        return
    context.current().record_execution(
        context.StartedExecution(
            execution_arn=execution.execution_arn, event_id=str(event.get("id")), rule_name=rule.name, event=event
        )
    )


def _is_state_machine(target: dict[str, Any]) -> bool:
    return ":states:" in target["Arn"] and ":stateMachine:" in target["Arn"]


def _is_function(target: dict[str, Any]) -> bool:
    return ":lambda:" in target["Arn"] and ":function:" in target["Arn"]


DELIVERY_JOIN_SECONDS = 30.0
"""How long a reset waits for a function delivery still running (it is abandoned after that)."""


@dataclass
class FunctionDeliveries:
    """The asynchronous invocations of function targets still running (in the runtime context): a reset waits for
    them, so that none reaches the next stack."""

    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, name: str, work: Any) -> threading.Thread:
        thread = threading.Thread(target=work, name=name, daemon=True)
        with self.lock:
            self.threads = [item for item in self.threads if item.is_alive()] + [thread]
        thread.start()
        return thread

    def wait(self, timeout: float = DELIVERY_JOIN_SECONDS) -> bool:
        """Wait for the deliveries running now; False if one is still running after `timeout` seconds."""
        with self.lock:
            running = list(self.threads)
        for thread in running:
            thread.join(timeout=timeout)
        return not any(thread.is_alive() for thread in running)

    def close(self) -> None:
        self.wait()


def _invoke_function(rule: Any, target: dict[str, Any], event: dict[str, Any]) -> None:
    runtime = context.current()
    payload = target_input(target, event).encode()

    def deliver() -> None:
        try:
            runtime.client("lambda").invoke(FunctionName=target["Arn"], InvocationType="Event", Payload=payload)
        except Exception as error:  # any refusal to invoke is a delivery failure, as on AWS
            _dead_letter(target, rule.arn, event, error)

    runtime.state(FunctionDeliveries).start(f"eventbridge-{rule.name}", deliver)


def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
    # moto hands the event to every rule of the bus, disabled ones included: a disabled rule delivers nothing.
    if getattr(self, "state", "ENABLED") != "ENABLED":
        return
    event = normalise_time(original_event)
    if not self.event_pattern.matches_event(event):
        return
    machines = [target for target in self.targets if _is_state_machine(target)]
    for target in machines:
        _start_execution(self, target, event)
    for target in (target for target in self.targets if _is_function(target)):
        _invoke_function(self, target, event)
    others = [target for target in self.targets if not _is_state_machine(target) and not _is_function(target)]
    if others:
        # moto serves the other targets; give it a copy of the rule that only has those.
        rule = copy.copy(self)
        rule.targets = others
        original_attribute(type(self), "send_to_targets")(rule, to_moto_event(event), transform_input)


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto.events.models import Rule

    replace_attribute(Rule, "send_to_targets", send_to_targets)

"""AWS::Events::Rule: the rule and its targets, as EventBridge API calls."""

from __future__ import annotations

import json
from typing import Any

from sagepipe.local.core.provisioning import ProvisionedResource, Stack


def rule(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    events = p.client("events")
    name = props.get("Name") or p.name(logical_id)
    bus = props.get("EventBusName", "default")
    arn = events.put_rule(
        Name=name, EventPattern=json.dumps(props["EventPattern"]), State=props.get("State", "ENABLED"), EventBusName=bus
    )["RuleArn"]
    targets = []
    for target in props.get("Targets", []):
        converted = {key: target[key] for key in ("Id", "Arn", "RoleArn", "Input", "InputPath") if key in target}
        for key in ("DeadLetterConfig", "RetryPolicy", "InputTransformer"):
            if key in target:
                converted[key] = target[key]
        targets.append(converted)
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
    return ProvisionedResource(logical_id, "AWS::Events::Rule", name, {"Arn": arn})


HANDLERS = {"AWS::Events::Rule": rule}

"""AWS::StepFunctions::StateMachine, created from the SAM template's DefinitionUri file itself."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sagepipe.local.core.provisioning import ProvisionedResource, ProvisionError, Stack
from sagepipe.template import state_machines


def apply_substitutions(definition: str, substitutions: Mapping[str, Any]) -> str:
    """What CloudFormation does with DefinitionSubstitutions: replace ${Key} for each defined key."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        return str(substitutions[key]) if key in substitutions else match.group(0)

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, definition)


def state_machine(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    """The deployed definition file, changed only by its DefinitionSubstitutions."""
    sam_resource = state_machines(p.sam_template).get(logical_id)
    if sam_resource is None:
        raise ProvisionError(f"{logical_id}: state machines must come from the SAM template with a DefinitionUri")
    definition_file = p.project_root / sam_resource["Properties"]["DefinitionUri"]
    definition = apply_substitutions(
        definition_file.read_text(encoding="utf-8"), props.get("DefinitionSubstitutions", {})
    )
    name = props.get("StateMachineName") or p.name(logical_id, limit=80)
    arn = p.client("stepfunctions").create_state_machine(
        name=name, definition=definition, roleArn=props["RoleArn"], type=props.get("StateMachineType", "STANDARD")
    )["stateMachineArn"]
    return ProvisionedResource(logical_id, "AWS::StepFunctions::StateMachine", arn, {"Arn": arn, "Name": name})


HANDLERS = {"AWS::StepFunctions::StateMachine": state_machine}

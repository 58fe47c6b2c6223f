"""CloudFormation knows the local stack: DescribeStacks and ListStackResources answer for it.

The gap
    The provisioner creates the stack's resources one by one through each service's API, because moto's
    CloudFormation cannot deploy this template (no SAM transform, no DefinitionSubstitutions, no CodeBuild;
    see the notes on moto's engine). So moto's CloudFormation has never heard of the stack, and anything that
    starts from it, as `sagepipe doctor`, `aws cloudformation describe-stacks --query Outputs` or a script
    reading the stack's resources would, finds "Stack with id ... does not exist".

What this adapter does
    `register(stack)` creates the stack through moto's own CloudFormation API (CreateStack) with a template
    holding only the parameter values and the outputs the provisioner resolved, so DescribeStacks answers them
    with moto's own serialisation; then it lists the provisioned resources in that stack's resource map
    (logical id, type, physical id), which is what DescribeStackResources and ListStackResources read. moto
    never creates those entries: they are already in its other services.

How it differs from AWS
    Resources are listed CREATE_COMPLETE with moto's fixed timestamps; no stack events beyond creation, no
    drift, no update or delete of the listed resources through CloudFormation (DeleteStack forgets the stack
    only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from sagepipe.local.core.moto_internals import Internal, check_all

ADAPTER = "cloudformation_stacks"

MOTO_INTERNALS: Final = (
    Internal(
        "moto.cloudformation.models:cloudformation_backends",
        why="the backend (per account and region) whose get_stack finds the stack CreateStack made",
    ),
    Internal(
        "moto.cloudformation.models:CloudFormationBackend.get_stack",
        parameters=("self", "name_or_stack_id"),
        why="looks the registered stack up by name",
    ),
    Internal(
        "moto.cloudformation.parsing:ResourceMap.__getitem__",
        parameters=("self", "key"),
        why="returns a logical id's entry from _parsed_resources without creating it when it is there already",
    ),
    Internal(
        "moto.cloudformation.parsing:ResourceMap.__iter__",
        parameters=("self",),
        why="iterates the logical ids of _resource_json_map: the resources DescribeStackResources lists",
    ),
    Internal(
        "moto.cloudformation.responses:StackResourceDTO.__init__",
        parameters=("self", "stack", "resource"),
        why="reads logical_resource_id, physical_resource_id and cf_resource_type from each listed resource",
    ),
)


class ProvisionedStack(Protocol):
    """What the provisioner's stack offers: its name, parameters, outputs and resources."""

    @property
    def name(self) -> str: ...
    @property
    def parameters(self) -> Mapping[str, Any]: ...
    @property
    def outputs(self) -> Mapping[str, Any]: ...
    @property
    def resources(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ListedResource:
    """A provisioned resource as moto's CloudFormation responses read it (attribute names are moto's)."""

    logical_resource_id: str
    physical_resource_id: str
    cf_resource_type: str


def _outputs(stack: ProvisionedStack) -> dict[str, Any]:
    return {name: {"Value": str(value)} for name, value in stack.outputs.items() if value is not None}


def register(stack: ProvisionedStack, cloudformation: Any, account_id: str, region: str) -> None:
    """Make `stack` (just provisioned) visible to CloudFormation's describe and list calls."""
    from moto.cloudformation.models import cloudformation_backends

    parameters = {name: "" if value is None else str(value) for name, value in stack.parameters.items()}
    template = {
        "Description": "sagepipe local stack (resources created by sagepipe.local.provisioner)",
        "Parameters": {name: {"Type": "String", "Default": value} for name, value in parameters.items()},
        "Resources": {},
        "Outputs": _outputs(stack),
    }
    cloudformation.create_stack(StackName=stack.name, TemplateBody=json.dumps(template))
    registered = cloudformation_backends[account_id][region].get_stack(stack.name)
    resource_map = registered.resource_map
    for logical_id, resource in stack.resources.items():
        resource_map._resource_json_map[logical_id] = {"Type": resource.resource_type}
        resource_map._parsed_resources[logical_id] = ListedResource(
            logical_id, str(resource.ref), resource.resource_type
        )


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)

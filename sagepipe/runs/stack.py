"""The stack `sagepipe runs` reads: found by name, its resources taken from its CloudFormation outputs."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from sagepipe.runs.errors import RunsError

SAMCONFIG = Path("samconfig.toml")


@dataclass(frozen=True)
class Stack:
    """The outputs of template.yaml that `sagepipe runs` needs, and the stack's parameters."""

    name: str
    region: str
    runs_table: str
    artifacts_bucket: str | None = None
    ledger_bucket: str | None = None
    data_bucket: str | None = None
    state_machine_arn: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    model_package_group: str | None = None


def default_stack_name(samconfig: Path = SAMCONFIG, environment: str = "default") -> str | None:
    """stack_name from samconfig.toml: the deploy command's, else the environment's global one (as sam reads it)."""
    if not samconfig.is_file():
        return None
    try:
        config = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise RunsError(f"{samconfig} is not valid TOML ({error}); pass --stack") from error
    section = config.get(environment, {})
    for command in ("deploy", "global"):
        name = section.get(command, {}).get("parameters", {}).get("stack_name")
        if isinstance(name, str) and name:
            return name
    return None


def describe_stack(cloudformation: Any, name: str) -> Stack:
    """The stack's outputs. A missing stack, or one without RunsTableName, is a RunsError."""
    region = str(cloudformation.meta.region_name)
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        if "does not exist" in message:
            raise RunsError(
                f"no stack named {name!r} in {region} (pass --stack, or set stack_name in samconfig.toml)"
            ) from None
        raise
    outputs = {item["OutputKey"]: item.get("OutputValue", "") for item in stacks[0].get("Outputs", [])}
    if "RunsTableName" not in outputs:
        raise RunsError(f"stack {name!r} in {region} has no RunsTableName output: it is not a sagepipe stack")
    parameters = {
        item["ParameterKey"]: item.get("ParameterValue", "") for item in stacks[0].get("Parameters", []) or []
    }
    return Stack(
        name=name,
        region=region,
        runs_table=outputs["RunsTableName"],
        artifacts_bucket=outputs.get("ArtifactsBucketName"),
        ledger_bucket=outputs.get("LedgerBucketName"),
        data_bucket=outputs.get("DataBucketName"),
        state_machine_arn=outputs.get("PipelineStateMachineArn"),
        model_package_group=outputs.get("ModelPackageGroupName") or None,
        parameters=parameters,
    )

"""AWS::CodeBuild::Project: recorded in moto's CodeBuild, and kept for the local build (BuildProjectSpec)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sagepipe.local.core import context
from sagepipe.local.core.emulator import ACCOUNT_ID, REGION
from sagepipe.local.core.provisioning import ProvisionedResource, Stack


@dataclass(frozen=True)
class BuildProjectSpec:
    """A CodeBuild project of the template, as the local build runs it."""

    name: str
    environment: dict[str, str]
    timeout_seconds: int
    buildspec: str = "buildspec.yml"


class BuildProjects(dict[str, BuildProjectSpec]):
    """The runtime's build projects, by name (in its context)."""


def build_projects(runtime: context.RuntimeContext | None = None) -> BuildProjects:
    return (runtime or context.current()).state(BuildProjects)


def project(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    name = props.get("Name") or p.name(logical_id, limit=150)
    variables = {item["Name"]: str(item["Value"]) for item in props["Environment"].get("EnvironmentVariables", [])}
    p.client("codebuild").create_project(
        name=name,
        source={
            "type": props["Source"]["Type"],
            "location": props["Source"].get("Location", ""),
            "buildspec": props["Source"].get("BuildSpec", "buildspec.yml"),
        },
        artifacts={"type": props["Artifacts"]["Type"]},
        environment={
            "type": props["Environment"]["Type"],
            "image": props["Environment"]["Image"],
            "computeType": props["Environment"]["ComputeType"],
            "environmentVariables": [
                {"name": key, "value": value, "type": "PLAINTEXT"} for key, value in variables.items()
            ],
        },
        serviceRole=props["ServiceRole"],
    )
    build_projects()[name] = BuildProjectSpec(
        name=name,
        environment=variables | {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION},
        timeout_seconds=int(props.get("TimeoutInMinutes", 60)) * 60,
        buildspec=props["Source"].get("BuildSpec", "buildspec.yml"),
    )
    arn = f"arn:aws:codebuild:{REGION}:{ACCOUNT_ID}:project/{name}"
    return ProvisionedResource(logical_id, "AWS::CodeBuild::Project", name, {"Arn": arn})


HANDLERS = {"AWS::CodeBuild::Project": project}

"""AWS::Lambda::Function and AWS::Lambda::Url: created in moto, and registered with the in-process runtime."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sagepipe.local.core.provisioning import ProvisionedResource, ProvisionError, Stack
from sagepipe.local.lambda_ import runtime
from sagepipe.template import PACKAGED_CODE_BUCKET


def _zip_placeholder() -> bytes:
    # moto stores function code; the local Lambda runtime runs the handler from its CodeUri instead.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "sagepipe local: the handler runs from the project's CodeUri directory\n")
    return buffer.getvalue()


def _code_dir(p: Stack, code: Mapping[str, Any]) -> Path:
    if code.get("S3Bucket") != PACKAGED_CODE_BUCKET:
        raise ProvisionError(f"function code {code} is not a local CodeUri; the local runtime runs local code only")
    return p.project_root / str(code["S3Key"]).removesuffix(".zip")


def function(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    name = props.get("FunctionName") or p.name(logical_id)
    environment = {key: str(value) for key, value in props.get("Environment", {}).get("Variables", {}).items()}
    response = p.client("lambda").create_function(
        FunctionName=name,
        Runtime=props["Runtime"],
        Role=props["Role"],
        Handler=props["Handler"],
        Code={"ZipFile": _zip_placeholder()},
        Timeout=int(props.get("Timeout", 3)),
        MemorySize=int(props.get("MemorySize", 128)),
        Environment={"Variables": environment},
        Architectures=props.get("Architectures", ["x86_64"]),
        Layers=[str(layer) for layer in props.get("Layers", [])],
    )
    if props.get("ReservedConcurrentExecutions") not in {None, ""}:
        # As CloudFormation does: the account's GetAccountSettings then counts it (no throttling locally).
        p.client("lambda").put_function_concurrency(
            FunctionName=name, ReservedConcurrentExecutions=int(props["ReservedConcurrentExecutions"])
        )
    spec = runtime.FunctionSpec(
        name=name,
        arn=response["FunctionArn"],
        code_dir=_code_dir(p, props["Code"]),
        handler=props["Handler"],
        environment=environment,
        timeout_seconds=int(props.get("Timeout", 3)),
        memory_mb=int(props.get("MemorySize", 128)),
    )
    runtime.local_functions().functions[name] = spec
    runtime.deploy(spec)
    return ProvisionedResource(logical_id, "AWS::Lambda::Function", name, {"Arn": response["FunctionArn"]})


def url(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    function_arn = props["TargetFunctionArn"]
    request: dict[str, Any] = {"FunctionName": function_arn, "AuthType": props["AuthType"]}
    if "Cors" in props:
        request["Cors"] = props["Cors"]
    response = p.client("lambda").create_function_url_config(**request)
    return ProvisionedResource(
        logical_id,
        "AWS::Lambda::Url",
        response["FunctionArn"],
        {"FunctionUrl": response["FunctionUrl"], "FunctionArn": response["FunctionArn"]},
    )


def layer_version(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    """A layer version, published with a placeholder archive: the local runtime runs the handlers on this project's
    virtual environment, which holds the layer's requirements (requirements/dev.in includes them; tests/static/
    test_pins.py checks the pins). Its Ref is the version's ARN, as CloudFormation's ("AWS::Lambda::LayerVersion",
    CloudFormation template reference), which the functions' Layers name."""
    request: dict[str, Any] = {
        "LayerName": props["LayerName"],
        "Content": {"ZipFile": _zip_placeholder()},
        "CompatibleRuntimes": props.get("CompatibleRuntimes", []),
        "CompatibleArchitectures": props.get("CompatibleArchitectures", []),
    }
    if "Description" in props:
        request["Description"] = props["Description"]
    response = p.client("lambda").publish_layer_version(**request)
    return ProvisionedResource(logical_id, "AWS::Lambda::LayerVersion", response["LayerVersionArn"])


HANDLERS = {"AWS::Lambda::Function": function, "AWS::Lambda::Url": url, "AWS::Lambda::LayerVersion": layer_version}

"""AWS::SageMaker::ModelPackageGroup: CloudFormation's properties as a SageMaker API call."""

from __future__ import annotations

from typing import Any

from sagepipe.local.core.provisioning import ProvisionedResource, Stack


def model_package_group(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    sagemaker = p.client("sagemaker")
    name = props["ModelPackageGroupName"]
    request: dict[str, Any] = {"ModelPackageGroupName": name}
    if "ModelPackageGroupDescription" in props:
        request["ModelPackageGroupDescription"] = props["ModelPackageGroupDescription"]
    if props.get("Tags"):
        request["Tags"] = props["Tags"]
    arn = sagemaker.create_model_package_group(**request)["ModelPackageGroupArn"]
    description = sagemaker.describe_model_package_group(ModelPackageGroupName=name)
    # Ref is the group's ARN (the resource type's primary identifier, as CloudFormation's schema declares it).
    return ProvisionedResource(
        logical_id,
        "AWS::SageMaker::ModelPackageGroup",
        arn,
        {
            "ModelPackageGroupArn": arn,
            "CreationTime": str(description.get("CreationTime", "")),
            "ModelPackageGroupStatus": description.get("ModelPackageGroupStatus", "Completed"),
        },
    )


HANDLERS = {"AWS::SageMaker::ModelPackageGroup": model_package_group}

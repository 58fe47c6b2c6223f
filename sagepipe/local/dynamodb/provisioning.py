"""AWS::DynamoDB::Table: CloudFormation's properties as DynamoDB API calls."""

from __future__ import annotations

from typing import Any

from sagepipe.local.core.provisioning import ProvisionedResource, Stack


def table(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    dynamodb = p.client("dynamodb")
    name = props.get("TableName") or p.name(logical_id)
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
        "DeletionProtectionEnabled": bool(props.get("DeletionProtectionEnabled", False)),
    }
    sse = props.get("SSESpecification")
    if sse:
        request["SSESpecification"] = {"Enabled": sse.get("SSEEnabled", False), "SSEType": sse.get("SSEType", "KMS")}
        if "KMSMasterKeyId" in sse:
            request["SSESpecification"]["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if index_kind in props:
            request[index_kind] = props[index_kind]
    description = dynamodb.create_table(**request)["TableDescription"]
    pitr = props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
    if pitr:
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    return ProvisionedResource(
        logical_id,
        "AWS::DynamoDB::Table",
        name,
        {"Arn": description["TableArn"], "StreamArn": description.get("LatestStreamArn")},
    )


HANDLERS = {"AWS::DynamoDB::Table": table}

"""AWS::S3::Bucket and AWS::S3::BucketPolicy: CloudFormation's properties as S3 API calls."""

from __future__ import annotations

import json
from typing import Any

from sagepipe.local.core.emulator import REGION
from sagepipe.local.core.provisioning import ProvisionedResource, Stack


def _object_lock(s3: Any, bucket: str, lock: dict[str, Any]) -> None:
    """CloudFormation's ObjectLockConfiguration is the API's; the retention period arrives resolved as text."""
    configuration: dict[str, Any] = {"ObjectLockEnabled": lock["ObjectLockEnabled"]}
    retention = lock.get("Rule", {}).get("DefaultRetention")
    if retention:
        configuration["Rule"] = {
            "DefaultRetention": {key: (value if key == "Mode" else int(value)) for key, value in retention.items()}
        }
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=configuration)


def bucket(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    s3 = p.client("s3")
    name = props.get("BucketName") or p.name(logical_id, lowercase=True, limit=63)
    # Object Lock can only be turned on when the bucket is created; CloudFormation's ObjectLockEnabled is the
    # CreateBucket request's ObjectLockEnabledForBucket (which also turns versioning on).
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=bool(props.get("ObjectLockEnabled", False)))
    if "ObjectLockConfiguration" in props:
        _object_lock(s3, name, props["ObjectLockConfiguration"])
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    if "BucketEncryption" in props:
        # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
        rules = [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            | ({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {})
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
    if "LoggingConfiguration" in props:
        logging_config = props["LoggingConfiguration"]
        s3.put_bucket_logging(
            Bucket=name,
            BucketLoggingStatus={
                "LoggingEnabled": {
                    "TargetBucket": logging_config["DestinationBucketName"],
                    "TargetPrefix": logging_config.get("LogFilePrefix", ""),
                }
            },
        )
    if "LifecycleConfiguration" in props:
        rules = []
        for rule in props["LifecycleConfiguration"]["Rules"]:
            converted: dict[str, Any] = {
                "ID": rule.get("Id", "rule"),
                "Status": rule["Status"],
                "Filter": {"Prefix": ""},
            }
            if "ExpirationInDays" in rule:
                converted["Expiration"] = {"Days": rule["ExpirationInDays"]}
            if "NoncurrentVersionExpiration" in rule:
                converted["NoncurrentVersionExpiration"] = rule["NoncurrentVersionExpiration"]
            if "AbortIncompleteMultipartUpload" in rule:
                converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
            rules.append(converted)
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
    arn = f"arn:aws:s3:::{name}"
    return ProvisionedResource(
        logical_id,
        "AWS::S3::Bucket",
        name,
        {
            "Arn": arn,
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
        },
    )


def bucket_policy(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    p.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"]))
    return ProvisionedResource(logical_id, "AWS::S3::BucketPolicy", props["Bucket"])


HANDLERS = {"AWS::S3::Bucket": bucket, "AWS::S3::BucketPolicy": bucket_policy}

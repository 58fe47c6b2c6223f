"""Record every decision on a model package of the stack's group on the run it belongs to, and announce it.

SageMaker sends "SageMaker Model Package State Change" to EventBridge when a package's status changes (SageMaker
developer guide, "Events that Amazon SageMaker sends to Amazon EventBridge", Model package state change: the
detail has ModelPackageGroupName, ModelPackageVersion, ModelPackageArn, ModelApprovalStatus, CreationTime and
LastModifiedTime, among DescribeModelPackage's fields). The event says neither who made the change nor which
run the package came from, so the package is described (DescribeModelPackage): its LastModifiedBy (else
CreatedBy) names the IAM identity, its ApprovalDescription the reason, its CustomerMetadataProperties the run.

Each decision becomes one item on the run (`pk = RUN#<run id>`, `sk = APPROVAL#<time>#<version>`), written
once (a redelivered event, or SageMaker's several events for one change, write nothing more). Only an approval
is announced as an approval (SNS status MODEL_APPROVED); a rejection is announced as a rejection
(MODEL_REJECTED); any other change (a package registered PendingManualApproval) is recorded only. A change that
leaves the status as the last recorded decision had it (a metadata update) is recorded, not announced: nothing
downstream should deploy twice, or at all, because a package changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError
from pydantic import Field

from common.dynamodb import to_attributes
from common.events import LenientModel
from common.model_registry import APPROVED, REJECTED, format_metric, metrics_of, run_id_of, version_of, who

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Package State Change"
SORT_KEY_PREFIX = "APPROVAL#"

ANNOUNCED = {APPROVED: "MODEL_APPROVED", REJECTED: "MODEL_REJECTED"}
"""The SNS `status` attribute of an announced decision: only an approval is ever MODEL_APPROVED."""


class StateChangeDetail(LenientModel):
    model_package_group_name: str = Field(alias="ModelPackageGroupName", min_length=1)
    model_package_arn: str = Field(alias="ModelPackageArn", min_length=1)
    model_package_version: int | None = Field(default=None, alias="ModelPackageVersion")
    model_approval_status: str = Field(alias="ModelApprovalStatus", min_length=1)
    creation_time: str | None = Field(default=None, alias="CreationTime")
    last_modified_time: str | None = Field(default=None, alias="LastModifiedTime")


class ModelPackageStateChange(EventBridgeModel):
    detail: StateChangeDetail


@dataclass(frozen=True)
class Decision:
    """One change of a package's status, with who, when, why and which run."""

    event_id: str
    group: str
    model_package_arn: str
    version: int | None
    status: str
    decided_at: str
    decided_by: str | None
    reason: str | None
    run_id: str | None
    commit: str | None
    metrics: dict[str, float]

    @property
    def sort_key(self) -> str:
        """`APPROVAL#<time>#<version>#<status>`: times have whole seconds, so a change and the next one within the
        same second are told apart by their status, and the several events of one change share one key."""
        version = self.version if self.version is not None else "-"
        return f"{SORT_KEY_PREFIX}{self.decided_at}#{version}#{self.status}"


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def decision_of(event: ModelPackageStateChange, description: Mapping[str, Any]) -> Decision:
    """The decision an event reports, completed from the package's description."""
    detail = event.detail
    properties = description.get("CustomerMetadataProperties") or {}
    when = detail.last_modified_time or description.get("LastModifiedTime") or detail.creation_time or event.time
    version = detail.model_package_version or description.get("ModelPackageVersion")
    return Decision(
        event_id=event.id,
        group=detail.model_package_group_name,
        model_package_arn=detail.model_package_arn,
        version=int(version) if version is not None else version_of(detail.model_package_arn),
        status=detail.model_approval_status,
        decided_at=_iso(when),
        decided_by=who(description),
        reason=description.get("ApprovalDescription") or None,
        run_id=run_id_of(properties),
        commit=properties.get("sagepipe:commit"),
        metrics=metrics_of(properties),
    )


def previous_status(dynamodb: Any, table: str, decision: Decision) -> str | None:
    """The status of the last decision on this package recorded on its run (one Query of the run's decisions): the
    latest by time of change, then by time recorded."""
    if decision.run_id is None:
        return None
    response = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":pk": {"S": f"RUN#{decision.run_id}"}, ":prefix": {"S": SORT_KEY_PREFIX}},
        ConsistentRead=True,
    )
    earlier = [
        item
        for item in response.get("Items", [])
        if item.get("model_package_arn", {}).get("S") == decision.model_package_arn
        and item["sk"]["S"] != decision.sort_key
    ]
    if not earlier:
        return None
    latest = max(earlier, key=lambda item: (item["decided_at"]["S"], item.get("recorded_at", {}).get("S", "")))
    return str(latest["decision"]["S"])


def record(dynamodb: Any, table: str, decision: Decision, previous: str | None) -> bool:
    """Write the decision on its run, once. False when it was already recorded (the event came again)."""
    if decision.run_id is None:
        return False
    item = to_attributes(
        {
            "pk": f"RUN#{decision.run_id}",
            "sk": decision.sort_key,
            "decision": decision.status,
            "previous_decision": previous,
            "model_package_group": decision.group,
            "model_package_arn": decision.model_package_arn,
            "model_package_version": decision.version,
            "decided_by": decision.decided_by,
            "decided_at": decision.decided_at,
            "reason": decision.reason,
            "event_id": decision.event_id,
            "recorded_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
    )
    try:
        dynamodb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def announcement(decision: Decision, previous: str | None) -> str | None:
    """The SNS status of the notification for this decision, or None when it is recorded only."""
    if decision.status == previous:
        return None
    return ANNOUNCED.get(decision.status)


def message(decision: Decision, status: str, environment: str, previous: str | None) -> dict[str, Any]:
    """The SNS Publish request (without TopicArn) announcing a decision."""
    verb = "APPROVED" if status == ANNOUNCED[APPROVED] else "REJECTED"
    version = f"version {decision.version}" if decision.version is not None else decision.model_package_arn
    run = decision.run_id or "unknown"
    subject = f"[sagepipe {environment}] MODEL {verb}: {version} (run {run[:8]})"
    metrics = ", ".join(f"{name}={format_metric(value)}" for name, value in sorted(decision.metrics.items()))
    lines = [
        f"Model package {version} of {decision.group} was {verb} in {environment}"
        f" by {decision.decided_by or 'an unknown identity'} at {decision.decided_at}.",
        "",
        f"Reason: {decision.reason or '(none given)'}",
        f"Previously: {previous or 'no decision recorded'}",
        f"Run: {run}" + (f" (sagepipe runs show {run})" if decision.run_id else " (the package names no sagepipe run)"),
        f"Commit: {decision.commit or 'unknown'}",
        f"Metrics: {metrics or 'none recorded'}",
        f"Package: {decision.model_package_arn}",
    ]
    attributes = {
        "status": status,
        "environment": environment,
        "run_id": run,
        "model_package_version": str(decision.version) if decision.version is not None else "unknown",
    }
    return {
        "Subject": subject[:100],
        "Message": "\n".join(lines),
        "MessageAttributes": {name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()},
    }

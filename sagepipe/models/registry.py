"""The stack's model package group, as `sagepipe models` reads and decides on it.

A version is one model package the pipeline registered (RegisterModelPackage) after its run passed the quality
gate. The champion is the latest Approved version by creation time, the one the gate compares new runs with
(functions/evaluate_gate/gate.py asks SageMaker the same question: ListModelPackages, Approved, CreationTime
descending, one result). An approval or a rejection is an UpdateModelPackage of the version's
ModelApprovalStatus, with the reason as ApprovalDescription and the deciding identity as a
`sagepipe:decided-by` property (SageMaker records the caller itself as LastModifiedBy). SageMaker then sends
"SageMaker Model Package State Change" to EventBridge, and the stack's RecordModelDecision function records the
decision on the run the version came from (the `APPROVAL#...` items `models show` lists).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from sagepipe.models.model_registry import (
    APPROVED,
    COMMIT,
    CONTENT_SHA256,
    DATA_VERSION_ID,
    DECIDED_BY,
    REJECTED,
    metrics_of,
    property_value,
    run_id_of,
    version_of,
    who,
)
from sagepipe.runs.errors import RunsError
from sagepipe.runs.records import deserialize, plain
from sagepipe.runs.stack import Stack

DECISION_PREFIX = "APPROVAL#"
"""The sort key prefix of a decision recorded on its run (functions/record_model_decision/decision.py)."""


@dataclass(frozen=True)
class ModelVersion:
    """One version of the group, with what the pipeline wrote into it."""

    version: int
    arn: str
    status: str
    created_at: str
    modified_at: str | None
    metrics: dict[str, float]
    run_id: str | None
    commit: str | None
    data_version_id: str | None
    content_sha256: str | None
    image: str | None
    image_digest: str | None
    artifact: str | None
    description: str | None
    approval_description: str | None
    decided_by: str | None
    champion: bool = False
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "model_package_arn": self.arn,
            "status": self.status,
            "champion": self.champion,
            "created_at": self.created_at,
            "modified_at": self.modified_at,
            "metrics": self.metrics,
            "run_id": self.run_id,
            "commit": self.commit,
            "data_version_id": self.data_version_id,
            "model_content_sha256": self.content_sha256,
            "image": self.image,
            "image_digest": self.image_digest,
            "artifact": self.artifact,
            "description": self.description,
            "approval_description": self.approval_description,
            "decided_by": self.decided_by,
            "decisions": self.decisions,
        }


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def version_from(description: Mapping[str, Any], *, champion: bool = False) -> ModelVersion:
    """A DescribeModelPackage answer as a ModelVersion."""
    properties = description.get("CustomerMetadataProperties") or {}
    containers = (description.get("InferenceSpecification") or {}).get("Containers") or [{}]
    arn = str(description["ModelPackageArn"])
    number = description.get("ModelPackageVersion")
    return ModelVersion(
        version=int(number) if number is not None else (version_of(arn) or 0),
        arn=arn,
        status=str(description.get("ModelApprovalStatus", "")),
        created_at=_iso(description.get("CreationTime")) or "",
        modified_at=_iso(description.get("LastModifiedTime")),
        metrics=metrics_of(properties),
        run_id=run_id_of(properties),
        commit=properties.get(COMMIT),
        data_version_id=properties.get(DATA_VERSION_ID),
        content_sha256=properties.get(CONTENT_SHA256),
        image=containers[0].get("Image"),
        image_digest=containers[0].get("ImageDigest"),
        artifact=containers[0].get("ModelDataUrl"),
        description=description.get("ModelPackageDescription"),
        approval_description=description.get("ApprovalDescription"),
        decided_by=who(description) if description.get("LastModifiedBy") or properties.get(DECIDED_BY) else None,
        champion=champion,
    )


class Registry:
    """The group of one stack, through a SageMaker client (and the runs table, for the recorded decisions)."""

    def __init__(self, sagemaker: Any, stack: Stack, dynamodb: Any | None = None) -> None:
        if not stack.model_package_group:
            raise RunsError(
                f"stack {stack.name!r} has no ModelPackageGroupName output: it predates the model registry; "
                "deploy this version of template.yaml"
            )
        self.sagemaker = sagemaker
        self.group = stack.model_package_group
        self.stack = stack
        self.dynamodb = dynamodb

    def _summaries(self, status: str | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "ModelPackageGroupName": self.group,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        }
        if status:
            request["ModelApprovalStatus"] = status
        if limit:
            request["MaxResults"] = limit
        token: str | None = None
        while True:
            try:
                page = self.sagemaker.list_model_packages(**request, **({"NextToken": token} if token else {}))
            except ClientError as error:
                raise self._explained(error) from None
            yield from page.get("ModelPackageSummaryList", [])
            token = page.get("NextToken")
            if not token or limit:
                return

    def _explained(self, error: ClientError) -> Exception:
        details = error.response.get("Error", {})
        if "does not exist" in str(details.get("Message", "")) or details.get("Code") == "ResourceNotFound":
            return RunsError(f"the model package group {self.group!r} does not exist in {self.stack.region}")
        return error

    def _describe(self, arn: str) -> dict[str, Any]:
        try:
            return dict(self.sagemaker.describe_model_package(ModelPackageName=arn))
        except ClientError as error:
            message = str(error.response.get("Error", {}).get("Message", ""))
            if "does not exist" in message or error.response.get("Error", {}).get("Code") == "ValidationException":
                raise RunsError(f"no model package {arn} ({message})") from None
            raise

    def champion_arn(self) -> str | None:
        latest = next(self._summaries(APPROVED, limit=1), None)
        return str(latest["ModelPackageArn"]) if latest else None

    def champion(self) -> ModelVersion | None:
        """The latest Approved version, or None when no version is approved."""
        arn = self.champion_arn()
        return self.with_decisions(version_from(self._describe(arn), champion=True)) if arn else None

    def versions(self) -> list[ModelVersion]:
        """Every version, newest first, the champion marked."""
        champion = self.champion_arn()
        return [
            version_from(self._describe(str(item["ModelPackageArn"])), champion=item["ModelPackageArn"] == champion)
            for item in self._summaries()
        ]

    def arn_of(self, version: str) -> str:
        """A version number (3) or a package ARN of this group, as the version's ARN."""
        if version.startswith("arn:"):
            if f":model-package/{self.group}/" not in version:
                raise RunsError(f"{version} is not a version of this stack's group {self.group!r}")
            return version
        if not version.isdigit() or int(version) < 1:
            raise RunsError(
                f"a version is a whole number of at least 1 (sagepipe models list shows them), not {version!r}"
            )
        try:
            group_arn = str(
                self.sagemaker.describe_model_package_group(ModelPackageGroupName=self.group)["ModelPackageGroupArn"]
            )
        except ClientError as error:
            raise self._explained(error) from None
        # arn:...:model-package-group/<group> -> arn:...:model-package/<group>/<version>
        return group_arn.replace(":model-package-group/", ":model-package/", 1) + f"/{int(version)}"

    def show(self, version: str) -> ModelVersion:
        arn = self.arn_of(version)
        return self.with_decisions(version_from(self._describe(arn), champion=arn == self.champion_arn()))

    def with_decisions(self, version: ModelVersion) -> ModelVersion:
        """The version with the decisions RecordModelDecision recorded on its run, oldest first."""
        if self.dynamodb is None or version.run_id is None:
            return version
        response = self.dynamodb.query(
            TableName=self.stack.runs_table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"RUN#{version.run_id}"}, ":prefix": {"S": DECISION_PREFIX}},
        )
        decisions = [
            plain({key: value for key, value in deserialize(item).items() if key not in {"pk", "sk"}})
            for item in response.get("Items", [])
            if item.get("model_package_arn", {}).get("S") == version.arn
        ]
        decisions.sort(key=lambda item: (item.get("decided_at") or "", item.get("recorded_at") or ""))
        return ModelVersion(**{**version.__dict__, "decisions": decisions})

    def decide(self, version: str, status: str, reason: str, decided_by: str) -> ModelVersion:
        """Approve or reject a version, recording why (ApprovalDescription) and who (`sagepipe:decided-by`)."""
        if status not in {APPROVED, REJECTED}:
            raise ValueError(status)
        reason = " ".join(reason.split())
        if not reason:
            raise RunsError("--reason must say why (it is recorded with the decision)")
        arn = self.arn_of(version)
        self._describe(arn)  # an unknown version is one clear line, not UpdateModelPackage's error
        request: dict[str, Any] = {
            "ModelPackageArn": arn,
            "ModelApprovalStatus": status,
            # UpdateModelPackage's ApprovalDescription: at most 1,024 characters (botocore's SageMaker model).
            "ApprovalDescription": reason[:1024],
        }
        identity = property_value(decided_by)
        if identity:
            request["CustomerMetadataProperties"] = {DECIDED_BY: identity}
        self.sagemaker.update_model_package(**request)
        return self.show(arn)

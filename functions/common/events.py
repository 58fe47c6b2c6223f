"""The custom events sagepipe puts on EventBridge, shared by the functions that emit and read them.

`sagepipe.github` / `GitHub Push` is emitted by functions/github_webhook for a verified push to the configured
branch; `sagepipe.manual` / `Manual Run Requested` by `sagepipe run` and `sagepipe runs rerun` (a re-run carries
`rerunOf`, its request id and the original run's training configuration). The EventBridge rules in template.yaml
match on these fields, and functions/normalise_trigger reads them.
"""

from typing import Annotated

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

CommitId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
"""A full git commit SHA-1. Abbreviated ids are refused: the image tag and the claim key use the full id."""

ZERO_COMMIT = "0" * 40
"""What git reports as the new commit of a deleted branch."""

GITHUB_SOURCE = "sagepipe.github"
GITHUB_PUSH = "GitHub Push"
MANUAL_SOURCE = "sagepipe.manual"
MANUAL_RUN_REQUESTED = "Manual Run Requested"


class LenientModel(BaseModel):
    """Event details gain fields over time; unknown fields must not break parsing."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# ----------------------------------------------------------------------------- GitHub (emitted by the webhook)
class GitHubCommit(LenientModel):
    id: CommitId
    message: str = ""
    timestamp: str | None = None
    url: str | None = None
    author: str | None = None


class GitHubPushDetail(LenientModel):
    """The detail of the custom 'GitHub Push' event that functions/github_webhook puts on the bus."""

    delivery: str = Field(min_length=1, description="X-GitHub-Delivery of the webhook call")
    repository: str = Field(min_length=3, description="owner/name")
    ref: str = Field(min_length=1)
    before: str | None = None
    after: str = Field(description="The commit the branch points to after the push")
    deleted: bool = False
    head_commit: GitHubCommit | None = Field(default=None, alias="head-commit")
    pusher: str | None = None


class GitHubPushEvent(EventBridgeModel):
    detail: GitHubPushDetail


# ----------------------------------------------------------------------------- manual runs
class S3ObjectVersion(LenientModel):
    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    version_id: str = Field(alias="versionId", min_length=1)


class TrainingOverride(LenientModel):
    """A re-run's training configuration: the original run's, not the stack's current settings.

    The bounds are the stack's own (template.yaml parameters, normalise_trigger Settings).
    """

    instance_type: str = Field(alias="instanceType", pattern=r"^ml\.[a-z0-9]+(-[a-z0-9]+)?\.[a-z0-9]+$")
    instance_count: int = Field(alias="instanceCount", ge=1, le=1)
    volume_size_gb: int = Field(alias="volumeSizeGb", ge=1, le=16384)
    max_runtime_seconds: int = Field(alias="maxRuntimeSeconds", ge=1, le=28 * 24 * 3600)
    hyperparameters: dict[str, str]


RerunRequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{8,64}$")]
"""Names one re-run request: part of its claim key, so a redelivered request is still one run."""


class ManualRunDetail(LenientModel):
    commit: CommitId
    data: S3ObjectVersion
    requested_by: str = Field(alias="requestedBy", min_length=1)
    reason: str | None = None
    rerun_of: str | None = Field(default=None, alias="rerunOf", min_length=1, max_length=80)
    rerun_request_id: RerunRequestId | None = Field(default=None, alias="rerunRequestId")
    training: TrainingOverride | None = None
    force: bool = Field(default=False, description="Bypass the training cache: train even when the key matches")

    @model_validator(mode="after")
    def _a_rerun_names_its_request_and_configuration(self) -> "ManualRunDetail":
        rerun_fields = (self.rerun_of, self.rerun_request_id, self.training)
        if any(field is not None for field in rerun_fields) and not all(field is not None for field in rerun_fields):
            raise ValueError("a re-run carries rerunOf, rerunRequestId and training together")
        return self


class ManualRunEvent(EventBridgeModel):
    detail: ManualRunDetail

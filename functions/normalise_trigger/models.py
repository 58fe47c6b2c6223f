"""The events that start a pipeline run, the function's settings, and the run input it produces."""

import json
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser.models import (
    EventBridgeModel,
    S3EventNotificationEventBridgeModel,
)
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The custom events (GitHub push, manual run) are shared with the functions that emit them.
from common.events import (
    GITHUB_PUSH,
    GITHUB_SOURCE,
    MANUAL_RUN_REQUESTED,
    MANUAL_SOURCE,
    ZERO_COMMIT,
    CommitId,
    GitHubCommit,
    GitHubPushDetail,
    GitHubPushEvent,
    LenientModel,
    ManualRunDetail,
    ManualRunEvent,
    S3ObjectVersion,
    TrainingOverride,
)
from common.gate_settings import GateSettings, GateSettingsError, Threshold, parse_thresholds
from common.spot_settings import spot_wait_problem

__all__ = [
    "GITHUB_PUSH",
    "GITHUB_SOURCE",
    "MANUAL_RUN_REQUESTED",
    "MANUAL_SOURCE",
    "ZERO_COMMIT",
    "CommitId",
    "GitHubCommit",
    "GitHubPushDetail",
    "GitHubPushEvent",
    "ManualRunDetail",
    "ManualRunEvent",
    "S3ObjectVersion",
    "TrainingOverride",
]

# ----------------------------------------------------------------------------- event sources and types
S3_SOURCE = "aws.s3"
S3_OBJECT_CREATED = "Object Created"
CODECOMMIT_SOURCE = "aws.codecommit"
CODECOMMIT_STATE_CHANGE = "CodeCommit Repository State Change"

CONTENT_CREATING_REASONS = frozenset({"PutObject", "CompleteMultipartUpload", "CopyObject"})
"""S3 creation reasons that mean new content. 'POST Object' (browser form uploads) is left out on purpose."""


# ----------------------------------------------------------------------------- CodeCommit
class CodeCommitReferenceDetail(LenientModel):
    event: Literal["referenceCreated", "referenceUpdated", "referenceDeleted"]
    repository_name: str = Field(alias="repositoryName", min_length=1)
    reference_type: Literal["branch", "tag"] = Field(alias="referenceType")
    reference_name: str = Field(alias="referenceName", min_length=1)
    commit_id: str = Field(alias="commitId")
    old_commit_id: str | None = Field(default=None, alias="oldCommitId")
    caller_user_arn: str | None = Field(default=None, alias="callerUserArn")


class CodeCommitReferenceEvent(EventBridgeModel):
    detail: CodeCommitReferenceDetail


S3ObjectCreatedEvent = S3EventNotificationEventBridgeModel


# ----------------------------------------------------------------------------- the request from the state machine
class NormaliseRequest(LenientModel):
    """What the state machine passes: the triggering event as EventBridge delivered it, and the run's identity."""

    event: dict[str, Any]
    run_id: str = Field(alias="runId", min_length=1, max_length=80)
    execution_arn: str = Field(alias="executionArn", min_length=1)
    started_at: str = Field(alias="startedAt", min_length=1)


# ----------------------------------------------------------------------------- settings
class Settings(BaseSettings):
    """Pipeline configuration, set by template.yaml from the stack's parameters."""

    model_config = SettingsConfigDict(frozen=True)

    environment: str = Field(min_length=1)
    code_repository: str = Field(min_length=1, description="CodeCommit name, or owner/name on GitHub")
    code_branch: str = Field(min_length=1)
    code_source: Literal["codecommit", "github"] = Field(
        default="codecommit", description="Where builds clone from: CodeCommit, or GitHub through a connection"
    )
    data_bucket_name: str = Field(min_length=3)
    data_prefix: str = ""
    data_trigger_mode: Literal["object", "marker"] = "object"
    data_marker_name: str = "_SUCCESS"
    training_instance_type: str = Field(pattern=r"^ml\.[a-z0-9]+(-[a-z0-9]+)?\.[a-z0-9]+$")
    training_instance_count: int = Field(default=1, ge=1, le=1)
    training_volume_size_gb: int = Field(default=30, ge=1, le=16384)
    training_max_runtime_seconds: int = Field(ge=1, le=28 * 24 * 3600)
    training_hyperparameters: dict[str, str] = Field(default_factory=dict)
    training_managed_spot: bool = Field(default=False, description="EnableManagedSpotTraining")
    training_max_wait_seconds: int = Field(default=7200, ge=1, le=28 * 24 * 3600, description="MaxWaitTimeInSeconds")
    training_keep_alive_seconds: int = Field(default=0, ge=0, le=21600, description="KeepAlivePeriodInSeconds")
    # NoDecode: the raw JSON text reaches the validator, which refuses a metric or operator given twice (a JSON
    # decoder would silently keep the last).
    gate_thresholds: Annotated[tuple[Threshold, ...], NoDecode] = Field(default=(), description="GateThresholds")
    gate_primary_metric: str = Field(default="validation:roc_auc", min_length=1, max_length=255)
    gate_primary_metric_direction: Literal["higher", "lower"] = "higher"
    gate_tolerance: float = Field(default=0.0, ge=0)
    model_approval_status: Literal["PendingManualApproval", "Approved"] = "PendingManualApproval"

    @model_validator(mode="after")
    def _spot_wait(self) -> "Settings":
        # The deploy refuses this already (TrainingSettingsCheck); a stack whose function settings were changed
        # by hand is refused here, before a run starts, rather than at every Train state.
        problem = spot_wait_problem(
            managed_spot=self.training_managed_spot,
            max_wait_seconds=self.training_max_wait_seconds,
            max_runtime_seconds=self.training_max_runtime_seconds,
        )
        if problem is not None:
            raise ValueError(problem)
        return self

    @field_validator("gate_thresholds", mode="before")
    @classmethod
    def _thresholds(cls, value: Any) -> tuple[Threshold, ...]:
        # The template's AllowedPattern refuses most mistakes at deploy time; what a pattern cannot see (a metric
        # or an operator given twice, a number too large for a float) is refused here, before anything runs.
        if isinstance(value, tuple):
            return value
        try:
            return parse_thresholds(value)
        except GateSettingsError as error:
            raise ValueError(str(error)) from None

    @property
    def gate(self) -> GateSettings:
        return GateSettings(
            thresholds=self.gate_thresholds,
            primary_metric=self.gate_primary_metric,
            direction=self.gate_primary_metric_direction,
            tolerance=self.gate_tolerance,
        )

    @field_validator("training_hyperparameters", mode="before")
    @classmethod
    def _hyperparameters_as_strings(cls, value: Any) -> dict[str, str]:
        # SageMaker takes hyperparameters as a map of strings; accept the JSON numbers people write.
        parsed = json.loads(value) if isinstance(value, str) else value
        if not isinstance(parsed, dict):
            raise ValueError('TRAINING_HYPERPARAMETERS must be a JSON object, for example {"max_depth": "3"}')
        bad = [key for key, item in parsed.items() if isinstance(item, dict | list) or item is None]
        if bad:
            raise ValueError(f"hyperparameters must be strings, numbers or booleans: {', '.join(sorted(bad))}")
        return {str(key): (str(item).lower() if isinstance(item, bool) else str(item)) for key, item in parsed.items()}

    @field_validator("data_prefix")
    @classmethod
    def _prefix_without_leading_slash(cls, value: str) -> str:
        return value.lstrip("/")


# ----------------------------------------------------------------------------- the run input
class DataVersion(BaseModel):
    """The exact data a run trains on."""

    bucket: str
    key: str
    version_id: str = Field(serialization_alias="versionId")
    etag: str | None = None
    size_bytes: int | None = None
    dataset_prefix: str | None = Field(
        default=None, description="Marker mode: the prefix that holds the dataset the marker completes"
    )

    @property
    def ref(self) -> str:
        """A canonical, human-readable identity of this data version (part of the run's claim key)."""
        return f"s3://{self.bucket}/{self.key}?versionId={self.version_id}"


class CommitRef(BaseModel):
    id: str
    repository: str
    branch: str
    image_tree: str | None = Field(
        default=None,
        description="The git tree of what the image build reads at this commit (common.image_tree); None when "
        "the source cannot tell without a clone (GitHub): the build derives it then",
    )
    author: str | None = None
    message: str | None = None
    url: str | None = None
    committed_at: str | None = None


TriggerKind = Literal["data", "code", "manual"]


class Trigger(BaseModel):
    kind: TriggerKind
    source: str
    event_id: str
    event_time: str
    actor: str | None = Field(default=None, description="Who caused the event: an IAM principal or a GitHub user")
    source_ip: str | None = None
    reason: str | None = Field(default=None, description="Why a manual run was requested, in the requester's words")


class TrainingConfig(BaseModel):
    instance_type: str = Field(serialization_alias="instanceType")
    instance_count: int = Field(serialization_alias="instanceCount")
    volume_size_gb: int = Field(serialization_alias="volumeSizeGb")
    max_runtime_seconds: int = Field(serialization_alias="maxRuntimeSeconds")
    hyperparameters: dict[str, str]
    managed_spot: bool = Field(serialization_alias="managedSpot")
    max_wait_seconds: int = Field(serialization_alias="maxWaitSeconds")
    keep_alive_seconds: int = Field(serialization_alias="keepAliveSeconds")
    volume_encrypted_with_pipeline_key: bool = Field(
        serialization_alias="volumeEncryptedWithPipelineKey",
        description=(
            "Whether Train sends VolumeKmsKeyId: SageMaker refuses it for an instance type with local storage, "
            "whose NVMe volumes are encrypted by the instance's hardware instead (common.instance_storage)"
        ),
    )

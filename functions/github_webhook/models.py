"""The webhook's settings, and the parts of GitHub's webhook payloads that it reads.

GitHub's payloads carry far more than this (and gain fields over time): unknown fields are ignored. Only what
the webhook uses is required, so a payload missing one of those is a 400, not a half-filled event.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.events import CommitId

GitSha = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
"""A full SHA-1 as GitHub reports it in `before` and `after` (all zeros for a created or deleted ref)."""

THREE_DAYS = 3 * 24 * 3600
"""GitHub lets a user redeliver any delivery from the last three days."""


class Settings(BaseSettings):
    """The webhook's configuration, set by template.yaml."""

    model_config = SettingsConfigDict(frozen=True)

    webhook_secret_arn: str = Field(min_length=1, description="Secrets Manager secret: the webhook secret, plain")
    code_repository: str = Field(pattern=r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$", description="owner/name on GitHub")
    code_branch: str = Field(min_length=1)
    event_bus_name: str = Field(default="default", min_length=1)
    runs_table_name: str = Field(min_length=3, description="DynamoDB table (pk, sk) holding idempotency records")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1, le=6 * 1024 * 1024)
    idempotency_seconds: int = Field(
        default=4 * 24 * 3600,
        ge=THREE_DAYS,
        description="How long a delivery id is remembered; at least GitHub's three-day redelivery window",
    )


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# ----------------------------------------------------------------------------- ping
class PingPayload(_Lenient):
    """Sent once when the webhook is created (and on "Redeliver" of that delivery)."""

    zen: str | None = None
    hook_id: int | None = None


# ----------------------------------------------------------------------------- push
class GitUser(_Lenient):
    name: str = ""
    email: str | None = None
    username: str | None = None

    def as_author(self) -> str:
        """'Name <email>', as git shows it."""
        return f"{self.name} <{self.email}>" if self.email else self.name


class PushCommit(_Lenient):
    id: CommitId
    message: str = ""
    timestamp: str | None = None
    url: str | None = None
    author: GitUser | None = None


class PushRepository(_Lenient):
    full_name: str = Field(min_length=3)


class Pusher(_Lenient):
    name: str = Field(min_length=1)
    email: str | None = None


class PushPayload(_Lenient):
    """GitHub's `push` event payload: one ref moved (or was created or deleted)."""

    ref: str = Field(min_length=1)
    before: GitSha
    after: GitSha
    created: bool = False
    deleted: bool
    forced: bool = False
    repository: PushRepository
    pusher: Pusher
    head_commit: PushCommit | None = Field(default=None, description="None when the ref was deleted")
    commits: list[PushCommit] = Field(default_factory=list)

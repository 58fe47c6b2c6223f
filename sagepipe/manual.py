"""Manual runs: train an explicit commit on an explicit data version, through the same event path as any trigger.

`sagepipe run` puts one `sagepipe.manual` / `Manual Run Requested` event on the default EventBridge bus; the
stack's ManualRunRequested rule starts the pipeline, and the run is claimed, recorded and notified like any
other. `sagepipe runs rerun` puts the same event with a `rerunOf`, a request id and the original run's training
configuration. The event's shape is functions/common/events.py's ManualRunDetail (tests/unit checks they agree).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

MANUAL_SOURCE = "sagepipe.manual"
MANUAL_RUN_REQUESTED = "Manual Run Requested"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class ManualRunError(ValueError):
    """The request is not a valid manual run; nothing was sent."""


@dataclass(frozen=True)
class DataVersion:
    bucket: str
    key: str
    version_id: str


def parse_commit(commit: str) -> str:
    if not _COMMIT.fullmatch(commit):
        raise ManualRunError(
            f"--commit must be a full 40-character lowercase SHA-1 (git rev-parse <ref> gives one), not {commit!r}"
        )
    return commit


def parse_data_uri(uri: str) -> DataVersion:
    """s3://bucket/key?versionId=... (the key may be URL-encoded); the version is required: runs are reproducible."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ManualRunError(f"--data must look like s3://bucket/key?versionId=..., not {uri!r}")
    versions = parse_qs(parsed.query).get("versionId")
    if not versions or not versions[0]:
        raise ManualRunError(
            "--data needs ?versionId=...: a run trains on an exact object version "
            "(aws s3api list-object-versions --bucket ... --prefix ... lists them)"
        )
    return DataVersion(parsed.netloc, unquote(parsed.path.lstrip("/")), versions[0])


@dataclass(frozen=True)
class Rerun:
    """What makes a manual run a re-run: the original, this request's id, and the original's training."""

    of: str
    request_id: str
    instance_type: str
    instance_count: int
    volume_size_gb: int
    max_runtime_seconds: int
    hyperparameters: dict[str, str]

    def detail(self) -> dict[str, Any]:
        return {
            "rerunOf": self.of,
            "rerunRequestId": self.request_id,
            "training": {
                "instanceType": self.instance_type,
                "instanceCount": self.instance_count,
                "volumeSizeGb": self.volume_size_gb,
                "maxRuntimeSeconds": self.max_runtime_seconds,
                "hyperparameters": self.hyperparameters,
            },
        }


def manual_run_entry(
    commit: str,
    data: DataVersion,
    requested_by: str,
    reason: str | None,
    rerun: Rerun | None = None,
    *,
    force: bool = False,
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "commit": commit,
        "data": {"bucket": data.bucket, "key": data.key, "versionId": data.version_id},
        "requestedBy": requested_by,
    }
    if reason:
        detail["reason"] = reason
    if rerun is not None:
        detail |= rerun.detail()
    if force:
        detail["force"] = True
    return {"Source": MANUAL_SOURCE, "DetailType": MANUAL_RUN_REQUESTED, "Detail": json.dumps(detail)}


def put_entry(events: Any, entry: dict[str, Any]) -> str:
    """Put one event on the default bus. Returns its EventBridge event id."""
    response = events.put_events(Entries=[entry])["Entries"][0]
    if "EventId" not in response:
        raise ManualRunError(
            f"EventBridge refused the event: {response.get('ErrorCode')}: {response.get('ErrorMessage')}"
        )
    return str(response["EventId"])


def who_am_i(sts: Any) -> str:
    try:
        return str(sts.get_caller_identity()["Arn"])
    except Exception:  # no credentials, or no STS: the request still names someone
        import getpass

        return f"local-user:{getpass.getuser()}"


def check_data_version(s3: Any, data: DataVersion) -> None:
    """Refuse a version that does not exist, before any run starts: it would only fail later, at staging."""
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=data.bucket, Key=data.key, VersionId=data.version_id)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        where = f"s3://{data.bucket}/{data.key}?versionId={data.version_id}"
        if code in {"404", "NoSuchKey", "NoSuchVersion", "NoSuchBucket", "400", "InvalidArgument"}:
            raise ManualRunError(f"{where} does not exist: no run was requested") from error
        if code in {"403", "AccessDenied"}:
            raise ManualRunError(f"cannot read {where} (access denied): no run was requested") from error
        raise ManualRunError(f"cannot check {where}: {code or error}") from error


def request_manual_run(
    events: Any, sts: Any, s3: Any, *, commit: str, data_uri: str, reason: str | None, force: bool = False
) -> str:
    """Validate (the data version must exist), then put the event. Returns the EventBridge event id."""
    data = parse_data_uri(data_uri)
    entry = manual_run_entry(parse_commit(commit), data, who_am_i(sts), reason, force=force)
    check_data_version(s3, data)
    return put_entry(events, entry)

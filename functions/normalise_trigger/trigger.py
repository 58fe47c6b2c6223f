"""Turn any triggering event into one run input, or into a logged reason to ignore it.

The EventBridge rules already filter by source, bucket, prefix, reason and branch, so in normal operation
everything that reaches this code is a run. The same checks are repeated here because an event can also
arrive through `put-events` by hand, a replay, or a rule someone edited; a run that should not start is
worse than a redundant check.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ValidationError

from common.dynamodb import to_attributes
from common.instance_storage import has_local_storage
from normalise_trigger.models import (
    CODECOMMIT_SOURCE,
    CODECOMMIT_STATE_CHANGE,
    CONTENT_CREATING_REASONS,
    GITHUB_PUSH,
    GITHUB_SOURCE,
    MANUAL_RUN_REQUESTED,
    MANUAL_SOURCE,
    S3_OBJECT_CREATED,
    S3_SOURCE,
    ZERO_COMMIT,
    CodeCommitReferenceEvent,
    CommitRef,
    DataVersion,
    GitHubPushEvent,
    ManualRunEvent,
    NormaliseRequest,
    S3ObjectCreatedEvent,
    Settings,
    TrainingConfig,
    TrainingOverride,
    Trigger,
    TriggerKind,
)

RECORD_SCHEMA_VERSION = 2
"""Version of the audit record layout (docs/audit-record.md). Bump it with every incompatible change.
RecordFailure in statemachine/pipeline.asl.json writes the same number into records it creates."""

_ONE_KIB = 1024


class IgnoredTrigger(Exception):
    """The event is not a reason to run. Carries the reason, which is logged and returned."""


@dataclass(frozen=True)
class Rerun:
    """A re-run of an earlier run: which, the request (part of the claim key), and the original's training."""

    of: str
    request_id: str
    training: TrainingOverride


@dataclass(frozen=True)
class RunInput:
    """A trigger that should run: one half (commit or data) or, for manual runs, both."""

    trigger: Trigger
    commit: CommitRef | None = None
    data: DataVersion | None = None
    rerun: Rerun | None = None
    force: bool = False
    """Train even when the training cache has a run with the same key (`sagepipe run --force`)."""


@dataclass(frozen=True)
class Decision:
    decision: Literal["run", "ignore"]
    reason: str | None = None
    run: RunInput | None = None
    payload: dict[str, Any] = field(default_factory=dict)


def _first_error(error: ValidationError) -> str:
    details = error.errors()
    shown = "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'event'}: {item['msg']}" for item in details[:3]
    )
    more = f" (and {len(details) - 3} more)" if len(details) > 3 else ""
    return shown + more


def _parse[M: BaseModel](model: type[M], event: dict[str, Any], what: str) -> M:
    try:
        return model.model_validate(event)
    except ValidationError as error:
        raise IgnoredTrigger(f"malformed {what} event: {_first_error(error)}") from error


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else str(value)


def _trigger(parsed: EventBridgeModel, kind: TriggerKind, **who: str | None) -> Trigger:
    """The trigger of a run: the event's envelope, and who (or why) from its detail."""
    return Trigger(kind=kind, source=parsed.source, event_id=parsed.id, event_time=_iso(parsed.time), **who)


# ----------------------------------------------------------------------------- data
def _data_run(event: dict[str, Any], settings: Settings) -> RunInput:
    parsed = _parse(S3ObjectCreatedEvent, event, "S3 Object Created")
    detail = parsed.detail
    if detail.bucket.name != settings.data_bucket_name:
        raise IgnoredTrigger(f"object is in bucket {detail.bucket.name!r}, not the data bucket")
    if detail.reason not in CONTENT_CREATING_REASONS:
        raise IgnoredTrigger(f"creation reason {detail.reason!r} is not new content")
    # S3 URL-encodes keys in event notifications, with '+' for a space.
    key = unquote_plus(detail.object.key)
    if not key.startswith(settings.data_prefix):
        raise IgnoredTrigger(f"key {key!r} is outside the data prefix {settings.data_prefix!r}")
    if key.endswith("/"):
        raise IgnoredTrigger(f"key {key!r} is a folder marker")
    dataset_prefix: str | None = None
    if settings.data_trigger_mode == "marker":
        folder, _, name = key.rpartition("/")
        if name != settings.data_marker_name:
            raise IgnoredTrigger(f"marker mode: {key!r} is part of a dataset, not its marker")
        dataset_prefix = f"{folder}/" if folder else ""
    elif not detail.object.size:
        # In marker mode the marker is usually empty (_SUCCESS); in object mode an empty object is no data.
        raise IgnoredTrigger(f"object {key!r} is empty (0 bytes)")
    version_id = detail.object.version_id
    if not version_id or version_id == "null":
        raise IgnoredTrigger(f"object {key!r} has no version id: the data bucket must have versioning on")

    return RunInput(
        trigger=_trigger(parsed, "data", actor=detail.requester, source_ip=detail.source_ip_address),
        data=DataVersion(
            bucket=detail.bucket.name,
            key=key,
            version_id=version_id,
            etag=detail.object.etag or None,
            size_bytes=int(detail.object.size or 0),
            dataset_prefix=dataset_prefix,
        ),
    )


# ----------------------------------------------------------------------------- code
def _codecommit_run(event: dict[str, Any], settings: Settings) -> RunInput:
    parsed = _parse(CodeCommitReferenceEvent, event, "CodeCommit")
    detail = parsed.detail
    if detail.repository_name != settings.code_repository:
        raise IgnoredTrigger(f"repository {detail.repository_name!r} is not {settings.code_repository!r}")
    if detail.reference_type != "branch":
        raise IgnoredTrigger(f"{detail.reference_type} {detail.reference_name!r} is not a branch")
    if detail.event == "referenceDeleted":
        raise IgnoredTrigger(f"branch {detail.reference_name!r} was deleted")
    if detail.reference_name != settings.code_branch:
        raise IgnoredTrigger(f"branch {detail.reference_name!r} is not {settings.code_branch!r}")
    commit_id = _full_commit(detail.commit_id)
    return RunInput(
        trigger=_trigger(parsed, "code", actor=detail.caller_user_arn),
        commit=CommitRef(id=commit_id, repository=detail.repository_name, branch=detail.reference_name),
    )


def _github_run(event: dict[str, Any], settings: Settings) -> RunInput:
    parsed = _parse(GitHubPushEvent, event, "GitHub push")
    detail = parsed.detail
    if detail.repository != settings.code_repository:
        raise IgnoredTrigger(f"repository {detail.repository!r} is not {settings.code_repository!r}")
    if not detail.ref.startswith("refs/heads/"):
        raise IgnoredTrigger(f"ref {detail.ref!r} is not a branch")
    branch = detail.ref.removeprefix("refs/heads/")
    if detail.deleted or detail.after == ZERO_COMMIT:
        raise IgnoredTrigger(f"branch {branch!r} was deleted")
    if branch != settings.code_branch:
        raise IgnoredTrigger(f"branch {branch!r} is not {settings.code_branch!r}")
    commit_id = _full_commit(detail.after)
    # The head commit's details describe the run's commit only if it is that commit.
    head = detail.head_commit if detail.head_commit and detail.head_commit.id == commit_id else None
    return RunInput(
        trigger=_trigger(parsed, "code", actor=detail.pusher),
        commit=CommitRef(
            id=commit_id,
            repository=detail.repository,
            branch=branch,
            author=head.author if head else None,
            message=_first_line(head.message) if head else None,
            url=head.url if head else None,
            committed_at=head.timestamp if head else None,
        ),
    )


def _full_commit(commit_id: str) -> str:
    if len(commit_id) != 40 or any(char not in "0123456789abcdef" for char in commit_id):
        raise IgnoredTrigger(f"commit id {commit_id[:64]!r} is not a full lowercase SHA-1")
    return commit_id


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0][:_ONE_KIB] if message.strip() else ""


# ----------------------------------------------------------------------------- manual
def _manual_run(event: dict[str, Any], settings: Settings) -> RunInput:
    parsed = _parse(ManualRunEvent, event, "manual run")
    detail = parsed.detail
    if detail.data.bucket != settings.data_bucket_name:
        raise IgnoredTrigger(f"data is in bucket {detail.data.bucket!r}, not the data bucket")
    rerun = None
    if detail.rerun_of is not None and detail.rerun_request_id is not None and detail.training is not None:
        rerun = Rerun(of=detail.rerun_of, request_id=detail.rerun_request_id, training=detail.training)
    return RunInput(
        trigger=_trigger(parsed, "manual", actor=detail.requested_by, reason=detail.reason),
        commit=CommitRef(id=detail.commit, repository=settings.code_repository, branch=settings.code_branch),
        data=DataVersion(bucket=detail.data.bucket, key=detail.data.key, version_id=detail.data.version_id),
        rerun=rerun,
        force=detail.force,
    )


_ROUTES = {
    (S3_SOURCE, S3_OBJECT_CREATED): _data_run,
    (CODECOMMIT_SOURCE, CODECOMMIT_STATE_CHANGE): _codecommit_run,
    (GITHUB_SOURCE, GITHUB_PUSH): _github_run,
    (MANUAL_SOURCE, MANUAL_RUN_REQUESTED): _manual_run,
}


def read_trigger(event: dict[str, Any], settings: Settings) -> RunInput:
    """Classify and validate an event. Raises IgnoredTrigger with the reason when it is not a run."""
    source, detail_type = event.get("source"), event.get("detail-type")
    route = _ROUTES.get((source, detail_type)) if isinstance(source, str) and isinstance(detail_type, str) else None
    if route is None:
        raise IgnoredTrigger(f"unsupported event: source={source!r} detail-type={detail_type!r}")
    return route(event, settings)


# ----------------------------------------------------------------------------- the payload for the state machine
def _commit_attributes(commit: CommitRef) -> dict[str, Any]:
    return to_attributes(
        {
            "commit_id": commit.id,
            "commit_repository": commit.repository,
            "commit_branch": commit.branch,
            "commit_author": commit.author,
            "commit_message": commit.message,
            "commit_url": commit.url,
            "committed_at": commit.committed_at,
            "commit_image_tree": commit.image_tree,
        }
    )


def _data_attributes(data: DataVersion) -> dict[str, Any]:
    return to_attributes(
        {
            "data_ref": data.ref,
            "data_bucket": data.bucket,
            "data_key": data.key,
            "data_version_id": data.version_id,
            "data_etag": data.etag,
            "data_size_bytes": data.size_bytes,
            "data_dataset_prefix": data.dataset_prefix,
        }
    )


def _waiting_reasons(settings: Settings) -> dict[str, str]:
    where = f"s3://{settings.data_bucket_name}/{settings.data_prefix}"
    marker = f" (marker mode: a dataset counts once its {settings.data_marker_name} object exists)"
    return {
        "forCommit": f"no commit has been seen yet on branch {settings.code_branch} of {settings.code_repository}",
        "forData": f"no training data has been uploaded yet under {where}"
        + (marker if settings.data_trigger_mode == "marker" else ""),
    }


def training_config(run: RunInput, settings: Settings) -> TrainingConfig:
    """The stack's training settings, or for a re-run the original run's; whether the volume takes the pipeline
    key is decided for the instance type actually used."""
    chosen = run.rerun.training if run.rerun is not None else None
    instance_type = chosen.instance_type if chosen else settings.training_instance_type
    max_runtime_seconds = chosen.max_runtime_seconds if chosen else settings.training_max_runtime_seconds
    return TrainingConfig(
        instance_type=instance_type,
        instance_count=chosen.instance_count if chosen else settings.training_instance_count,
        volume_size_gb=chosen.volume_size_gb if chosen else settings.training_volume_size_gb,
        max_runtime_seconds=max_runtime_seconds,
        hyperparameters=chosen.hyperparameters if chosen else settings.training_hyperparameters,
        # The stack's own, for a re-run too: they change what training costs, not what it produces.
        managed_spot=settings.training_managed_spot,
        # A re-run keeps its original's runtime, which may exceed this stack's wait: SageMaker needs wait >= runtime.
        max_wait_seconds=max(settings.training_max_wait_seconds, max_runtime_seconds),
        keep_alive_seconds=settings.training_keep_alive_seconds,
        volume_encrypted_with_pipeline_key=not has_local_storage(instance_type),
    )


def run_payload(request: NormaliseRequest, run: RunInput, settings: Settings) -> dict[str, Any]:
    """The run input: plain values for the workflow's decisions, and typed attributes for the audit record."""
    training = training_config(run, settings)
    base = to_attributes(
        {
            "pk": f"RUN#{request.run_id}",
            "sk": "RECORD",
            "schema_version": RECORD_SCHEMA_VERSION,
            "run_id": request.run_id,
            "execution_arn": request.execution_arn,
            "environment": settings.environment,
            "started_at": request.started_at,
            "trigger_kind": run.trigger.kind,
            "trigger_source": run.trigger.source,
            "trigger_event_id": run.trigger.event_id,
            "triggered_at": run.trigger.event_time,
            "triggered_by": run.trigger.actor,
            "trigger_source_ip": run.trigger.source_ip,
            "trigger_reason": run.trigger.reason,
            "instance_type": training.instance_type,
            "instance_count": training.instance_count,
            "volume_size_gb": training.volume_size_gb,
            "max_runtime_seconds": training.max_runtime_seconds,
            "hyperparameters": training.hyperparameters,
            "rerun_of": run.rerun.of if run.rerun else None,
            "rerun_request_id": run.rerun.request_id if run.rerun else None,
        }
    )
    payload: dict[str, Any] = {
        "decision": "run",
        "kind": run.trigger.kind,
        "runId": request.run_id,
        "environment": settings.environment,
        "training": training.model_dump(by_alias=True),
        # The stack's gate and registry settings now, also for a re-run: the gate judges the model against today's
        # thresholds and champion.
        "gate": settings.gate.payload(),
        "registry": {"approvalStatus": settings.model_approval_status},
        "waiting": _waiting_reasons(settings),
        "record": {"base": base},
        "force": run.force,
    }
    if run.rerun is not None:
        # The claim key gets the request id: a re-run is not a duplicate of its original, and a redelivered
        # re-run request is a duplicate of the re-run.
        payload["rerun"] = {"of": run.rerun.of, "requestId": run.rerun.request_id}
    if run.commit is not None:
        payload["record"]["commit"] = _commit_attributes(run.commit)
    if run.data is not None:
        payload["record"]["data"] = _data_attributes(run.data)
    return payload


ImageTreeResolver = Callable[[str, str], str | None]
"""(repository, commit) -> the commit's image tree id (common.image_tree), or None when it cannot be read."""


def with_image_tree(run: RunInput, settings: Settings, resolve: ImageTreeResolver | None) -> RunInput:
    """The run with its commit's image tree, read from CodeCommit when builds clone from CodeCommit. A GitHub
    commit's tree needs a clone (the push event carries only the root tree, and CodeConnections has no API to
    read a repository), so it stays unknown and the build derives it (buildspec.yml)."""
    if resolve is None or run.commit is None or run.commit.image_tree is not None:
        return run
    from_codecommit = run.trigger.source == CODECOMMIT_SOURCE or (
        run.trigger.kind == "manual" and settings.code_source == "codecommit"
    )
    if not from_codecommit:
        return run
    tree = resolve(run.commit.repository, run.commit.id)
    return replace(run, commit=run.commit.model_copy(update={"image_tree": tree})) if tree else run


def normalise(
    request: NormaliseRequest, settings: Settings, resolve_image_tree: ImageTreeResolver | None = None
) -> Decision:
    """Decide whether the event runs the pipeline, and build the run input when it does."""
    try:
        run = read_trigger(request.event, settings)
    except IgnoredTrigger as ignored:
        reason = str(ignored)
        return Decision(decision="ignore", reason=reason, payload={"decision": "ignore", "reason": reason})
    run = with_image_tree(run, settings, resolve_image_tree)
    return Decision(decision="run", run=run, payload=run_payload(request, run, settings))

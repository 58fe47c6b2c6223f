"""`sagepipe runs rerun`: train an old run's commit on its data version with its training configuration, again.

The request is a `sagepipe.manual` event (sagepipe/manual.py) carrying `rerunOf`, a fresh request id and the
original's training configuration, so the re-run uses those, not the stack's current settings. The pipeline
claims `CLAIM#<commit>#<data ref>#RERUN#<request id>`: the re-run is not a duplicate of its original, and a
redelivered request is a duplicate of the re-run. Its record says `rerun_of`; when it ends, its model content
digest is compared with the original's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from sagepipe.manual import (
    DataVersion,
    ManualRunError,
    Rerun,
    check_data_version,
    manual_run_entry,
    put_entry,
    who_am_i,
)
from sagepipe.runs.errors import RunsError
from sagepipe.runs.queries import RunsTable
from sagepipe.runs.records import FINAL_STATUSES
from sagepipe.runs.stack import Stack

CLOCK_SKEW = timedelta(minutes=5)
"""How much earlier than this machine's clock the execution's start may be stamped."""
DEFAULT_INSTANCE_COUNT = 1
DEFAULT_VOLUME_SIZE_GB = 30


@dataclass(frozen=True)
class RerunRequest:
    original: str
    request_id: str
    event_id: str
    commit: str
    since: str
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "rerun_of": self.original,
            "request_id": self.request_id,
            "event_id": self.event_id,
            "commit": self.commit,
            "notes": self.notes,
        }


def rerun_of(record: Mapping[str, Any], stack: Stack, request_id: str) -> tuple[str, DataVersion, Rerun, list[str]]:
    """The commit, data version and training configuration of `record`, as a re-run request."""
    run_id = str(record.get("run_id"))
    needed = ("commit_id", "data_bucket", "data_key", "data_version_id")
    if any(not record.get(name) for name in needed):
        raise RunsError(
            f"run {run_id} ({record.get('status')}) names no commit and data version to train again: nothing to re-run"
        )
    if record.get("data_dataset_prefix"):
        raise RunsError(
            f"run {run_id} trained on a marker-mode dataset: re-run it by writing its marker again "
            f"(s3://{record['data_bucket']}/{record['data_key']})"
        )
    notes: list[str] = []
    hyperparameters = record.get("hyperparameters")
    if not isinstance(hyperparameters, Mapping):
        raise RunsError(f"run {run_id} has no recorded hyperparameters: it cannot be re-run as it was")

    def configured(name: str, parameter: str, default: Any) -> Any:
        """The record's value; a schema 1 record lacks some, and the stack's current setting stands in."""
        if name in record:
            return record[name]
        value = stack.parameters.get(parameter, default)
        notes.append(f"the original record has no {name} (schema 1): using {value}")
        return value

    rerun = Rerun(
        of=run_id,
        request_id=request_id,
        instance_type=str(configured("instance_type", "TrainingInstanceType", "ml.m5.large")),
        instance_count=int(configured("instance_count", "TrainingInstanceCount", DEFAULT_INSTANCE_COUNT)),
        volume_size_gb=int(configured("volume_size_gb", "TrainingVolumeSizeGb", DEFAULT_VOLUME_SIZE_GB)),
        max_runtime_seconds=int(configured("max_runtime_seconds", "TrainingMaxRuntimeSeconds", 3600)),
        hyperparameters={str(key): str(value) for key, value in hyperparameters.items()},
    )
    data = DataVersion(str(record["data_bucket"]), str(record["data_key"]), str(record["data_version_id"]))
    return str(record["commit_id"]), data, rerun, notes


def request_rerun(
    events: Any,
    sts: Any,
    s3: Any,
    record: Mapping[str, Any],
    stack: Stack,
    *,
    reason: str | None,
    force: bool = False,
    now: datetime | None = None,
) -> RerunRequest:
    """Check the data version still exists, then put the re-run request. Returns what to wait for."""
    request_id = str(uuid.uuid4())
    commit, data, rerun, notes = rerun_of(record, stack, request_id)
    started = (now or datetime.now(UTC)) - CLOCK_SKEW
    try:
        check_data_version(s3, data)
        entry = manual_run_entry(
            commit, data, who_am_i(sts), reason or f"re-run of {rerun.of}", rerun=rerun, force=force
        )
        event_id = put_entry(events, entry)
    except ManualRunError as error:
        raise RunsError(str(error)) from None
    return RerunRequest(
        original=rerun.of,
        request_id=request_id,
        event_id=event_id,
        commit=commit,
        since=started.strftime("%Y-%m-%dT%H:%M:%S"),
        notes=notes,
    )


def _execution_running(sfn: Any, execution_arn: Any) -> bool:
    if not execution_arn:
        return False
    try:
        return bool(sfn.describe_execution(executionArn=str(execution_arn))["status"] == "RUNNING")
    except ClientError:
        return False  # no such execution here (or no permission): the final record is the answer


def wait_for_rerun(
    table: RunsTable,
    request: RerunRequest,
    *,
    timeout: float,
    sfn: Any = None,
    poll_seconds: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any] | None:
    """The re-run's record once the run has ended, or None after `timeout` seconds.

    It polls the runs-by-commit index until the re-run's record is final, then (given a Step Functions client)
    its execution until it has ended too, so the record read last is sealed and notified. Reads back off to
    one every 30 s: a training job takes minutes.
    """
    deadline = clock() + timeout
    delay = poll_seconds

    def wait() -> bool:
        nonlocal delay
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        sleep(min(delay, remaining))
        delay = min(delay * 2, 30.0)
        return True

    while True:
        record = table.find_rerun(request.commit, request.request_id, request.since)
        if record is not None and record.get("status") in FINAL_STATUSES:
            break
        if not wait():
            return None
    if sfn is not None:
        while _execution_running(sfn, record.get("execution_arn")) and wait():
            pass
        record = table.get(str(record["run_id"]))
    return record


@dataclass(frozen=True)
class ModelComparison:
    identical: bool | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"identical": self.identical, "detail": self.detail}


def compare_models(original: Mapping[str, Any], rerun: Mapping[str, Any]) -> ModelComparison:
    """Whether the re-run produced the same model: the content digests, which packing does not change."""
    if rerun.get("status") != "SUCCEEDED":
        return ModelComparison(None, f"the re-run ended {rerun.get('status')}: it produced no model to compare")
    theirs, ours = original.get("model_content_sha256"), rerun.get("model_content_sha256")
    if theirs is None:
        return ModelComparison(
            None, f"run {original.get('run_id')} has no content digest (schema 1); the re-run's is {ours}"
        )
    if theirs == ours:
        return ModelComparison(True, f"identical model: content sha256 {ours}")
    return ModelComparison(False, f"different model: content sha256 {ours}, the original's {theirs}")

"""Managed Spot training, locally: the checkpoint store, the settings SageMaker refuses, and the interruption fault.

AWS
    With EnableManagedSpotTraining, a job runs on Spot capacity and may be interrupted when the capacity is
    reclaimed; SageMaker then restarts it, copying CheckpointConfig.S3Uri back into /opt/ml/checkpoints first,
    until MaxWaitTimeInSeconds (which must be at least MaxRuntimeInSeconds) runs out. The job's
    SecondaryStatusTransitions show Interrupted and Restarting; BillableTimeInSeconds against
    TrainingTimeInSeconds gives the saving (botocore's SageMaker model: StoppingCondition, SecondaryStatus,
    DescribeTrainingJob's BillableTimeInSeconds; Developer Guide, "Managed Spot Training" and "Checkpoints").
Locally
    There is no Spot market, so nothing is reclaimed unless a test arms an interruption
    (`spot_interruptions().arm()`): the next Spot job is then stopped (SIGTERM, SIGKILL after the grace) as soon as
    it has written a checkpoint, its checkpoints are copied to the S3Uri in the emulator's S3, and it restarts on a
    fresh model, output and checkpoint directory restored from there.
How it differs
    The checkpoint directory is copied when each run of the job ends, not continuously, and deletions are not
    copied; the restart is immediate; and BillableTimeInSeconds is the job's wall time, so the local saving is
    always 0 %. Only CheckpointConfig's default LocalPath is supported.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

from sagepipe.local.core import context
from sagepipe.local.stepfunctions.sync_task import client_error

DEFAULT_CHECKPOINT_PATH: Final = "/opt/ml/checkpoints"
"""CheckpointConfig.LocalPath's default (botocore's SageMaker model, CheckpointConfig.LocalPath)."""


class SpotInterruptions:
    """Interruptions armed for the next managed Spot training job (in the runtime context; reset clears it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = 0

    def arm(self, times: int = 1) -> None:
        """Interrupt the next Spot job `times` times, each once it has written a checkpoint since it started."""
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._pending += times

    def take(self) -> int:
        """The interruptions armed for a Spot job starting now (and none for the next one)."""
        with self._lock:
            pending, self._pending = self._pending, 0
            return pending


def spot_interruptions() -> SpotInterruptions:
    return context.current().state(SpotInterruptions)


def refuse_invalid_spot_settings(params: dict[str, Any]) -> None:
    """Refuse what CreateTrainingJob refuses of the Spot settings, as a ValidationException.

    The rules are botocore's SageMaker model's ("It must be equal to or greater than MaxRuntimeInSeconds");
    the messages are the local runtime's own words.
    """
    stopping = params.get("StoppingCondition", {})
    spot = bool(params.get("EnableManagedSpotTraining"))
    max_wait = stopping.get("MaxWaitTimeInSeconds")
    if spot and max_wait is None:
        raise client_error(
            "ValidationException", "MaxWaitTimeInSeconds is required in StoppingCondition for managed spot training"
        )
    if not spot and max_wait is not None:
        raise client_error(
            "ValidationException", "MaxWaitTimeInSeconds can only be specified for managed spot training"
        )
    if max_wait is not None and int(max_wait) < int(stopping.get("MaxRuntimeInSeconds", 86400)):
        raise client_error(
            "ValidationException",
            f"MaxWaitTimeInSeconds ({max_wait}) must be equal to or greater than MaxRuntimeInSeconds "
            f"({stopping.get('MaxRuntimeInSeconds', 86400)})",
        )
    local_path = params.get("CheckpointConfig", {}).get("LocalPath", DEFAULT_CHECKPOINT_PATH)
    if local_path.rstrip("/") != DEFAULT_CHECKPOINT_PATH:
        raise client_error(
            "ValidationException",
            f"CheckpointConfig.LocalPath {local_path} is not supported locally (only the default)",
        )


class S3CheckpointStore:
    """CheckpointConfig.S3Uri in the emulator's S3."""

    def __init__(self, uri: str) -> None:
        url = urlparse(uri)
        self.bucket = url.netloc
        self.prefix = url.path.strip("/")

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def save(self, directory: Path) -> None:
        # Imported here, as the adapter imports the executor: only when a job runs.
        from sagepipe.local.sagemaker.training import whole_files

        s3 = context.current().client("s3")
        for path in whole_files(directory):
            s3.upload_file(str(path), self.bucket, self._key(path.relative_to(directory).as_posix()))

    def restore(self, directory: Path) -> None:
        s3 = context.current().client("s3")
        listing = f"{self.prefix}/" if self.prefix else ""
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=listing):
            for item in page.get("Contents", []):
                relative = item["Key"][len(listing) :]
                if not relative or relative.endswith("/"):
                    continue
                destination = directory / relative
                # A key naming a place outside the directory (".." parts) is not a checkpoint of this job.
                if not destination.resolve().is_relative_to(directory.resolve()):
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(self.bucket, item["Key"], str(destination))

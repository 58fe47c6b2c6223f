"""Managed Spot training: an interrupted job restarts from its checkpoints and ends with the model it would have
written uninterrupted; the record keeps SageMaker's times, the interruptions and the saving.

The interruption is a fault of the local runtime (sagepipe.local.sagemaker.spot): the next Spot job is stopped as
soon as it has written a checkpoint, its checkpoints are copied to CheckpointConfig.S3Uri, and it restarts on
fresh directories restored from there, as SageMaker restarts a reclaimed job (Developer Guide, "Managed Spot
Training", "Checkpoints in Amazon SageMaker AI").
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]
import pytest

from sagepipe.local.core import context
from sagepipe.local.runner import LocalPipeline
from sagepipe.local.sagemaker import spot
from tests.local.conftest import TrainingRepository, create_training_job_request, read_s3_uri, run_through_events

pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Enough boosting stages (24 checkpoints) that the job is still fitting when its first checkpoint is seen.
SLOW_HYPERPARAMETERS = {"n_estimators": "600", "max_depth": "2", "learning_rate": "0.1"}
SPOT_STACK = {
    "EnableManagedSpotTraining": "true",
    "MaxWaitTimeInSeconds": "5400",
    "KeepAlivePeriodInSeconds": "600",
    "TrainingHyperparameters": json.dumps(SLOW_HYPERPARAMETERS),
}


def _model_file_from_archive(archive: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = tar.extractfile("model.joblib")
        assert member is not None
        return member.read()


def _uninterrupted_model_file(data: Path, hyperparameters: dict[str, str], work: Path) -> bytes:
    """The model train.py writes when nothing interrupts it, run directly on the same data."""
    channel = work / "opt" / "ml" / "input" / "data" / "train"
    channel.mkdir(parents=True)
    (channel / data.name).write_bytes(data.read_bytes())
    environment = dict(
        os.environ,
        SAGEMAKER_BASE_DIR=str(work / "opt" / "ml"),
        SM_CHANNEL_TRAIN=str(channel),
        SM_MODEL_DIR=str(work / "model"),
        SM_OUTPUT_DIR=str(work / "output"),
        SM_OUTPUT_DATA_DIR=str(work / "output" / "data"),
    )
    arguments = [part for name, value in hyperparameters.items() for part in (f"--{name}", value)]
    finished = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "container" / "train.py"), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return (work / "model" / "model.joblib").read_bytes()


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
@pytest.mark.parametrize("stack_parameters", [SPOT_STACK])
def test_an_interrupted_spot_job_resumes_from_its_checkpoint_and_trains_the_uninterrupted_model(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path, tmp_path: Path
) -> None:
    """Given a stack with managed Spot training and a warm pool, and one Spot interruption armed;
    When new data starts a run;
    Then Train asks SageMaker for Spot with the stack's wait, a warm pool and a checkpoint location under the run;
    the job is interrupted once, restarts and resumes from its checkpoint; the run SUCCEEDS with the model an
    uninterrupted job writes; and the record keeps SageMaker's times, the interruption and the saving."""
    # Given one interruption armed
    spot.spot_interruptions().arm()

    # When data starts a run
    *_, run = run_through_events(pipeline, commit=repository.head, data=training_data)

    # Then it succeeded
    assert run.status == "SUCCEEDED", run.cause
    request = create_training_job_request(run)
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 5400}
    assert request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600
    artifacts = pipeline.stack.outputs["ArtifactsBucketName"]
    assert request["CheckpointConfig"] == {"S3Uri": f"s3://{artifacts}/runs/{run.run_id}/checkpoints/"}

    # And the job was interrupted once, then restarted and resumed from its checkpoint
    record = run.record
    assert record is not None
    sagemaker = pipeline.emulator.client("sagemaker")
    job = sagemaker.describe_training_job(TrainingJobName=record["training_job_name"])
    statuses = [transition["Status"] for transition in job["SecondaryStatusTransitions"]]
    assert statuses.count("Interrupted") == 1, statuses
    assert statuses[statuses.index("Interrupted") :][:3] == ["Interrupted", "Restarting", "Training"]
    assert statuses[-1] == "Completed"
    job_log = context.current().job_logs[record["training_job_name"]].read_text(encoding="utf-8")
    assert "checkpoint: resuming from" in job_log

    # And its checkpoints are kept under the run, encrypted with the pipeline key
    s3 = pipeline.emulator.client("s3")
    kept = s3.list_objects_v2(Bucket=artifacts, Prefix=f"runs/{run.run_id}/checkpoints/").get("Contents", [])
    assert kept, "no checkpoint was copied to CheckpointConfig.S3Uri"
    head = s3.head_object(Bucket=artifacts, Key=kept[0]["Key"])
    assert head["ServerSideEncryption"] == "aws:kms"

    # And the model equals the one an uninterrupted job writes
    spot_model = _model_file_from_archive(read_s3_uri(pipeline, record["artifact_uri"]))
    whole_model = _uninterrupted_model_file(training_data, SLOW_HYPERPARAMETERS, tmp_path / "uninterrupted")
    assert spot_model == whole_model, "the resumed job's model file differs from the uninterrupted job's"
    assert joblib.load(io.BytesIO(spot_model)).n_estimators_ == int(SLOW_HYPERPARAMETERS["n_estimators"])

    # And the record keeps SageMaker's times, the interruption and the saving SageMaker's numbers give
    assert record["spot"]["managed"] is True
    assert record["spot"]["interruptions"] == 1
    assert record["spot"]["max_wait_seconds"] == 5400
    billable, training = job["BillableTimeInSeconds"], job["TrainingTimeInSeconds"]
    assert record["timings"]["billable_seconds"] == billable
    assert record["timings"]["sagemaker_training_seconds"] == training
    assert record["spot"]["savings_percent"] == round((1 - billable / training) * 100, 1)


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
def test_without_spot_no_spot_settings_are_sent_and_no_interruption_applies(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path
) -> None:
    """Given the default stack (on-demand, no warm pool) and an interruption armed;
    When a run trains;
    Then Train sends neither a wait nor a warm pool, the on-demand job is never interrupted, and the record has
    no spot section."""
    spot.spot_interruptions().arm()

    *_, run = run_through_events(pipeline, commit=repository.head, data=training_data)

    assert run.status == "SUCCEEDED", run.cause
    request = create_training_job_request(run)
    assert request["EnableManagedSpotTraining"] is False
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert "KeepAlivePeriodInSeconds" not in request["ResourceConfig"]
    assert run.record is not None
    assert "spot" not in run.record
    job = pipeline.emulator.client("sagemaker").describe_training_job(TrainingJobName=run.record["training_job_name"])
    assert "Interrupted" not in [transition["Status"] for transition in job["SecondaryStatusTransitions"]]
    # The armed interruption waits for a Spot job; a reset of the runtime clears it.
    assert spot.spot_interruptions().take() == 1


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"EnableManagedSpotTraining": True, "StoppingCondition": {"MaxRuntimeInSeconds": 3600}}, "is required"),
        ({"StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120}}, "only be specified"),
        (
            {
                "EnableManagedSpotTraining": True,
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 1800},
            },
            "must be equal to or greater than MaxRuntimeInSeconds",
        ),
    ],
)
def test_the_local_sagemaker_refuses_spot_settings_sagemaker_refuses(
    pipeline: LocalPipeline, params: dict[str, Any], problem: str
) -> None:
    """Given Spot settings SageMaker refuses (botocore's SageMaker model, StoppingCondition.MaxWaitTimeInSeconds),
    when the local SageMaker is asked to create the job, then it answers ValidationException saying why; valid
    settings pass."""
    with pytest.raises(Exception, match=problem) as refused:
        spot.refuse_invalid_spot_settings(params)
    assert refused.value.response["Error"]["Code"] == "ValidationException"  # type: ignore[attr-defined]

    spot.refuse_invalid_spot_settings(
        {
            "EnableManagedSpotTraining": True,
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600},
        }
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            ["EnableManagedSpotTraining=true", "MaxWaitTimeInSeconds=1800"],
            "TrainingSettingsCheck (Custom::TrainingSettingsCheck) failed: MaxWaitTimeInSeconds (1800) is shorter "
            "than TrainingMaxRuntimeSeconds (3600)",
        ),
        (["TrainingCacheVersion=two words"], "Malformed input-Parameter TrainingCacheVersion 1 to 32 characters"),
    ],
)
def test_settings_a_deploy_refuses_are_refused_locally_in_one_line_before_anything_runs(
    tmp_path: Path, params: list[str], expected: str
) -> None:
    """Given `sagepipe local run` with settings CloudFormation would refuse (a Spot wait below the runtime, which
    the settings check fails; a cache version its AllowedPattern refuses);
    When it starts;
    Then it exits 7 with one line naming the problem, no traceback, and no run started."""
    from tests.local.test_replay_and_cli import run_cli

    arguments = [part for param in params for part in ("--param", param)]
    cli = run_cli(tmp_path, *arguments)

    assert cli.returncode == 7, cli.explain()
    errors = [line for line in cli.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, cli.explain()
    assert expected in errors[0]
    assert "Traceback" not in cli.stderr + cli.stdout
    assert not (cli.state_dir / "runs").exists() or cli.run_dirs() == []

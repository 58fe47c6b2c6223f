"""Exactly once under a storm: 1,000 deliveries of one data version start exactly one training job.

S3 and EventBridge deliver at least once. Here the same S3 event is delivered 1,000 times (the upload's own
delivery, then 999 redeliveries put while the first run is still going), through the real rule, on the local
runtime. The claim on (commit, data version) must let exactly one execution train; every other one must end
quickly as a recorded duplicate, under its own key, leaving the first run's record as that run wrote it.

With the training cache, the same holds for bytes an earlier run trained on: the one execution that claims the
new data version ends CACHED from the earlier run (no build, no training job), and the 999 others are its
duplicates.
"""

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from sagepipe.local.core import context
from sagepipe.local.runner import LocalPipeline
from tests.local.conftest import TrainingRepository, run_through_events, states_entered

pytestmark = pytest.mark.e2e

DELIVERIES = 1000
STORM_TIMEOUT_SECONDS = 900.0


def _runs_table(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    dynamodb = pipeline.emulator.client("dynamodb")
    deserializer = TypeDeserializer()
    items: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {"TableName": pipeline.stack.outputs["RunsTableName"], "ConsistentRead": True}
    for _ in range(1000):  # pages; bounded
        page = dynamodb.scan(**arguments)
        items += [{name: deserializer.deserialize(value) for name, value in item.items()} for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items


def test_a_storm_of_1000_deliveries_of_one_data_version_trains_once(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path
) -> None:
    """Given HEAD pushed (so a data upload runs), when one upload's event is delivered 1,000 times, then exactly
    one training job and one build run, 999 executions end as DUPLICATE records pointing at the first run
    (without a build or a training step), and the first run's record is the one its own execution wrote."""
    # Given
    (pushed,) = run_through_events(pipeline, commit=repository.head, data=None)
    assert pushed.record is not None
    assert pushed.record["status"] == "SKIPPED"
    sagemaker = pipeline.emulator.client("sagemaker")
    codebuild = pipeline.emulator.client("codebuild")
    builds_before = len(codebuild.list_builds()["ids"])

    # When: the upload's own delivery, then 999 redeliveries of the same event while its run is going
    key, version, arns = _storm(pipeline, training_data, f"{pipeline.data_prefix}storm.csv")

    # Then: exactly one training job and one build
    jobs = sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    assert len(jobs) == 1, [job["TrainingJobName"] for job in jobs]
    assert len(codebuild.list_builds()["ids"]) == builds_before + 1

    # Then: one run trained (whichever claimed first); every other delivery is its recorded duplicate
    runs = {item["run_id"]: item for item in _runs_table(pipeline) if item["sk"] == "RECORD"}
    storm_runs = [runs[arn.rsplit(":", 1)[-1]] for arn in arns]
    assert Counter(run["status"] for run in storm_runs) == {"SUCCEEDED": 1, "DUPLICATE": DELIVERIES - 1}
    (owner,) = [run for run in storm_runs if run["status"] == "SUCCEEDED"]
    assert {run["duplicate_of"] for run in storm_runs if run["status"] == "DUPLICATE"} == {owner["run_id"]}
    assert (owner["data_key"], owner["data_version_id"]) == (key, version)
    assert owner["training_job_name"] == jobs[0]["TrainingJobName"]

    # Then: the owner's record is only ever written by the owner's execution: its last write came before that
    # execution ended, and it names that execution
    sfn = pipeline.emulator.client("stepfunctions")
    owner_execution = sfn.describe_execution(executionArn=owner["execution_arn"])
    assert owner_execution["status"] == "SUCCEEDED"
    assert datetime.fromisoformat(owner["updated_at"]) <= owner_execution["stopDate"]

    # Then: duplicates end quickly: no build, no staging, no training (checked on a sample of histories)
    _assert_duplicates_end_quickly(pipeline, [arn for arn in arns if arn != owner["execution_arn"]])


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
def test_a_storm_of_1000_deliveries_of_bytes_trained_on_before_ends_one_cached_run(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path
) -> None:
    """Given a run that trained on some bytes, when an upload of the same bytes under another key (a new data
    version) is delivered 1,000 times, then no build and no training job start, exactly one execution ends
    CACHED from the run that trained, and the 999 others end as DUPLICATE records pointing at the CACHED run."""
    # Given
    _, trained = run_through_events(pipeline, commit=repository.head, data=training_data)
    assert trained.record is not None
    assert trained.record["status"] == "SUCCEEDED", trained.cause
    sagemaker = pipeline.emulator.client("sagemaker")
    codebuild = pipeline.emulator.client("codebuild")
    jobs_before = len(sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])
    builds_before = len(codebuild.list_builds()["ids"])

    # When: the same bytes under another key, its upload's event delivered 1,000 times
    key, version, arns = _storm(pipeline, training_data, f"{pipeline.data_prefix}storm-again.csv")

    # Then: nothing was built or trained
    assert len(sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]) == jobs_before
    assert len(codebuild.list_builds()["ids"]) == builds_before

    # Then: one run ended CACHED from the trained run, on the new data version; every other is its duplicate
    runs = {item["run_id"]: item for item in _runs_table(pipeline) if item["sk"] == "RECORD"}
    storm_runs = [runs[arn.rsplit(":", 1)[-1]] for arn in arns]
    assert Counter(run["status"] for run in storm_runs) == {"CACHED": 1, "DUPLICATE": DELIVERIES - 1}
    (cached,) = [run for run in storm_runs if run["status"] == "CACHED"]
    assert cached["cached_from"] == trained.run_id
    assert (cached["data_key"], cached["data_version_id"]) == (key, version)
    assert cached["cache_key"] == trained.record["cache_key"]
    assert {run["duplicate_of"] for run in storm_runs if run["status"] == "DUPLICATE"} == {cached["run_id"]}
    assert runs[trained.run_id]["status"] == "SUCCEEDED", "the storm left the trained run's record alone"

    # Then: duplicates end quickly: no build, no staging, no training (checked on a sample of histories)
    _assert_duplicates_end_quickly(pipeline, [arn for arn in arns if arn != cached["execution_arn"]])


def _storm(pipeline: LocalPipeline, data: Path, key: str) -> tuple[str, str, list[str]]:
    """Upload `data` under `key`, then deliver its event again DELIVERIES - 1 times while its run is going; wait
    until every execution ended. Returns the key, its version, and the DELIVERIES executions started."""
    marker = pipeline.execution_marker()
    uploaded_key, version = pipeline.upload_data(data, key)
    (first,) = context.current().wait_for_executions(marker, 1, timeout=30)
    pipeline.redeliver(first.event, DELIVERIES - 1)
    arns = pipeline.started_since(marker, count=DELIVERIES, timeout=120)
    pipeline.wait_until_idle(timeout=STORM_TIMEOUT_SECONDS)
    return uploaded_key, version, arns


def _assert_duplicates_end_quickly(pipeline: LocalPipeline, duplicates: list[str]) -> None:
    """A sample of the duplicates' histories: each ends with its duplicate record sealed, and none built, staged or
    trained."""
    for arn in duplicates[:: len(duplicates) // 10]:
        entered = states_entered(pipeline.follow(arn, timeout=30))
        assert entered[-5:] == ["RecordDuplicate", "SealRecord", "NotifyOutcome", "CheckSeal", "RunEnded"], entered
        staging = {"StageTrainingData", "StageTrainingDataInParts", "StageDataset"}
        assert not {"FindImage", "BuildImage", "Train", "ComputeCacheKey", *staging} & set(entered), entered

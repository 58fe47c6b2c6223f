"""Exactly once under a storm: 1,000 deliveries of one data version start exactly one training job.

S3 and EventBridge deliver at least once. Here the same S3 event is delivered 1,000 times (the upload's own
delivery, then 999 redeliveries put while the first run is still going), through the real rule, on the local
runtime. The claim on (commit, data version) must let exactly one execution train; every other one must end
quickly as a recorded duplicate, under its own key, leaving the first run's record as that run wrote it.
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
    marker = pipeline.execution_marker()
    key, version = pipeline.upload_data(training_data, f"{pipeline.data_prefix}storm.csv")
    (first,) = context.current().wait_for_executions(marker, 1, timeout=30)
    pipeline.redeliver(first.event, DELIVERIES - 1)
    arns = pipeline.started_since(marker, count=DELIVERIES, timeout=120)
    pipeline.wait_until_idle(timeout=STORM_TIMEOUT_SECONDS)

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
    duplicates = [arn for arn in arns if arn != owner["execution_arn"]]
    for arn in duplicates[:: len(duplicates) // 10]:
        entered = states_entered(pipeline.follow(arn, timeout=30))
        assert entered[-5:] == ["RecordDuplicate", "SealRecord", "NotifyOutcome", "CheckSeal", "RunEnded"], entered
        staging = {"StageTrainingData", "StageTrainingDataInParts", "StageDataset"}
        assert not {"FindImage", "BuildImage", "Train", *staging} & set(entered), entered

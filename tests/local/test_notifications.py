"""Notifications people can act on: the rendered SNS messages of a real success and a real failure.

Two queues subscribe to the topic, as a team would: one takes everything, one filters on the `status`
message attribute to receive failures only.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sagepipe.local.runner import LocalPipeline
from tests.local.conftest import Notifications, TrainingRepository, run_through_events

pytestmark = pytest.mark.e2e

CONSOLE = "https://us-east-1.console.aws.amazon.com"


def _subscribe_failures_only(pipeline: LocalPipeline) -> Notifications:
    sqs = pipeline.emulator.client("sqs")
    url = sqs.create_queue(QueueName="on-call")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pipeline.emulator.client("sns").subscribe(
        TopicArn=pipeline.stack.outputs["NotificationsTopicArn"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps({"status": ["FAILED", "STOPPED"]})},
    )
    return Notifications(pipeline, url)


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    return {name: value["Value"] for name, value in message["MessageAttributes"].items()}


def test_a_success_notification_names_the_commit_data_image_metrics_model_and_links(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path, notifications: Notifications
) -> None:
    """Given a successful run, then its notification's subject has the status, run and commit; its body has the
    commit and where it comes from, the exact data version, the image, the training job, the metrics, the model and
    its two digests, where its record is sealed in the ledger, a link to the execution and one to the training
    job's logs; its attributes carry status, environment, run id and whether the record is sealed. A failures-only
    subscriber receives nothing."""
    on_call = _subscribe_failures_only(pipeline)
    _, run = run_through_events(pipeline, commit=repository.head, data=training_data)
    assert run.record is not None
    record = run.record

    messages = notifications.received(expected=2)
    (success,) = [item for item in messages if _attributes(item)["status"] == "SUCCEEDED"]
    assert success["Subject"] == f"[sagepipe dev] SUCCEEDED: run {run.run_id[:8]} commit {repository.head[:8]}"
    body = success["Message"]
    code = f"{pipeline.stack.parameters['CodeRepositoryName']}@{pipeline.stack.parameters['CodeBranch']}"
    assert f"Commit: {repository.head} ({code})" in body  # CodeCommit events carry no commit message
    assert f"Data: s3://{pipeline.data_bucket}/{record['data_key']}?versionId={record['data_version_id']}" in body
    assert f"Image: {record['image_uri']} (built by this run)" in body
    assert f"Training job: {record['training_job_name']}" in body
    accuracy = record["metrics"]["validation:accuracy"]
    assert re.search(rf"validation:accuracy={re.escape(str(accuracy))}\b", body), body
    assert f"Model: {record['artifact_uri']}" in body
    assert f"Model sha256: {record['artifact_sha256']}" in body
    assert f"content sha256 {record['model_content_sha256']}" in body
    ledger = f"Ledger: {record['ledger_uri']} (version {record['ledger_version_id']}, sha256 {record['ledger_sha256']})"
    assert ledger in body
    assert f"Execution: {CONSOLE}/states/home?region=us-east-1#/v2/executions/details/{run.execution_arn}" in body
    assert f"Training logs: {CONSOLE}/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/" in body
    assert f"logStreamNameFilter$3D{record['training_job_name']}" in body
    assert _attributes(success) == {
        "status": "SUCCEEDED",
        "environment": "dev",
        "run_id": run.run_id,
        "ledger": "sealed",
    }
    assert on_call.received(expected=0) == [], "a failures-only subscriber got a success"


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
def test_a_failure_notification_names_the_stage_error_reason_cause_and_links(
    pipeline: LocalPipeline,
    repository: TrainingRepository,
    training_data: Path,
    notifications: Notifications,
    tmp_path: Path,
) -> None:
    """Given a run whose training fails (the data has no target column), then the notification's subject has
    FAILED, the run, the commit and the stage; its body has the error, the training script's own reason, the
    commit, the data version, the training job and both links, and the cause; its attributes carry status,
    environment, run id and failed stage, so the failures-only subscriber receives it."""
    on_call = _subscribe_failures_only(pipeline)
    header, _, rows = training_data.read_text(encoding="utf-8").partition("\n")
    no_target = tmp_path / "no-target.csv"
    no_target.write_text(header.removesuffix(",target") + ",label\n" + rows, encoding="utf-8")
    _, run = run_through_events(pipeline, commit=repository.head, data=no_target)
    assert run.record is not None
    record = run.record
    assert record["status"] == "FAILED"

    (failure,) = [item for item in notifications.received(expected=2) if _attributes(item)["status"] == "FAILED"]
    subject = failure["Subject"]
    assert subject == f"[sagepipe dev] FAILED: run {run.run_id[:8]} commit {repository.head[:8]} at Train"
    body = failure["Message"]
    assert f"sagepipe run {run.run_id} FAILED at stage Train in dev." in body
    assert "Error: States.TaskFailed" in body
    assert f"Reason: {record['failure_reason']}" in body
    assert "'target' column" in record["failure_reason"]
    assert f"Commit: {repository.head} (" in body
    assert f"Data: s3://{pipeline.data_bucket}/{record['data_key']}?versionId={record['data_version_id']}" in body
    assert f"Training job: {record['training_job_name']}" in body
    assert f"Execution: {CONSOLE}/states/home?region=us-east-1#/v2/executions/details/{run.execution_arn}" in body
    assert f"logStreamNameFilter$3D{record['training_job_name']}" in body
    assert "Cause (truncated):" in body
    assert '"TrainingJobStatus":"Failed"' in body.replace(" ", "")
    assert f"Ledger: {record['ledger_uri']} (version {record['ledger_version_id']}" in body
    assert _attributes(failure) == {
        "status": "FAILED",
        "environment": "dev",
        "run_id": run.run_id,
        "failed_stage": "Train",
        "ledger": "sealed",
    }
    (paged,) = on_call.received(expected=1)
    assert paged["Subject"] == subject

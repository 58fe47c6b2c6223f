"""`sagepipe run`: a manual run request is validated, then becomes exactly one 'Manual Run Requested' event.

moto stands in for AWS: a rule like the stack's ManualRunRequested rule forwards what `sagepipe run` puts on the
default bus to an SQS queue, so the tests read the event EventBridge actually delivered.
"""

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from common.events import ManualRunEvent
from normalise_trigger.models import NormaliseRequest, Settings
from normalise_trigger.trigger import normalise
from sagepipe.cli import main
from sagepipe.manual import MANUAL_RUN_REQUESTED, MANUAL_SOURCE, ManualRunError, request_manual_run

COMMIT = "3e5b0c1f4f1b6f7a9d2c8e0b1a3d5f7c9e1b3d5f"
BUCKET = "sagepipe-data-example"
KEY = "datasets/breast cancer/train+1.csv"
REGION = "us-east-1"


class ManualRunAccount:
    """A moto account with a versioned data bucket and the stack's manual-run rule delivering to a queue."""

    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.events = boto3.client("events", region_name=REGION)
        self.sts = boto3.client("sts", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        self.sqs = sqs
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        self.version_id = self.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"a,target\n1,0\n")["VersionId"]
        self.queue_url = sqs.create_queue(QueueName="manual-runs")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.events.put_rule(
            Name="ManualRunRequested",
            EventPattern=json.dumps({"source": [MANUAL_SOURCE], "detail-type": [MANUAL_RUN_REQUESTED]}),
        )
        self.events.put_targets(Rule="ManualRunRequested", Targets=[{"Id": "queue", "Arn": queue_arn}])

    def data_uri(self, version_id: str | None = None) -> str:
        return f"s3://{BUCKET}/datasets/breast%20cancer/train%2B1.csv?versionId={version_id or self.version_id}"

    def delivered(self) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        events = [json.loads(message["Body"]) for message in response.get("Messages", [])]
        # moto's SQS delivery leaves out `account`, which EventBridge always sets on an event.
        return [{"account": "123456789012", **event} for event in events]


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[ManualRunAccount]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield ManualRunAccount()


def _request(account: ManualRunAccount, commit: str = COMMIT, data_uri: str | None = None) -> str:
    return request_manual_run(
        account.events,
        account.sts,
        account.s3,
        commit=commit,
        data_uri=data_uri or account.data_uri(),
        reason="retrain after fix",
    )


def test_a_valid_request_delivers_one_event_the_normaliser_turns_into_that_exact_run(
    account: ManualRunAccount,
) -> None:
    """Given a full commit and an existing data version (key URL-encoded in the URI), when requested, then one event
    is delivered; it validates as the normaliser's ManualRunEvent and becomes a manual run of exactly that
    commit and version, with the caller and the reason."""
    event_id = _request(account)

    (event,) = account.delivered()
    assert event["id"] == event_id
    parsed = ManualRunEvent.model_validate(event)
    assert parsed.detail.commit == COMMIT
    assert parsed.detail.data.key == KEY
    assert parsed.detail.requested_by == account.sts.get_caller_identity()["Arn"]
    settings = Settings.model_validate(
        {
            "environment": "dev",
            "code_repository": "sagepipe-training",
            "code_branch": "main",
            "data_bucket_name": BUCKET,
            "data_prefix": "datasets/",
            "training_instance_type": "ml.m5.large",
            "training_max_runtime_seconds": 3600,
            "training_hyperparameters": "{}",
        }
    )
    request = NormaliseRequest.model_validate(
        {
            "event": event,
            "runId": "run-1",
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:p:run-1",
            "startedAt": "2026-11-25T01:00:00Z",
        }
    )
    decision = normalise(request, settings)
    assert decision.decision == "run", decision.reason
    assert decision.payload["kind"] == "manual"
    record = decision.payload["record"]
    assert record["commit"]["commit_id"] == {"S": COMMIT}
    assert record["data"]["data_key"] == {"S": KEY}
    assert record["data"]["data_version_id"] == {"S": account.version_id}
    assert record["base"]["trigger_reason"] == {"S": "retrain after fix"}
    assert record["base"]["triggered_by"] == {"S": parsed.detail.requested_by}


@pytest.mark.parametrize(
    ("commit", "data_uri", "message"),
    [
        pytest.param("3e5b0c1", None, "full 40-character lowercase SHA-1", id="abbreviated-commit"),
        pytest.param(COMMIT.upper(), None, "full 40-character lowercase SHA-1", id="uppercase-commit"),
        pytest.param(COMMIT, f"s3://{BUCKET}/{KEY}", r"needs \?versionId=", id="no-version"),
        pytest.param(COMMIT, f"https://{BUCKET}/{KEY}?versionId=1", "must look like s3://", id="not-s3"),
        pytest.param(COMMIT, f"s3://{BUCKET}/?versionId=1", "must look like s3://", id="no-key"),
        pytest.param(COMMIT, f"s3://{BUCKET}/{KEY}?versionId=no-such-version", "does not exist", id="unknown-version"),
        pytest.param(COMMIT, f"s3://{BUCKET}/datasets/missing.csv?versionId=1", "does not exist", id="unknown-key"),
    ],
)
def test_an_invalid_request_is_refused_and_nothing_is_delivered(
    account: ManualRunAccount, commit: str, data_uri: str | None, message: str
) -> None:
    """Given a bad commit or data version, when requested, then ManualRunError says what is wrong and no event is
    put: a run that could only fail later never starts."""
    with pytest.raises(ManualRunError, match=message):
        _request(account, commit, data_uri)
    assert account.delivered() == []


def test_the_command_prints_the_event_id_and_exits_0(account: ManualRunAccount) -> None:
    """Given the command line a user types, then it exits 0 and prints the event id that was delivered."""
    result = CliRunner().invoke(
        main, ["run", "--commit", COMMIT, "--data", account.data_uri(), "--reason", "retrain"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    (event,) = account.delivered()
    assert f"manual run requested: event {event['id']}" in result.output
    assert event["detail"]["reason"] == "retrain"


def test_the_command_refuses_bad_input_with_exit_2_and_a_reason(account: ManualRunAccount) -> None:
    """Given an abbreviated commit on the command line, then it exits 2 with one line saying why; nothing is put."""
    result = CliRunner().invoke(main, ["run", "--commit", "abc1234", "--data", account.data_uri()])
    assert result.exit_code == 2
    assert "error: --commit must be a full 40-character lowercase SHA-1" in result.output
    assert account.delivered() == []

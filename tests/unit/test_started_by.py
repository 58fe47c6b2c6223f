"""How `local run` finds the execution its trigger started through Step Functions' API alone (LocalPipeline.started_by),
as it must against a `sagepipe local up` in another process: ListExecutions newest first, each input compared.

The executions are started directly in the unit tests' moto server, each with an EventBridge event as its input, as
a rule's target would start them.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sagepipe.local.core.emulator import RemoteEmulator, endpoint_client
from sagepipe.local.provisioner import LocalStack
from sagepipe.local.runner import LocalPipeline, RunError, Trigger, listed_by

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


@pytest.fixture
def pipeline(moto_endpoint: str, tmp_path: Path) -> LocalPipeline:
    """A pipeline whose state machine (of a name of its own) is in the unit tests' moto server."""
    sfn = endpoint_client(moto_endpoint, "stepfunctions")
    machine = sfn.create_state_machine(
        name=f"started-by-{uuid.uuid4().hex[:8]}",
        definition=DEFINITION,
        roleArn="arn:aws:iam::123456789012:role/sagepipe-test",
    )["stateMachineArn"]
    stack = LocalStack(
        name="sagepipe-test", parameters={}, resources={}, outputs={"PipelineStateMachineArn": machine}, skipped={}
    )
    return LocalPipeline(RemoteEmulator(moto_endpoint, tmp_path), stack, tmp_path, runs_dir=tmp_path / "runs")


def start(pipeline: LocalPipeline, event_id: str) -> str:
    sfn = pipeline.emulator.client("stepfunctions")
    event = {"id": event_id, "source": "aws.codecommit", "detail-type": "CodeCommit Repository State Change"}
    # A name of its own, as an EventBridge target's start has (AWS makes a UUID when none is given; moto's ASL
    # parser backend, which the local runtime switches on in a process, names it "None" instead).
    arn: str = sfn.start_execution(
        stateMachineArn=pipeline.stack.outputs["PipelineStateMachineArn"],
        name=str(uuid.uuid4()),
        input=json.dumps(event),
    )["executionArn"]
    return arn


def test_the_execution_whose_input_is_the_trigger_s_event_is_found_among_others(pipeline: LocalPipeline) -> None:
    """Given three executions started after the trigger was sent, each with another event as input, then started_by
    finds the one whose input's id is the trigger's event id."""
    since = datetime.now(UTC)
    start(pipeline, "other-1")
    wanted = start(pipeline, "mine")
    start(pipeline, "other-2")

    found = pipeline.started_by(Trigger.event("mine", since, "a push"), timeout=5.0)

    assert found == wanted


def test_no_such_execution_is_a_run_error_within_the_bound(pipeline: LocalPipeline) -> None:
    start(pipeline, "someone-else")

    with pytest.raises(RunError, match="a push started no execution within 1 s"):
        pipeline.started_by(Trigger.event("mine", datetime.now(UTC), "a push"), timeout=1.0)


def test_an_execution_is_listed_by_its_stop_date_once_it_stopped() -> None:
    """ListExecutions sorts running executions by startDate (or redriveDate) and the others by stopDate."""
    started = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    stopped = started + timedelta(minutes=5)

    assert listed_by({"status": "RUNNING", "startDate": started}) == started
    assert listed_by({"status": "RUNNING", "startDate": started, "redriveDate": stopped}) == stopped
    assert listed_by({"status": "SUCCEEDED", "startDate": started, "stopDate": stopped}) == stopped

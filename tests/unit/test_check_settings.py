"""The TrainingSettingsCheck custom resource: a deploy whose Spot wait is shorter than the max runtime fails with
one line; anything else, and every Delete, succeeds; the answer reaches CloudFormation as its response object."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from check_settings import app
from check_settings.check import PHYSICAL_RESOURCE_ID, decide, response_document, send

VALID = {"EnableManagedSpotTraining": "true", "MaxWaitTimeInSeconds": "7200", "TrainingMaxRuntimeSeconds": "3600"}


def _event(request_type: str, properties: dict[str, str], **extra: str) -> dict[str, Any]:
    # The request object's fields (CloudFormation User Guide, "Custom resource request objects").
    return {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:stack-check-settings",
        "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/signed?X-Amz-Signature=s",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/stack/guid",
        "RequestId": "unique-request-id",
        "ResourceType": "Custom::TrainingSettingsCheck",
        "LogicalResourceId": "TrainingSettingsCheck",
        "ResourceProperties": {"ServiceToken": "arn", "ServiceTimeout": "120", **properties},
        **extra,
    }


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_a_spot_wait_shorter_than_the_runtime_fails_the_deploy_with_one_actionable_line(request_type: str) -> None:
    """Given Spot on and a 1,800 s wait for a 3,600 s runtime, when the stack is created or updated, then the
    answer is FAILED with a one-line reason that names both parameters and what to change."""
    answer = decide(request_type, VALID | {"MaxWaitTimeInSeconds": "1800"})

    assert answer.status == "FAILED"
    assert "\n" not in answer.reason
    assert answer.reason.startswith("MaxWaitTimeInSeconds (1800) is shorter than TrainingMaxRuntimeSeconds (3600)")
    assert "raise MaxWaitTimeInSeconds or lower TrainingMaxRuntimeSeconds" in answer.reason


@pytest.mark.parametrize(
    "properties",
    [
        VALID,
        VALID | {"MaxWaitTimeInSeconds": "3600"},  # equal is allowed: "equal to or greater than"
        VALID | {"EnableManagedSpotTraining": "false", "MaxWaitTimeInSeconds": "60"},  # unused without Spot
    ],
)
def test_settings_sagemaker_accepts_pass(properties: dict[str, str]) -> None:
    assert decide("Create", properties).status == "SUCCESS"


def test_a_delete_always_succeeds_so_no_setting_can_block_removing_the_stack() -> None:
    assert decide("Delete", VALID | {"MaxWaitTimeInSeconds": "1"}).status == "SUCCESS"
    assert decide("Delete", {}).status == "SUCCESS"


def test_malformed_properties_fail_naming_the_property() -> None:
    answer = decide("Create", VALID | {"MaxWaitTimeInSeconds": "soon"})
    assert answer.status == "FAILED"
    assert answer.reason.startswith("training settings: MaxWaitTimeInSeconds:")


def test_the_response_object_echoes_the_request_and_keeps_one_physical_id() -> None:
    """Given a request, when answered, then the response carries the request's StackId, RequestId and
    LogicalResourceId, and the same PhysicalResourceId on create and update (never a replacement)."""
    created = json.loads(response_document(_event("Create", VALID), decide("Create", VALID)))
    updated = json.loads(
        response_document(_event("Update", VALID, PhysicalResourceId=PHYSICAL_RESOURCE_ID), decide("Update", VALID))
    )

    for document in (created, updated):
        assert document["Status"] == "SUCCESS"
        assert document["PhysicalResourceId"] == PHYSICAL_RESOURCE_ID
        assert document["StackId"] == "arn:aws:cloudformation:us-east-1:123456789012:stack/stack/guid"
        assert document["RequestId"] == "unique-request-id"
        assert document["LogicalResourceId"] == "TrainingSettingsCheck"


def test_the_handler_puts_the_answer_to_the_response_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a Create with a too-short wait, when the function runs, then it PUTs one FAILED response object to the
    pre-signed URL with an empty Content-Type, as the URL is signed for."""
    sent: list[Any] = []

    class Answered:
        status = 200

        def __enter__(self) -> Answered:
            return self

        def __exit__(self, *_: object) -> None:
            return None

    def urlopen(request: Any, timeout: float) -> Answered:
        sent.append((request, timeout))
        return Answered()

    monkeypatch.setattr("check_settings.check.urllib.request.urlopen", urlopen)
    event = _event("Create", VALID | {"MaxWaitTimeInSeconds": "1800"})

    app.lambda_handler(event, cast(Any, _LambdaContext()))

    ((request, timeout),) = sent
    assert request.get_method() == "PUT"
    assert request.full_url == event["ResponseURL"]
    assert request.get_header("Content-type") == ""
    assert json.loads(request.data)["Status"] == "FAILED"
    assert timeout > 0


def test_only_an_https_response_url_is_answered() -> None:
    with pytest.raises(ValueError, match="https"):
        send("http://example.com/signed", b"{}")


class _LambdaContext:
    function_name = "stack-check-settings"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:stack-check-settings"
    aws_request_id = "request"

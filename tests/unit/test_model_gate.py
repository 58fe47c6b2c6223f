"""The quality gate's rules, its configuration, and the decisions recorder, without an emulator."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import boto3
import pytest
from evaluate_gate.app import GateRequest, registration
from evaluate_gate.gate import Champion, evaluate, find_champion
from moto import mock_aws
from record_model_decision.decision import ModelPackageStateChange, announcement, decision_of, message
from record_model_decision.decision import record as record_decision

from common.gate_settings import GateSettings, GateSettingsError, parse_thresholds
from sagepipe.template import load_template
from tests.unit.conftest import create_runs_table

ROC = "validation:roc_auc"


def _champion(value: float | None) -> Champion:
    return Champion(
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3", 3, "run-1", {ROC: value} if value else {}
    )


# ------------------------------------------------------------------------------------------------- the rules
def test_no_champion_the_thresholds_alone_decide() -> None:
    """Given thresholds and no champion, then the run passes exactly when every threshold holds."""
    settings = GateSettings(thresholds=parse_thresholds('{"validation:roc_auc": {">=": 0.95}}'))

    passing = evaluate({ROC: 0.96}, settings, None)
    failing = evaluate({ROC: 0.94}, settings, None)

    assert passing.passed
    assert [item.kind for item in passing.comparisons] == ["threshold", "no-champion"]
    assert not failing.passed
    assert failing.failures == (
        "threshold validation:roc_auc >= 0.95 does not hold: the run's validation:roc_auc is 0.94",
    )


@pytest.mark.parametrize(
    ("direction", "measured", "passed"),
    [("higher", 0.89, True), ("higher", 0.879, False), ("lower", 0.91, True), ("lower", 0.921, False)],
)
def test_the_champion_comparison_honours_direction_and_tolerance(direction: str, measured: float, passed: bool) -> None:
    """Given a champion at 0.9 and a tolerance of 0.01, then a run may be worse by at most 0.01 in the metric's
    direction; the comparison keeps both values."""
    settings = GateSettings(direction=direction, tolerance=0.01)  # type: ignore[arg-type]

    result = evaluate({ROC: measured}, settings, _champion(0.9))

    (comparison,) = result.comparisons
    assert comparison.passed is passed
    assert (comparison.value, comparison.champion_value) == (measured, 0.9)
    if not passed:
        assert "0.9" in result.summary
        assert repr(measured) in result.summary


def test_a_threshold_on_a_missing_metric_fails_and_says_which_metrics_exist() -> None:
    settings = GateSettings(thresholds=parse_thresholds('{"validation:precision": {">": 0.5}}'))

    result = evaluate({ROC: 0.99, "validation:f1": 0.9}, settings, None)

    assert not result.passed
    assert result.failures[0] == (
        "threshold validation:precision > 0.5: the run has no metric validation:precision "
        "(it has: validation:f1, validation:roc_auc)"
    )
    assert result.as_record()["comparisons"][0]["value"] is None


def test_a_champion_without_the_primary_metric_fails_the_gate_with_a_way_out() -> None:
    result = evaluate({ROC: 0.99}, GateSettings(), _champion(None))

    assert not result.passed
    assert "sagepipe models reject" in result.summary


CONTENT = "c0" * 32


@pytest.mark.parametrize("direction", ["higher", "lower"])
def test_a_model_is_not_compared_with_itself(direction: str) -> None:
    """Given the champion's own model (the same content digest) whose metric reads a rounding worse than the
    champion's (a record's number went through JSONata's $string, the package's through repr), then the champion
    comparison passes and says the model is the champion; another model with the same value fails it."""
    settings = GateSettings(direction=direction)  # type: ignore[arg-type]
    champion = Champion(_champion(0.1).model_package_arn, 3, "run-1", {ROC: 0.1}, content_sha256=CONTENT)
    a_rounding_worse = 0.1 - 1e-15 if direction == "higher" else 0.1 + 1e-15

    itself = evaluate({ROC: a_rounding_worse}, settings, champion, CONTENT)
    another = evaluate({ROC: a_rounding_worse}, settings, champion, "d1" * 32)
    unknown = evaluate({ROC: a_rounding_worse}, settings, champion, None)

    assert itself.passed
    (comparison,) = itself.comparisons
    assert (comparison.kind, comparison.same_model) == ("champion", True)
    assert "the champion itself (version 3" in comparison.reason
    assert itself.summary == "passed 1 comparison(s), the model is the champion itself"
    assert itself.as_record()["comparisons"][0]["same_model"] is True
    assert not another.passed
    assert not unknown.passed, "without the run's digest, nothing says it is the same model"
    assert "same_model" not in another.as_record()["comparisons"][0]


def test_the_champion_itself_still_meets_the_thresholds_of_today() -> None:
    """Given the champion's own model and a threshold the stack raised above its metric, then the gate fails on
    the threshold (the champion comparison itself passes)."""
    settings = GateSettings(thresholds=parse_thresholds('{"validation:roc_auc": {">=": 0.99}}'))
    champion = Champion(_champion(0.95).model_package_arn, 3, "run-1", {ROC: 0.95}, content_sha256=CONTENT)

    result = evaluate({ROC: 0.95}, settings, champion, CONTENT)

    assert not result.passed
    assert [item.passed for item in result.comparisons] == [False, True]
    assert result.failures == (
        "threshold validation:roc_auc >= 0.99 does not hold: the run's validation:roc_auc is 0.95",
    )


def test_find_champion_reads_its_content_digest() -> None:
    """Given an approved package registered with its content digest, then the champion carries it."""
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        sagemaker.create_model_package_group(ModelPackageGroupName="g")
        sagemaker.create_model_package(
            ModelPackageGroupName="g",
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={"sagepipe:content-sha256": CONTENT, f"metric:{ROC}": "0.9"},
        )
        champion = find_champion(sagemaker, "g")
    assert champion is not None
    assert champion.content_sha256 == CONTENT


def test_find_champion_is_the_latest_approved_version() -> None:
    """Given versions 1 (approved), 2 (approved), 3 (pending), then the champion is 2, with its metrics."""
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        sagemaker.create_model_package_group(ModelPackageGroupName="g")
        versions: list[tuple[Literal["Approved", "PendingManualApproval"], str]] = [
            ("Approved", "0.9"),
            ("Approved", "0.95"),
            ("PendingManualApproval", "0.99"),
        ]
        for status, value in versions:
            sagemaker.create_model_package(
                ModelPackageGroupName="g",
                ModelApprovalStatus=status,
                CustomerMetadataProperties={"sagepipe:run-id": f"run-{value}", f"metric:{ROC}": value},
            )
        assert find_champion(boto3.client("sagemaker", region_name="us-east-1"), "g") == Champion(
            "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/2", 2, "run-0.95", {ROC: 0.95}
        )
        assert find_champion(sagemaker, "g") is not None


def test_registration_carries_the_run_its_identity_and_its_metrics() -> None:
    request = GateRequest.model_validate(
        {
            "runId": "r-1",
            "metrics": {ROC: 0.97, "train:accuracy": 1},
            "settings": {},
            "identity": {"commitId": "c" * 40, "dataRef": "s3://b/k?versionId=v", "dataVersionId": "v"},
        }
    )

    registered = registration(request)

    assert registered["customerMetadataProperties"] == {
        "sagepipe:run-id": "r-1",
        "sagepipe:commit": "c" * 40,
        "sagepipe:data-version-id": "v",
        "metric:train:accuracy": "1.0",
        f"metric:{ROC}": "0.97",
    }
    assert registered["description"] == f"sagepipe run r-1: commit {'c' * 40} on s3://b/k?versionId=v"


def test_the_registration_of_a_cached_run_names_the_run_that_trained_the_model() -> None:
    """Given a CACHED run's request (its source's metrics and digest, and cachedFrom), then the package is the
    cached run's, carries the source model's content digest, and its description names the source run."""
    request = GateRequest.model_validate(
        {
            "runId": "r-2",
            "metrics": {ROC: 0.97},
            "settings": {},
            "identity": {"commitId": "c" * 40, "contentSha256": CONTENT},
            "cachedFrom": "r-1",
        }
    )

    registered = registration(request)

    assert registered["customerMetadataProperties"]["sagepipe:run-id"] == "r-2"
    assert registered["customerMetadataProperties"]["sagepipe:content-sha256"] == CONTENT
    assert registered["description"].endswith("; the model trained by run r-1 (training cache)")


# ------------------------------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("{", "is not valid JSON"),
        ('{"m": {"=>": 1}}', "uses the operator '=>'"),
        ('{"m": {">=": 1, ">=": 2}}', "'>=' appears more than once"),
        ('{"m": {">=": true}}', "must be a finite number"),
        ('{"m": 1}', "must map operators to numbers"),
        ("[]", "must be a JSON object"),
    ],
)
def test_bad_thresholds_are_refused_with_the_reason(raw: str, problem: str) -> None:
    with pytest.raises(GateSettingsError, match=re.escape(problem)):
        parse_thresholds(raw)


def test_the_first_state_refuses_what_the_template_pattern_cannot_see() -> None:
    """Given a metric named twice (valid for the pattern), then NormaliseTrigger's settings fail in one line that
    names the parameter."""
    from normalise_trigger.app import SettingsError, settings

    settings.cache_clear()
    environment = {
        "ENVIRONMENT": "dev",
        "CODE_REPOSITORY": "r",
        "CODE_BRANCH": "main",
        "DATA_BUCKET_NAME": "bucket",
        "DATA_PREFIX": "datasets/",
        "TRAINING_INSTANCE_TYPE": "ml.m5.large",
        "TRAINING_MAX_RUNTIME_SECONDS": "3600",
        "GATE_THRESHOLDS": '{"m": {">=": 1}, "m": {"<": 2}}',
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        with pytest.raises(SettingsError, match=r"^invalid stack configuration: GateThresholds: 'm' appears more"):
            settings()
    settings.cache_clear()


PATTERN_CASES = {
    "{}": True,
    " { } ": True,
    '{"validation:roc_auc": {">=": 0.95}}': True,
    '{"a": {">": 0.5, "<=": 1}, "b": {"==": -2e-3}}': True,
    "": False,
    "not json": False,
    '{"a": {"=>": 1}}': False,
    '{"a": {">=": "0.9"}}': False,
    '{"a": {}}': False,
    '{"a": 1}': False,
    '{"a": {">=": 01}}': False,
}


@pytest.mark.parametrize(("value", "allowed"), PATTERN_CASES.items())
def test_the_template_refuses_bad_thresholds_at_deploy_time(value: str, allowed: bool) -> None:
    """Given GateThresholds' AllowedPattern (CloudFormation matches the whole value), then valid JSON with known
    operators deploys, and anything the gate's parser refuses for its shape does not."""
    pattern = load_template()["Parameters"]["GateThresholds"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is allowed
    if allowed:
        parse_thresholds(value)


# ------------------------------------------------------------------------------------------------- decisions
def _event(status: str) -> ModelPackageStateChange:
    return ModelPackageStateChange.model_validate(
        {
            "version": "0",
            "id": "e-1",
            "detail-type": "SageMaker Model Package State Change",
            "source": "aws.sagemaker",
            "account": "123456789012",
            "time": "2026-12-01T09:00:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"],
            "detail": {
                "ModelPackageGroupName": "g",
                "ModelPackageVersion": 1,
                "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1",
                "ModelApprovalStatus": status,
                "LastModifiedTime": "2026-12-01T09:00:00Z",
            },
        }
    )


DESCRIPTION: dict[str, Any] = {
    "LastModifiedBy": {"IamIdentity": {"Arn": "arn:aws:iam::123456789012:user/alice"}},
    "ApprovalDescription": "ship it",
    "CustomerMetadataProperties": {"sagepipe:run-id": "run-1", f"metric:{ROC}": "0.97"},
}


@pytest.mark.parametrize(
    ("status", "previous", "announced"),
    [
        ("Approved", "PendingManualApproval", "MODEL_APPROVED"),
        ("Rejected", "Approved", "MODEL_REJECTED"),
        ("PendingManualApproval", None, None),
        ("Approved", "Approved", None),
    ],
)
def test_only_an_approval_is_announced_as_one(status: str, previous: str | None, announced: str | None) -> None:
    decision = decision_of(_event(status), DESCRIPTION)

    assert announcement(decision, previous) == announced
    if announced:
        request = message(decision, announced, "dev", previous)
        assert request["MessageAttributes"]["status"]["StringValue"] == announced
        assert "alice" in request["Message"]
        assert "ship it" in request["Message"]


def test_a_decision_is_recorded_once_on_its_run() -> None:
    """Given the same event twice (EventBridge delivers at least once), then one APPROVAL item on the run."""
    decision = decision_of(_event("Approved"), DESCRIPTION)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_runs_table(dynamodb)

        assert record_decision(dynamodb, "runs", decision, "PendingManualApproval") is True
        assert record_decision(dynamodb, "runs", decision, "PendingManualApproval") is False

        (item,) = dynamodb.scan(TableName="runs")["Items"]
    assert item["pk"] == {"S": "RUN#run-1"}
    assert item["sk"]["S"] == "APPROVAL#2026-12-01T09:00:00Z#1#Approved"
    assert (item["decided_by"]["S"], item["reason"]["S"]) == ("arn:aws:iam::123456789012:user/alice", "ship it")
    assert json.loads(json.dumps(item["decision"])) == {"S": "Approved"}

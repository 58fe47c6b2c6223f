"""sagepipe.error_names: the error names Step Functions reports, per integration (sources: docs/error-names.md)."""

from __future__ import annotations

import json

import pytest
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

from sagepipe import error_names
from sagepipe.error_names import error_name
from sagepipe.local.stepfunctions.faults import INTEGRATIONS

# (integration, a modelled code, its name, an unmodelled code, the generic name): the literal names are the facts
# (recordings and docs in docs/error-names.md); the namer must produce them from botocore's model.
CASES = [
    (
        "dynamodb:putItem",
        "InternalServerError",
        "DynamoDB.InternalServerErrorException",
        "ValidationException",
        "DynamoDB.AmazonDynamoDBException",
    ),
    (
        "dynamodb:updateItem",
        "ConditionalCheckFailedException",
        "DynamoDB.ConditionalCheckFailedException",
        "AccessDeniedException",
        "DynamoDB.AmazonDynamoDBException",
    ),
    (
        "dynamodb:getItem",
        "RequestLimitExceeded",
        "DynamoDB.RequestLimitExceededException",
        "ServiceUnavailable",
        "DynamoDB.AmazonDynamoDBException",
    ),
    ("sns:publish", "Throttled", "SNS.ThrottledException", "ThrottlingException", "SNS.AmazonSNSException"),
    ("sns:publish", "NotFound", "SNS.NotFoundException", "AccessDeniedException", "SNS.AmazonSNSException"),
    (
        "lambda:invoke",
        "TooManyRequestsException",
        "Lambda.TooManyRequestsException",
        "AccessDeniedException",
        "Lambda.AWSLambdaException",
    ),
    (
        "sagemaker:createTrainingJob",
        "ResourceLimitExceeded",
        "SageMaker.ResourceLimitExceededException",
        "ThrottlingException",
        "SageMaker.AmazonSageMakerException",
    ),
    (
        "codebuild:startBuild",
        "AccountLimitExceededException",
        "CodeBuild.AccountLimitExceededException",
        "ThrottlingException",
        "CodeBuild.AWSCodeBuildException",
    ),
    (
        "aws-sdk:ecr:describeImages",
        "ImageNotFoundException",
        "Ecr.ImageNotFoundException",
        "ThrottlingException",
        "Ecr.EcrException",
    ),
    ("aws-sdk:s3:copyObject", "NoSuchKey", "S3.NoSuchKeyException", "SlowDown", "S3.S3Exception"),
]


@pytest.mark.parametrize(("integration", "modelled", "modelled_name", "unmodelled", "generic"), CASES)
def test_a_modelled_code_is_named_after_its_exception_class_any_other_after_the_client_s_base_exception(
    integration: str, modelled: str, modelled_name: str, unmodelled: str, generic: str
) -> None:
    """Given an integration, when its service answers a code its SDK client models, then the name is the model's
    exception class; an unmodelled code gets the client's base exception, and so does a code never seen."""
    assert error_name(integration, modelled) == modelled_name
    assert error_name(integration, unmodelled) == generic
    assert error_name(integration, "SomethingNew") == generic


def test_shapes_added_after_the_java_sdk_1_froze_are_unmodelled_for_optimised_integrations_only() -> None:
    """DynamoDB modelled ThrottlingException in 2025: the optimised integration (Java SDK 1.x, frozen on
    2024-07-31) still names it generically, the aws-sdk integration (Java SDK 2.x) by its class."""
    assert error_name("dynamodb:putItem", "ThrottlingException") == "DynamoDB.AmazonDynamoDBException"
    assert error_name("aws-sdk:dynamodb:putItem", "ThrottlingException") == "DynamoDb.ThrottlingException"
    assert error_name("aws-sdk:dynamodb:putItem", "ValidationException") == "DynamoDb.DynamoDbException"


@pytest.mark.parametrize("service", sorted(error_names.OPTIMISED))
def test_every_shape_the_java_sdk_1_lacks_is_still_in_botocore_s_model(service: str) -> None:
    """The list of later shapes names real shapes (a typo would silently name a modelled code generically)."""
    shapes = {shape.name for shape in error_names.service_model(service).error_shapes}
    assert error_names.OPTIMISED[service].java_v1_lacks <= shapes


@pytest.mark.parametrize("integration", sorted(error_names.errors()))
def test_the_table_and_the_namer_agree(integration: str) -> None:
    """Every service code in the table is named by the namer as the table says."""
    for row in error_names.errors()[integration]:
        if row.kind in {"modelled", "unmodelled"}:
            assert error_name(integration, row.code) == row.name, row


@pytest.mark.parametrize("integration", sorted(error_names.errors()))
def test_the_table_covers_every_error_the_operation_models(integration: str) -> None:
    """Given the operation's modelled errors in botocore, then each one is a row: the table cannot miss an error
    the service documents for the call (a botocore upgrade that adds one fails here)."""
    svc = error_names.service_of(integration)
    operation = integration.rsplit(":", 1)[-1]
    model = error_names.service_model(svc.botocore_name).operation_model(operation[:1].upper() + operation[1:])
    listed = {row.code for row in error_names.errors()[integration]}
    missing = {
        str(shape.error_code or shape.name)
        for shape in model.error_shapes
        if str(shape.error_code or shape.name) not in listed
    }
    assert not missing, f"{integration}: modelled errors missing from the table: {sorted(missing)}"


@pytest.mark.parametrize("integration", sorted(error_names.errors()))
def test_every_code_the_sdk_retries_as_throttling_or_transient_is_transient_in_the_table(integration: str) -> None:
    """botocore's standard retry mode (the SDK's own judgement) retries these codes; the table agrees."""
    # botocore keeps the lists on the checker classes (private, untyped): read them by name.
    sdk_transient = set(getattr(ThrottledRetryableChecker, "_THROTTLED_ERROR_CODES")) | set(  # noqa: B009
        getattr(TransientRetryableChecker, "_TRANSIENT_ERROR_CODES")  # noqa: B009
    )
    for row in error_names.errors()[integration]:
        if row.code in sdk_transient or error_names.http_status(integration, row.code) in {500, 503, 504}:
            assert row.transient, row


def test_the_table_covers_exactly_the_integrations_fault_injection_knows() -> None:
    assert set(error_names.errors()) == set(INTEGRATIONS)


def test_causes_follow_each_sdk_s_format() -> None:
    """The cause formats recorded on AWS: Java SDK 1.x for optimised integrations, 2.x for aws-sdk ones."""
    dynamodb = error_names.service_of("dynamodb:putItem")
    assert error_names.error_cause(
        dynamodb, "ValidationException", message="1 validation error", status=400, request_id="r1"
    ) == (
        "1 validation error (Service: AmazonDynamoDBv2; Status Code: 400; Error Code: ValidationException; "
        "Request ID: r1; Proxy: null)"
    )
    s3 = error_names.service_of("aws-sdk:s3:copyObject")
    assert (
        error_names.error_cause(
            s3, "NoSuchKey", message="The specified key does not exist.", status=404, request_id="r2", host_id="h2"
        )
        == "The specified key does not exist. (Service: S3, Status Code: 404, Request ID: r2, Extended Request ID: h2)"
    )


def test_docs_show_the_current_table() -> None:
    """docs/error-names.md holds the generated table; regenerate it with `python -m sagepipe.error_names --write`."""
    definition = json.loads(error_names.ASL_PATH.read_text(encoding="utf-8"))
    current = error_names.DOCS_PATH.read_text(encoding="utf-8")
    assert error_names.render_docs(current, definition) == current, (
        "docs/error-names.md is out of date: run .venv/bin/python -m sagepipe.error_names --write"
    )


@pytest.mark.parametrize(
    ("service", "code", "name"),
    [
        ("codebuild", "ResourceNotFoundException", "CodeBuild.ResourceNotFoundException"),
        ("codebuild", "ThrottlingException", "CodeBuild.AWSCodeBuildException"),
        ("sagemaker", "ResourceLimitExceeded", "SageMaker.ResourceLimitExceededException"),
        ("sagemaker", "ValidationException", "SageMaker.AmazonSageMakerException"),
    ],
)
def test_the_local_sync_integrations_name_api_errors_as_step_functions_does(service: str, code: str, name: str) -> None:
    """Given an API error of the local CodeBuild or SageMaker integration, then the task fails with the Java SDK
    1.x name and cause Step Functions reports."""
    from types import SimpleNamespace

    from sagepipe.local.stepfunctions import sync_task as _sync_task

    env = SimpleNamespace(next_state_name="Train", event_history_context=SimpleNamespace(source_event_id=7))
    task = SimpleNamespace(_get_sfn_resource=lambda: "x.sync", _get_sfn_resource_type=lambda: service)
    failure = _sync_task.service_error(task, env, service, _sync_task.client_error(code, "no", status=400))
    pair = failure.extract_error_cause_pair()
    assert pair is not None
    assert pair[0] == name
    assert f"Error Code: {code};" in str(pair[1])
    assert str(pair[1]).endswith("Proxy: null)")


def test_fault_injection_answers_only_codes_aws_sends_with_their_status() -> None:
    """A fault names a code the integration really answers (else ValueError), and is injected with its status."""
    from sagepipe.local.stepfunctions.faults import Fault, InjectedCall, injected_error

    with pytest.raises(ValueError, match="does not answer"):
        Fault("aws-sdk:s3:copyObject", error="ThrottlingException")
    for integration, code, status in [
        ("sns:publish", "Throttled", 429),
        ("aws-sdk:s3:copyObject", "SlowDown", 503),
        ("dynamodb:putItem", "InternalServerError", 500),
        ("aws-sdk:ecr:describeImages", "ThrottlingException", 400),
    ]:
        fault = Fault(integration, error=code)
        call = InjectedCall("State", integration, 0, fault, "failed")
        assert injected_error(call, "Call").response["ResponseMetadata"]["HTTPStatusCode"] == status, code

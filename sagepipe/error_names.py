"""How Step Functions names the errors of the integrations sagepipe's workflow calls, and which are transient.

One place for the rule, the facts and their sources. The local runtime names every service error with
`error_name`; tests/static checks every Retry and Catch of statemachine/pipeline.asl.json against `ERRORS`;
docs/error-names.md shows the same table (`python -m sagepipe.error_names --write` regenerates it).

The rule (sources: `SOURCES`, and docs/error-names.md for the evidence)
    Step Functions calls a service through the AWS SDK for Java and names a failure `<Service>.<Exception class>`.
    * Optimised integrations (`arn:aws:states:::dynamodb:putItem`, `sns:publish`, `lambda:invoke`,
      `codebuild:startBuild`, `sagemaker:createTrainingJob`) use the Java SDK 1.x: a code the client models is
      named after its exception class, the model's shape name with an `Exception` suffix
      (`InternalServerError` -> `DynamoDB.InternalServerErrorException`, SNS's `Throttled` ->
      `SNS.ThrottledException`); any other code is named after the client's base exception
      (`DynamoDB.AmazonDynamoDBException`, `SNS.AmazonSNSException`, `Lambda.AWSLambdaException`,
      `SageMaker.AmazonSageMakerException`, `CodeBuild.AWSCodeBuildException`). The cause reads
      `<message> (Service: AmazonDynamoDBv2; Status Code: 400; Error Code: <code>; Request ID: <id>; Proxy: null)`.
    * AWS SDK integrations (`arn:aws:states:::aws-sdk:ecr:describeImages`) use the Java SDK 2.x: the same rule with
      the 2.x client's names (`Ecr.ImageNotFoundException`, `S3.NoSuchKeyException`; generic `Ecr.EcrException`,
      `S3.S3Exception`). The cause reads `<message> (Service: S3, Status Code: 404, Request ID: <id>)`.
    * "Modelled" is service-wide (the SDK client maps every error shape of the service, whatever the operation),
      and the Java SDK 1.x stopped taking model updates on 2024-07-31: shapes added to a service after that
      (`Service.java_v1_lacks` in `OPTIMISED`) are unmodelled for the optimised integrations.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

Style = Literal["optimised", "aws-sdk"]
Kind = Literal["modelled", "unmodelled", "generic", "client", "states", "function"]

SOURCES: Final = {
    "sfn-errors": "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html",
    "sfn-awssdk": "https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html",
    "sfn-lambda": "https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html",
    "java-v1-frozen": "https://aws.amazon.com/blogs/developer/the-aws-sdk-for-java-1-x-is-in-maintenance-mode-effective-july-31-2024",
    "rec-dynamodb": "localstack/localstack tests/aws/services/stepfunctions/v2/error_handling/"
    "test_task_service_dynamodb.snapshot.json (recorded on AWS, 2023-05)",
    "rec-sns": "localstack/localstack tests/aws/services/stepfunctions/v2/services/"
    "test_sns_task_service.snapshot.json (recorded on AWS, 2025-11)",
    "rec-lambda": "localstack/localstack tests/aws/services/stepfunctions/v2/error_handling/"
    "test_task_service_lambda.snapshot.json (recorded on AWS)",
    "rec-awssdk": "localstack/localstack tests/aws/services/stepfunctions/v2/error_handling/"
    "test_aws_sdk.snapshot.json (recorded on AWS, 2023-06 and 2025-01)",
    "ddb-errors": "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html",
    "lambda-states": "https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html",
    "sm-throttling": "https://repost.aws/knowledge-center/sagemaker-python-throttlingexception",
    "botocore-retry": "botocore/retries/standard.py (the SDK's throttling and transient codes, 5xx statuses)",
    "asl-timeout": "https://states-language.net/spec.html#errors (States.Timeout)",
}


def model_source(service: str, operation: str) -> str:
    """The botocore model file that lists an operation's errors."""
    from botocore.session import get_session

    loader = get_session().get_component("data_loader")
    version = loader.determine_latest_version(service, "service-2")
    return f"botocore/data/{service}/{version}/service-2.json ({operation} errors)"


@dataclass(frozen=True)
class Service:
    """How one service's errors are named by Step Functions."""

    botocore_name: str
    prefix: str
    """The part before the dot: DynamoDB, SNS, Lambda, SageMaker, CodeBuild (optimised); Ecr, S3 (aws-sdk)."""
    generic: str
    """The client's base exception: the name of every code the client does not model."""
    style: Style
    cause_service: str
    """How the cause names the service (`Service: AmazonDynamoDBv2; ...`)."""
    java_v1_lacks: frozenset[str] = frozenset()
    """Error shapes in botocore's model that the frozen Java SDK 1.x model does not have."""


# Shapes botocore added after 1.34.150 (2024-07-29), the last release before the Java SDK 1.x froze on 2024-07-31:
# diffed against botocore 1.34.150 and 1.34.152 (identical error shapes for these services).
OPTIMISED: Final = {
    "dynamodb": Service(
        "dynamodb",
        "DynamoDB",
        "AmazonDynamoDBException",
        "optimised",
        "AmazonDynamoDBv2",
        frozenset({"ReplicatedWriteConflictException", "ThrottlingException"}),
    ),
    "sns": Service("sns", "SNS", "AmazonSNSException", "optimised", "AmazonSNS"),
    "lambda": Service(
        "lambda",
        "Lambda",
        "AWSLambdaException",
        "optimised",
        "AWSLambda",
        frozenset(
            {
                "AliasLimitExceededException",
                "CallbackTimeoutException",
                "CapacityProviderLimitExceededException",
                "CodeArtifactUserDeletedException",
                "CodeArtifactUserFailedException",
                "CodeArtifactUserPendingException",
                "DurableExecutionAlreadyStartedException",
                "ENINotReadyException",
                "FunctionVersionsPerCapacityProviderLimitExceededException",
                "ModeNotSupportedException",
                "NoPublishedVersionException",
                "PublicPolicyException",
                "S3FilesMountConnectivityException",
                "S3FilesMountFailureException",
                "S3FilesMountTimeoutException",
                "SerializedRequestEntityTooLargeException",
                "ServiceQuotaExceededException",
                "SnapStartRegenerationFailureException",
            }
        ),
    ),
    "sagemaker": Service("sagemaker", "SageMaker", "AmazonSageMakerException", "optimised", "AmazonSageMaker"),
    "codebuild": Service(
        "codebuild",
        "CodeBuild",
        "AWSCodeBuildException",
        "optimised",
        "AWSCodeBuild",
        frozenset({"AccountSuspendedException"}),
    ),
}

_BOTOCORE_NAMES: Final = {"sfn": "stepfunctions", "states": "stepfunctions"}


@cache
def service_model(service: str) -> Any:
    """botocore's model of a service, by its botocore or Step Functions (`sfn`) name."""
    import botocore.session

    return botocore.session.get_session().get_service_model(_BOTOCORE_NAMES.get(service, service))


def sdk_service_name(service: str) -> str:
    """The service name in AWS SDK error names: the Java SDK 2.x client's PascalCase (ECR -> Ecr)."""
    service_id = service_model(service).service_id
    words: list[str] = []
    for part in re.split(r"[\s\-_]+", str(service_id)):
        # Split acronym runs from capitalised words: "DynamoDB" -> Dynamo, DB; "ACMPCA" stays one word.
        words += re.findall(r"[A-Z0-9]+(?![a-z])|[A-Z]?[a-z0-9]+", part) or [part]
    return "".join(word[:1].upper() + word[1:].lower() for word in words if word)


@cache
def service(name: str, style: Style) -> Service:
    """How Step Functions names the errors of `name` (a botocore service name) called in `style`."""
    if style == "optimised":
        return OPTIMISED[name]
    prefix = sdk_service_name(name)
    return Service(name, prefix, f"{prefix}Exception", "aws-sdk", prefix)


def service_of(integration: str) -> Service:
    """`lambda:invoke` -> Lambda (optimised); `aws-sdk:ecr:describeImages` -> Ecr (aws-sdk)."""
    parts = integration.split(":")
    if parts[0] == "aws-sdk":
        return service(parts[1], "aws-sdk")
    return service(parts[0], "optimised")


@cache
def _shapes_by_code(botocore_name: str) -> dict[str, Any]:
    model = service_model(botocore_name)
    return {str(shape.error_code or shape.name): shape for shape in model.error_shapes}


def modelled_shape(svc: Service, code: str) -> Any | None:
    """The error shape the SDK client maps `code` to, or None when it does not model it."""
    shape = _shapes_by_code(svc.botocore_name).get(code)
    return None if shape is None or shape.name in svc.java_v1_lacks else shape


def exception_class(shape_name: str) -> str:
    """The SDK's exception class for an error shape: the shape name, with `Exception` appended if it lacks it."""
    return shape_name if shape_name.endswith("Exception") else f"{shape_name}Exception"


def error_name(integration_or_service: str | Service, code: str) -> str:
    """The error name Step Functions reports when the integration's service answers with `code`."""
    svc = integration_or_service if isinstance(integration_or_service, Service) else service_of(integration_or_service)
    code = code.rsplit(":", maxsplit=1)[-1]  # some services qualify codes (com.amazon.coral...#Code)
    shape = modelled_shape(svc, code)
    return f"{svc.prefix}.{exception_class(shape.name) if shape is not None else svc.generic}"


def error_cause(svc: Service, code: str, *, message: str, status: Any, request_id: Any, host_id: Any = None) -> str:
    """The cause Step Functions reports with the error, in the format of the SDK that made the call."""
    if svc.style == "optimised":
        details = f"Service: {svc.cause_service}; Status Code: {status}; Error Code: {code}; Request ID: {request_id}"
        return f"{message} ({details}; Proxy: null)"
    extended = f", Extended Request ID: {host_id}" if host_id else ""
    return f"{message} (Service: {svc.cause_service}, Status Code: {status}, Request ID: {request_id}{extended})"


def http_status(integration: str, code: str) -> int:
    """The HTTP status a service answers `code` with: the model's, else the usual one for a common code."""
    svc = service_of(integration)
    shape = _shapes_by_code(svc.botocore_name).get(code)
    status = shape.metadata.get("error", {}).get("httpStatusCode") if shape is not None else None
    return int(status or _COMMON_STATUS.get(code, 400))


_COMMON_STATUS: Final = {
    "InternalServerError": 500,
    "InternalFailure": 500,
    "InternalError": 500,
    "ServiceException": 500,
    "ServerException": 500,
    "ServiceUnavailable": 503,
    "SlowDown": 503,
    "AccessDenied": 403,
    "TooManyRequestsException": 429,
}


# ----------------------------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class ErrorRow:
    """One way an integration can fail, as Step Functions names it."""

    code: str
    """The service's error code, or what happens (for names Step Functions itself gives)."""
    name: str
    """The error name a Retry or Catch matches."""
    kind: Kind
    transient: bool
    source: str
    """A key of SOURCES, or a botocore model path."""
    note: str = ""
    applies: bool = True
    """False: the stack cannot meet it (no VPC, EFS or SnapStart); listed so the table covers the model."""


def _modelled(
    integration: str, operation: str, codes: dict[str, tuple[bool, str]], *, applies: bool = True
) -> list[ErrorRow]:
    svc = service_of(integration)
    rows = []
    for code, (transient, note) in codes.items():
        source = model_source(svc.botocore_name, operation)
        rows.append(
            ErrorRow(
                code,
                f"{svc.prefix}.{exception_class(_shape_name(svc, code))}",
                "modelled",
                transient,
                source,
                note,
                applies,
            )
        )
    return rows


def _shape_name(svc: Service, code: str) -> str:
    shape = _shapes_by_code(svc.botocore_name).get(code)
    return str(shape.name) if shape is not None else code


def _unmodelled(
    integration: str, codes: dict[str, tuple[bool, str]], source: str, *, applies: bool = True
) -> list[ErrorRow]:
    svc = service_of(integration)
    return [
        ErrorRow(code, f"{svc.prefix}.{svc.generic}", "unmodelled", transient, source, note, applies)
        for code, (transient, note) in codes.items()
    ]


def _generic(integration: str, source: str, transient: bool = True) -> ErrorRow:
    svc = service_of(integration)
    note = "every code the client does not model; retried because unmodelled throttling and 5xx codes land here"
    return ErrorRow("(any other code)", f"{svc.prefix}.{svc.generic}", "generic", transient, source, note)


_STATE_TIMEOUT: Final = ErrorRow(
    "the call outlasts the state's TimeoutSeconds", "States.Timeout", "states", True, "asl-timeout"
)
_JOB_TIMEOUT: Final = ErrorRow(
    "the job outlasts the state's TimeoutSeconds (Step Functions stops it)",
    "States.Timeout",
    "states",
    False,
    "asl-timeout",
    "not retried: a longer job than the bound is not a passing fault",
)

_THROTTLING = (True, "throttling")
_SERVER = (True, "server error (5xx)")
_PERMANENT = (False, "")


def _dynamodb(operation: str, writes: bool) -> list[ErrorRow]:
    integration = f"dynamodb:{operation[:1].lower()}{operation[1:]}"
    modelled: dict[str, tuple[bool, str]] = {
        "ProvisionedThroughputExceededException": _THROTTLING,
        "RequestLimitExceeded": _THROTTLING,
        "InternalServerError": _SERVER,
        "ResourceNotFoundException": _PERMANENT,
    }
    if writes:
        modelled |= {
            "ConditionalCheckFailedException": (False, "the claim and record writes' conditions; caught"),
            "TransactionConflictException": (True, "an item in another request's transaction (OK to retry)"),
            "ItemCollectionSizeLimitExceededException": (False, "local secondary indexes only"),
        }
    rows = _modelled(integration, operation, modelled)
    rows += _unmodelled(
        integration,
        {
            "ThrottlingException": (True, "modelled since 2025, after the Java SDK 1.x froze"),
            "ServiceUnavailable": _SERVER,
            "ValidationException": (False, "recorded on AWS as DynamoDB.AmazonDynamoDBException"),
            "AccessDeniedException": _PERMANENT,
        },
        "rec-dynamodb",
    )
    if writes:
        rows += _unmodelled(
            integration,
            {"ReplicatedWriteConflictException": (True, "multi-Region strongly consistent tables only")},
            "java-v1-frozen",
        )
    return [*rows, _generic(integration, "rec-dynamodb"), _STATE_TIMEOUT]


def _lambda() -> list[ErrorRow]:
    integration = "lambda:invoke"
    no_vpc = "needs a feature no function of the stack uses (VPC, EFS, S3 Files, SnapStart, CodeArtifact, durable)"
    rows = _modelled(
        integration,
        "Invoke",
        {
            "TooManyRequestsException": (True, "throttling (sfn-lambda)"),
            "ServiceException": (True, "server error (sfn-lambda)"),
            "ResourceConflictException": (True, "function Pending or being updated: invoke fails until Active"),
            "ResourceNotFoundException": _PERMANENT,
            "InvalidParameterValueException": _PERMANENT,
            "InvalidRequestContentException": _PERMANENT,
            "RequestTooLargeException": _PERMANENT,
            "UnsupportedMediaTypeException": _PERMANENT,
            "RecursiveInvocationException": _PERMANENT,
            "InvalidRuntimeException": (False, "502, but a deployment problem"),
            "InvalidZipFileException": (False, "502, but a deployment problem"),
            "KMSAccessDeniedException": (False, "502: the key of the function's environment denies Lambda"),
            "KMSDisabledException": (False, "502: the key of the function's environment is disabled"),
            "KMSInvalidStateException": (False, "502: the key of the function's environment is pending deletion"),
            "KMSNotFoundException": (False, "502: the key of the function's environment is gone"),
        },
    )
    rows += _modelled(
        integration,
        "Invoke",
        {
            code: (code in _LAMBDA_VPC_TRANSIENT, no_vpc)
            for code in (
                "ResourceNotReadyException",
                "EC2ThrottledException",
                "EC2UnexpectedException",
                "EC2AccessDeniedException",
                "ENILimitReachedException",
                "SubnetIPAddressLimitReachedException",
                "InvalidSubnetIDException",
                "InvalidSecurityGroupIDException",
                "EFSIOException",
                "EFSMountConnectivityException",
                "EFSMountFailureException",
                "EFSMountTimeoutException",
                "SnapStartException",
                "SnapStartNotReadyException",
                "SnapStartTimeoutException",
            )
        },
        applies=False,
    )
    rows += _unmodelled(
        integration,
        {
            "AccessDeniedException": (False, "the state machine role may not invoke the function"),
            **dict.fromkeys(sorted(_LAMBDA_LATER_APPLICABLE), (False, "modelled after the Java SDK 1.x froze")),
        },
        "java-v1-frozen",
    )
    rows += _unmodelled(
        integration,
        dict.fromkeys(
            sorted(_LAMBDA_LATER_NOT_APPLICABLE), (False, "modelled after the Java SDK 1.x froze; " + no_vpc)
        ),
        "java-v1-frozen",
        applies=False,
    )
    return [
        *rows,
        _generic(integration, "sfn-lambda"),
        ErrorRow("client-side failure (network)", "Lambda.SdkClientException", "client", True, "sfn-lambda"),
        ErrorRow(
            "the client's own request timeout", "Lambda.ClientExecutionTimeoutException", "client", True, "sfn-lambda"
        ),
        ErrorRow(
            "the function times out or runs out of memory",
            "Lambda.Unknown",
            "function",
            False,
            "sfn-lambda",
            "not retried: the same input would time out again; caught by States.ALL",
        ),
        ErrorRow(
            "the function raises",
            "<the function's errorType>",
            "function",
            False,
            "rec-lambda",
            "e.g. ValueError; caught by States.ALL",
        ),
        _STATE_TIMEOUT,
    ]


_LAMBDA_VPC_TRANSIENT: Final = frozenset(
    {"ResourceNotReadyException", "EC2ThrottledException", "ENILimitReachedException", "SnapStartNotReadyException"}
)
_LAMBDA_LATER_APPLICABLE: Final = frozenset(
    {"ServiceQuotaExceededException", "SerializedRequestEntityTooLargeException"}
)
_LAMBDA_LATER_NOT_APPLICABLE: Final = frozenset(
    {
        "CodeArtifactUserDeletedException",
        "CodeArtifactUserFailedException",
        "CodeArtifactUserPendingException",
        "DurableExecutionAlreadyStartedException",
        "ENINotReadyException",
        "ModeNotSupportedException",
        "NoPublishedVersionException",
        "S3FilesMountConnectivityException",
        "S3FilesMountFailureException",
        "S3FilesMountTimeoutException",
        "SnapStartRegenerationFailureException",
    }
)


def _sns() -> list[ErrorRow]:
    integration = "sns:publish"
    rows = _modelled(
        integration,
        "Publish",
        {
            "InternalError": (True, "server error (500)"),
            "KMSThrottling": (True, "the topic's key is throttled"),
            "Throttled": (True, "modelled for the service (429), not listed for Publish"),
            "InvalidParameter": _PERMANENT,
            "ParameterValueInvalid": _PERMANENT,
            "NotFound": (False, "recorded on AWS as SNS.NotFoundException"),
            "AuthorizationError": _PERMANENT,
            "EndpointDisabled": (False, "direct publish to mobile endpoints only"),
            "PlatformApplicationDisabled": (False, "direct publish to mobile endpoints only"),
            "KMSDisabled": _PERMANENT,
            "KMSInvalidState": _PERMANENT,
            "KMSNotFound": _PERMANENT,
            "KMSOptInRequired": _PERMANENT,
            "KMSAccessDenied": _PERMANENT,
            "InvalidSecurity": _PERMANENT,
            "ValidationException": _PERMANENT,
        },
    )
    rows += _unmodelled(
        integration,
        {"ThrottlingException": _THROTTLING, "ServiceUnavailable": _SERVER, "AccessDeniedException": _PERMANENT},
        "java-v1-frozen",
    )
    return [*rows, _generic(integration, "rec-sns"), _STATE_TIMEOUT]


def _codebuild() -> list[ErrorRow]:
    integration = "codebuild:startBuild"
    rows = _modelled(
        integration,
        "StartBuild",
        {
            "AccountLimitExceededException": (True, "a service limit of the account (concurrent builds)"),
            "InvalidInputException": _PERMANENT,
            "ResourceNotFoundException": _PERMANENT,
        },
    )
    rows += _unmodelled(
        integration,
        {
            "ThrottlingException": _THROTTLING,
            "InternalFailure": _SERVER,
            "ServiceUnavailable": _SERVER,
            "AccessDeniedException": _PERMANENT,
            "AccountSuspendedException": (False, "modelled after the Java SDK 1.x froze"),
        },
        "java-v1-frozen",
    )
    return [
        *rows,
        _generic(integration, "java-v1-frozen"),
        ErrorRow(
            "the build ends FAILED, FAULT, STOPPED or TIMED_OUT (.sync)",
            "States.TaskFailed",
            "states",
            False,
            "sfn-errors",
            "cause: the build as JSON; no public recording found",
        ),
        _JOB_TIMEOUT,
    ]


def _sagemaker() -> list[ErrorRow]:
    integration = "sagemaker:createTrainingJob"
    rows = _modelled(
        integration,
        "CreateTrainingJob",
        {
            "ResourceLimitExceeded": (True, "instance quota in use by other jobs"),
            "ResourceInUse": (False, "the job name is taken (names are per attempt)"),
            "ResourceNotFound": _PERMANENT,
        },
    )
    rows += _unmodelled(
        integration,
        {
            "ThrottlingException": (True, "throttling (sm-throttling)"),
            "InternalFailure": _SERVER,
            "ServiceUnavailable": _SERVER,
            "ValidationException": _PERMANENT,
            "AccessDeniedException": _PERMANENT,
        },
        "sm-throttling",
    )
    return [
        *rows,
        _generic(integration, "java-v1-frozen"),
        ErrorRow(
            "the training job ends Failed or Stopped (.sync)",
            "States.TaskFailed",
            "states",
            False,
            "sfn-errors",
            "cause: DescribeTrainingJob as JSON; no public recording found",
        ),
        _JOB_TIMEOUT,
    ]


def _sagemaker_model_package() -> list[ErrorRow]:
    integration = "aws-sdk:sagemaker:createModelPackage"
    rows = _modelled(
        integration,
        "CreateModelPackage",
        {
            "ConflictException": (
                True,
                "a concurrent change to the group; the state's ClientToken makes a retry return the package "
                "a lost response created",
            ),
            "ResourceLimitExceeded": (False, "the account's model package quota: not a passing fault"),
        },
    )
    rows += _unmodelled(
        integration,
        {
            "ThrottlingException": (True, "throttling (sm-throttling)"),
            "InternalFailure": _SERVER,
            "ServiceUnavailable": _SERVER,
            "ValidationException": (
                False,
                "a request SageMaker refuses (no such group, a property it does not accept)",
            ),
            "AccessDeniedException": _PERMANENT,
        },
        "sm-throttling",
    )
    return [*rows, _generic(integration, "sfn-awssdk"), _STATE_TIMEOUT]


def _ecr(operation: str = "DescribeImages") -> list[ErrorRow]:
    integration = f"aws-sdk:ecr:{operation[:1].lower()}{operation[1:]}"
    codes: dict[str, dict[str, tuple[bool, str]]] = {
        "DescribeImages": {
            "ServerException": _SERVER,
            "ImageNotFoundException": (False, "no image of this tree (or commit) yet; caught (build it)"),
            "RepositoryNotFoundException": _PERMANENT,
            "InvalidParameterException": _PERMANENT,
        },
        "BatchGetImage": {
            "ServerException": _SERVER,
            "InvalidParameterException": _PERMANENT,
            "RepositoryNotFoundException": _PERMANENT,
            "LimitExceededException": (True, "throttling in botocore's standard retry mode (botocore-retry)"),
            "UnableToGetUpstreamImageException": (False, "pull-through cache repositories only"),
        },
        "PutImage": {
            "ServerException": _SERVER,
            "InvalidParameterException": _PERMANENT,
            "RepositoryNotFoundException": _PERMANENT,
            "ImageAlreadyExistsException": (False, "the image already has this tag; caught (nothing to add)"),
            "LayersNotFoundException": _PERMANENT,
            "ReferencedImagesNotFoundException": _PERMANENT,
            "LimitExceededException": (True, "throttling in botocore's standard retry mode (botocore-retry)"),
            "ImageTagAlreadyExistsException": (
                False,
                "the immutable tag names another image (an older build of the commit); caught (keep it)",
            ),
            "ImageDigestDoesNotMatchException": _PERMANENT,
            "KmsException": (False, "the repository's KMS key refused the write"),
        },
    }
    rows = _modelled(integration, operation, codes[operation])
    rows += _unmodelled(
        integration,
        {"ThrottlingException": _THROTTLING, "AccessDeniedException": _PERMANENT},
        "sfn-awssdk",
    )
    return [*rows, _generic(integration, "sfn-awssdk"), _STATE_TIMEOUT]


def _s3() -> list[ErrorRow]:
    integration = "aws-sdk:s3:copyObject"
    rows = _modelled(
        integration,
        "CopyObject",
        {
            "ObjectNotInActiveTierError": _PERMANENT,
            "NoSuchKey": (False, "the source version is gone; recorded on AWS as S3.NoSuchKeyException"),
            "NoSuchBucket": (False, "recorded on AWS as S3.NoSuchBucketException"),
            "AccessDenied": (False, "modelled since 2025; S3.S3Exception from an SDK older than that model"),
        },
    )
    rows += _unmodelled(
        integration,
        {
            "SlowDown": _THROTTLING,
            "InternalError": _SERVER,
            "ServiceUnavailable": _SERVER,
            "RequestTimeout": (True, "the SDK's transient code"),
            "NoSuchVersion": (False, "the source version id does not exist"),
        },
        "sfn-awssdk",
    )
    return [*rows, _generic(integration, "rec-awssdk"), _STATE_TIMEOUT]


@cache
def errors() -> dict[str, tuple[ErrorRow, ...]]:
    """Every integration of the workflow (named as in a Task's Resource, after arn:aws:states:::, without .sync):
    the ways it can fail, named as Step Functions names them."""
    return {
        "lambda:invoke": tuple(_lambda()),
        "dynamodb:putItem": tuple(_dynamodb("PutItem", writes=True)),
        "dynamodb:updateItem": tuple(_dynamodb("UpdateItem", writes=True)),
        "dynamodb:getItem": tuple(_dynamodb("GetItem", writes=False)),
        "sns:publish": tuple(_sns()),
        "codebuild:startBuild": tuple(_codebuild()),
        "sagemaker:createTrainingJob": tuple(_sagemaker()),
        "aws-sdk:ecr:describeImages": tuple(_ecr()),
        "aws-sdk:ecr:batchGetImage": tuple(_ecr("BatchGetImage")),
        "aws-sdk:ecr:putImage": tuple(_ecr("PutImage")),
        "aws-sdk:s3:copyObject": tuple(_s3()),
        "aws-sdk:sagemaker:createModelPackage": tuple(_sagemaker_model_package()),
    }


def names_emitted(integration: str) -> set[str]:
    """Every error name Step Functions can report for the integration."""
    return {row.name for row in errors()[integration]}


def transient_names(integration: str) -> set[str]:
    """The names a Retry on the integration must list: the transient failures the stack can meet."""
    return {row.name for row in errors()[integration] if row.transient and row.applies}


def codes(integration: str) -> set[str]:
    """The service error codes the table lists for the integration (what fault injection may answer with)."""
    return {row.code for row in errors()[integration] if row.kind in {"modelled", "unmodelled"}}


# ----------------------------------------------------------------------------------------------- docs

_BEGIN: Final = "<!-- error-names:begin (generated by python -m sagepipe.error_names --write) -->"
_END: Final = "<!-- error-names:end -->"
DOCS_PATH: Final = Path(__file__).resolve().parent.parent / "docs" / "error-names.md"
ASL_PATH: Final = Path(__file__).resolve().parent.parent / "statemachine" / "pipeline.asl.json"


def retried_by_definition(definition: dict[str, Any]) -> dict[str, set[str]]:
    """For each integration, the names the definition's Retry lists on its Tasks (the union over the Tasks)."""
    retried: dict[str, set[str]] = {}
    for state in definition["States"].values():
        if state["Type"] != "Task":
            continue
        integration = str(state["Resource"]).removeprefix("arn:aws:states:::").removesuffix(".sync")
        names = {name for retrier in state.get("Retry", []) for name in retrier["ErrorEquals"]}
        retried.setdefault(integration, set()).update(names)
    return retried


def _source_text(source: str) -> str:
    target = SOURCES.get(source, source)
    return f"[{source}]({target})" if target.startswith("https://") else f"`{target}`"


def render_table(definition: dict[str, Any]) -> str:
    """The table of docs/error-names.md: integration -> code -> name -> kind -> transient -> retried -> source."""
    retried = retried_by_definition(definition)
    lines = [
        "| integration | code or event | error name | kind | transient | retried | note | source |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for integration, rows in errors().items():
        for row in rows:
            transient = ("yes" if row.transient else "no") + ("" if row.applies else " (n/a)")
            is_retried = "yes" if row.name in retried.get(integration, set()) else "no"
            lines.append(
                f"| `{integration}` | {row.code} | `{row.name}` | {row.kind} | {transient} | {is_retried} | "
                f"{row.note} | {_source_text(row.source)} |"
            )
    return "\n".join(lines)


def render_docs(current: str, definition: dict[str, Any]) -> str:
    """docs/error-names.md with its generated table replaced by the current one."""
    head, _, rest = current.partition(_BEGIN)
    _, _, tail = rest.partition(_END)
    return f"{head}{_BEGIN}\n{render_table(definition)}\n{_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help=f"rewrite the table in {DOCS_PATH.name}")
    args = parser.parse_args(argv)
    definition = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    if args.write:
        DOCS_PATH.write_text(render_docs(DOCS_PATH.read_text(encoding="utf-8"), definition), encoding="utf-8")
    else:
        print(render_table(definition))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

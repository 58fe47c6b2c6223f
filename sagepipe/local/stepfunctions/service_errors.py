"""moto's optimised DynamoDB, SNS and Lambda integrations name their errors as Step Functions does.

The gap
    moto names a service error of these integrations from the error code alone: DynamoDB `DynamoDB.<Code>`
    (`DynamoDB.InternalServerError`), Lambda `Lambda.<Code>`, SNS `SNS.<Code>Exception` for every code
    (`SNS.ThrottlingException`). Step Functions names it after the Java SDK 1.x exception class: the modelled
    shape with an `Exception` suffix (`DynamoDB.InternalServerErrorException`), and the client's base exception for
    a code the client does not model (`DynamoDB.AmazonDynamoDBException`, `SNS.AmazonSNSException`). A Retry
    written against moto's names would list names AWS never emits, and miss the ones it does.
    A Lambda function that times out is reported by moto with the payload's errorType (`Sandbox.Timedout`); the
    Step Functions docs report function timeouts and out-of-memory errors as `Lambda.Unknown`.

What this adapter does
    Replaces the staticmethod `StateTaskServiceDynamoDB._error_cause_from_client_error` (task_timeouts wraps that
    class's `_from_error`, which calls it) and the `_from_error` of the SNS and Lambda tasks: a ClientError is
    named by sagepipe.error_names, with the Java SDK 1.x cause format; a function's timeout or out-of-memory error
    becomes Lambda.Unknown with the payload as cause; everything else goes to moto.

How it differs from AWS
    Request ids are moto's. Sources for every name: docs/error-names.md.
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Final

from botocore.exceptions import ClientError

from sagepipe import error_names
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "service_errors"

_SERVICE: Final = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service"
_DYNAMODB: Final = f"{_SERVICE}.state_task_service_dynamodb"
_SNS: Final = f"{_SERVICE}.state_task_service_sns"
_LAMBDA: Final = f"{_SERVICE}.state_task_service_lambda"
_LAMBDA_EVAL: Final = "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils"

MOTO_INTERNALS: Final = (
    Internal(
        f"{_DYNAMODB}:StateTaskServiceDynamoDB._error_cause_from_client_error",
        parameters=("client_error",),
        why="a staticmethod returning (error, cause) for a ClientError; moto names it DynamoDB.<Code>",
    ),
    Internal(
        f"{_SNS}:StateTaskServiceSns._from_error",
        parameters=("self", "env", "ex"),
        why="names every ClientError SNS.<Code>Exception",
    ),
    Internal(
        f"{_LAMBDA}:StateTaskServiceLambda._from_error",
        parameters=("self", "env", "ex"),
        why="names a ClientError Lambda.<Code>, a function error after the payload's errorType",
    ),
    Internal(
        f"{_LAMBDA_EVAL}:LambdaFunctionErrorException",
        parameters=("function_error", "payload"),
        why="a function error; its payload (JSON with errorType) becomes the cause",
    ),
)

LAMBDA_UNKNOWN_ERROR_TYPES: Final = frozenset({"Sandbox.Timedout", "Runtime.OutOfMemory", "Runtime.ExitError"})
"""Function failures the Step Functions docs report as Lambda.Unknown (timeouts, out of memory, a crashed runtime)."""


def named(service: str, error: ClientError) -> tuple[str, str]:
    """(error name, cause) of an optimised integration's ClientError, as Step Functions reports them."""
    naming = error_names.service(service, "optimised")
    code = str(error.response["Error"]["Code"])
    metadata = error.response.get("ResponseMetadata", {})
    cause = error_names.error_cause(
        naming,
        code,
        message=str(error.response["Error"].get("Message", "")),
        status=metadata.get("HTTPStatusCode", 400),
        request_id=metadata.get("RequestId", ""),
    )
    return error_names.error_name(naming, code), cause


def _dynamodb_error_cause(client_error: ClientError) -> tuple[str, str]:
    return named("dynamodb", client_error)


def _sns_from_error(self: Any, env: Any, ex: Exception) -> Any:
    from sagepipe.local.stepfunctions.sync_task import named_failure

    if isinstance(ex, ClientError):
        return named_failure(self, env, *named("sns", ex)).failure_event
    return original_attribute(importlib.import_module(_SNS).StateTaskServiceSns, "_from_error")(self, env, ex)


def _lambda_from_error(self: Any, env: Any, ex: Exception) -> Any:
    from sagepipe.local.stepfunctions.sync_task import named_failure

    if isinstance(ex, ClientError):
        return named_failure(self, env, *named("lambda", ex)).failure_event
    function_error = importlib.import_module(_LAMBDA_EVAL).LambdaFunctionErrorException
    if isinstance(ex, function_error) and _error_type(ex.payload) in LAMBDA_UNKNOWN_ERROR_TYPES:
        return named_failure(self, env, "Lambda.Unknown", str(ex.payload)).failure_event
    return original_attribute(importlib.import_module(_LAMBDA).StateTaskServiceLambda, "_from_error")(self, env, ex)


def _error_type(payload: Any) -> str | None:
    try:
        document = json.loads(payload)
    except (TypeError, ValueError):
        return None
    return str(document.get("errorType")) if isinstance(document, dict) else None


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    replace_attribute(
        importlib.import_module(_DYNAMODB).StateTaskServiceDynamoDB,
        "_error_cause_from_client_error",
        staticmethod(_dynamodb_error_cause),
    )
    replace_attribute(importlib.import_module(_SNS).StateTaskServiceSns, "_from_error", _sns_from_error)
    replace_attribute(importlib.import_module(_LAMBDA).StateTaskServiceLambda, "_from_error", _lambda_from_error)

"""`arn:aws:states:::aws-sdk:*` integrations with AWS's parameter, response and error names.

The gap
    moto's aws-sdk task passes the state's parameters straight to boto3, so AWS's PascalCase names fail on
    every camelCase API (ECR: `RepositoryName` instead of `repositoryName`), responses keep the API's
    casing (`imageDetails`, where Step Functions returns `ImageDetails`), and a service error is named
    `Ecr.EcrException` whatever it was, so `"ErrorEquals": ["Ecr.ImageNotFoundException"]` never matches.

What this adapter does
    * Maps parameters onto the operation's input shape with botocore's service model, member by member
      and recursively (case-insensitive, as Step Functions' own mapping is), and turns the response's
      member names into PascalCase, with timestamps as ISO 8601 strings.
    * Names errors as Step Functions does (sagepipe.error_names, sources in docs/error-names.md): the Java SDK
      2.x client's exception class, `<Service>.<Shape>Exception` for a code the service models
      (`S3.NoSuchKeyException`, `Ecr.ImageNotFoundException`) and the client's base exception for any other
      code (`Ecr.EcrException`, `S3.S3Exception`), with the 2.x cause format.

    * Keeps the Java SDK's handling of S3's CopySource: Step Functions sends the caller's URL-encoded
      string as is, while botocore would URL-encode it a second time; the adapter hands botocore the parsed
      bucket, key and version, which it encodes once.

How it differs from AWS
    The cause string follows the Java SDK's format but the request ids are moto's, and it has no
    `(SDK Attempt Count: N)` suffix (seen in a 2025 recording; the local client does not retry).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlparse

from sagepipe import error_names
from sagepipe.local.core.moto_internals import Internal, check_all, replace_attribute

ADAPTER = "aws_sdk"

MOTO_INTERNALS: Final = (
    Internal(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk:"
        "StateTaskServiceAwsSdk._eval_service_task",
        parameters=("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"),
        why="calls getattr(client, snake_case(action))(**normalised_parameters)",
    ),
    Internal(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service:"
        "StateTaskService._eval_execution",
        why="calls _normalise_parameters on a copy of the arguments and _normalise_response on the result",
    ),
    Internal(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk:"
        "StateTaskServiceAwsSdk._from_error",
        parameters=("self", "env", "ex"),
    ),
    Internal(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk:"
        "StateTaskServiceAwsSdk._get_task_failure_event",
        parameters=("self", "env", "error", "cause"),
    ),
    Internal(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service:"
        "StateTaskService._get_boto_service_name",
        why="maps the ASL service name (sfn, states) to boto3's before the aws-sdk task builds its client",
    ),
)

_BOTO_SERVICE_OVERRIDES: Final = {"sfn": "stepfunctions", "states": "stepfunctions"}


@cache
def service_model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(_BOTO_SERVICE_OVERRIDES.get(service, service))


def operation_model(service: str, action: str) -> Any:
    model = service_model(service)
    name = action[:1].upper() + action[1:]
    return model.operation_model(name)


def _member_map(shape: Any) -> dict[str, str]:
    return {name.lower(): name for name in shape.members}


def to_api_value(value: Any, shape: Any) -> Any:
    """An AWS-cased (PascalCase) value converted to the member names of a botocore shape."""
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        members = _member_map(shape)
        converted = {}
        for key, item in value.items():
            member = members.get(key.lower())
            if member is None:
                raise ValueError(f"{shape.name} has no member {key!r} (members: {', '.join(shape.members)})")
            converted[member] = to_api_value(item, shape.members[member])
        return converted
    if shape.type_name == "list" and isinstance(value, list):
        return [to_api_value(item, shape.member) for item in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {key: to_api_value(item, shape.value) for key, item in value.items()}
    return value


def to_sfn_value(value: Any, shape: Any = None) -> Any:
    """A boto3 response value as Step Functions presents it: PascalCase member names, ISO timestamps.

    With the botocore shape, only structure members are renamed: the keys of a map are data (DynamoDB attribute
    names, S3 metadata) and keep their case. Without it, every key is treated as a member name.
    """
    if isinstance(value, dict):
        if shape is not None and shape.type_name == "map":
            return {key: to_sfn_value(item, shape.value) for key, item in value.items()}
        members = shape.members if shape is not None and shape.type_name == "structure" else {}
        return {(key[:1].upper() + key[1:]): to_sfn_value(item, members.get(key)) for key, item in value.items()}
    if isinstance(value, list):
        member = shape.member if shape is not None and shape.type_name == "list" else None
        return [to_sfn_value(item, member) for item in value]
    return _sfn_scalar(value)


def _sfn_scalar(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "read"):
        return value.read().decode("utf-8", errors="replace")
    return value


def sdk_service_name(service: str) -> str:
    """The service name in AWS SDK error names: the Java SDK v2 client's PascalCase (ECR -> Ecr)."""
    return error_names.sdk_service_name(service)


def sdk_error_name(service: str, error_code: str) -> str:
    """The error Step Functions reports when an aws-sdk call to `service` answers with `error_code`."""
    return error_names.error_name(error_names.service(service, "aws-sdk"), error_code)


def parse_copy_source(copy_source: str) -> dict[str, str]:
    """An S3 CopySource header value (bucket/key?versionId=..., URL-encoded) as boto3's dict form."""
    parsed = urlparse(copy_source)
    bucket, _, key = unquote(parsed.path).lstrip("/").partition("/")
    source = {"Bucket": bucket, "Key": key}
    version = parse_qs(parsed.query).get("versionId")
    if version:
        source["VersionId"] = version[0]
    return source


def _normalise_parameters(
    self: Any, parameters: dict[str, Any], boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    service = boto_service_name or self.resource.api_name
    action = service_action_name or self.resource.api_action
    converted = to_api_value(parameters, operation_model(service, action).input_shape)
    if service == "s3" and isinstance(converted.get("CopySource"), str):
        converted["CopySource"] = parse_copy_source(converted["CopySource"])
    parameters.clear()
    parameters.update(converted)


def _normalise_response(
    self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    if isinstance(response, dict):
        service = boto_service_name or self.resource.api_name
        action = service_action_name or self.resource.api_action
        converted = to_sfn_value(response, operation_model(service, action).output_shape)
        response.clear()
        response.update(converted)


def _from_error(self: Any, env: Any, ex: Exception) -> Any:
    from botocore.exceptions import ClientError

    if not isinstance(ex, ClientError):
        return _original_from_error(self, env, ex)
    service = error_names.service(self.resource.api_name, "aws-sdk")
    code = str(ex.response["Error"]["Code"])
    metadata = ex.response.get("ResponseMetadata", {})
    cause = error_names.error_cause(
        service,
        code,
        message=ex.response["Error"].get("Message", ""),
        status=metadata.get("HTTPStatusCode"),
        request_id=metadata.get("RequestId"),
        host_id=metadata.get("HostId"),
    )
    return self._get_task_failure_event(env=env, error=error_names.error_name(service, code), cause=cause)


_original_from_error: Any = None


def install() -> None:
    global _original_from_error  # noqa: PLW0603 - the wrapped original, kept once across installs
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )

    replace_attribute(StateTaskServiceAwsSdk, "_normalise_parameters", _normalise_parameters)
    replace_attribute(StateTaskServiceAwsSdk, "_normalise_response", _normalise_response)
    _original_from_error = replace_attribute(StateTaskServiceAwsSdk, "_from_error", _from_error)

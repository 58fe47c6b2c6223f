"""The local build's `aws`: the AWS CLI v2 commands the registry step uses, answered from the emulator.

- `aws ecr get-login-password`: GetAuthorizationToken, and the password of its `AWS:<password>` token.
- `aws ecr-public get-login-password`: a local token (ECR Public is not emulated; `docker login public.ecr.aws`
  takes it).
- `aws ecr describe-images --repository-name R [--registry-id A] [--image-ids ...] [--filter ...]`, with the
  global `--query`, `--output json|text|off` and `--region`.
- `aws ecr batch-get-image --repository-name R --image-ids ...` and `aws ecr put-image --repository-name R
  --image-manifest M --image-tag T [--image-digest D] [--image-manifest-media-type M]`: the retagging of an
  image without pulling or pushing it (ECR user guide, "Retagging an image in Amazon ECR"). A `file://` value
  is read from the file, as the CLI reads it.

What the real CLI does, and this one too:
- Exit codes (AWS CLI User Guide, "Command line return codes in the AWS CLI"): 0 success; 252 the command
  line could not be parsed (an unknown option, a missing argument); 254 the request reached the service and it
  returned an error (an ImageNotFoundException, say); 255 any other failure, which is what a command the local
  build does not emulate exits with.
- A service error is printed to stderr as botocore words it: "An error occurred (<Code>) when calling the
  <Operation> operation: <Message>", after an empty line.
- Timestamps are ISO 8601 strings before `--query` runs (AWS CLI User Guide, "Breaking changes between AWS
  CLI version 1 and version 2": timestamp output values are standardized to ISO 8601; `cli_timestamp_format`
  defaults to iso8601).
- JSON output is the whole result (every page), queried, indented by 4; text output queries each page on its
  own, and prints scalars as Python's str (None is `None`), lists tab-separated, and objects as rows (the text
  rules of aws-cli's awscli/text.py and awscli/formatter.py TextFormatter).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any, Final

from botocore.exceptions import ClientError

from sagepipe.local.codebuild.stubs.common import ECR_PUBLIC_TOKEN, Call, NotEmulated, ecr_password

PARSE_ERROR: Final = 252
SERVICE_ERROR: Final = 254
OTHER_ERROR: Final = 255

# Global options: those that take a value, and flags. --profile and --endpoint-url are read and ignored: the
# stubs answer from the emulator, with its credentials, whatever the command asks for.
_GLOBAL_VALUE_OPTIONS: Final = frozenset(
    {
        "--region", "--output", "--query", "--profile", "--endpoint-url", "--color", "--ca-bundle",
        "--cli-read-timeout", "--cli-connect-timeout", "--cli-binary-format",
    }
)  # fmt: skip
_GLOBAL_FLAGS: Final = frozenset(
    {"--no-cli-pager", "--no-paginate", "--no-verify-ssl", "--no-sign-request", "--debug", "--no-cli-auto-prompt"}
)
_NOT_EMULATED_OPTIONS: Final = frozenset(
    {
        "--max-items",
        "--page-size",
        "--starting-token",
        "--cli-input-json",
        "--cli-input-yaml",
        "--generate-cli-skeleton",
    }
)


class _UsageError(Exception):
    """The command line could not be parsed: the AWS CLI exits 252."""


def run(call: Call) -> int:
    try:
        positional, options = _parse(call.args)
    except _UsageError as error:
        call.err(f"\naws: error: {error}")
        return PARSE_ERROR
    command = tuple(positional[:2])
    handlers: dict[tuple[str, ...], Callable[[Call, dict[str, list[str]]], int]] = {
        ("ecr", "get-login-password"): _ecr_login_password,
        ("ecr-public", "get-login-password"): _ecr_public_login_password,
        ("ecr", "describe-images"): _describe_images,
        ("ecr", "batch-get-image"): _batch_get_image,
        ("ecr", "put-image"): _put_image,
    }
    handler = handlers.get(command)
    if handler is None or len(positional) > 2:
        raise NotEmulated(
            f"aws {' '.join(positional) or '(no command)'}: not emulated locally; the local build answers aws ecr "
            "get-login-password, aws ecr-public get-login-password, aws ecr describe-images, batch-get-image and "
            "put-image"
        )
    try:
        return handler(call, options)
    except _UsageError as error:
        call.err(f"\naws: error: {error}")
        return PARSE_ERROR
    except ClientError as error:
        call.err(f"\n{error}")
        call.notes.append(error.response["Error"].get("Code", "error"))
        return SERVICE_ERROR


def _parse(args: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The command words, and every option with the values that follow it (options may come anywhere)."""
    positional: list[str] = []
    options: dict[str, list[str]] = {}
    current: list[str] | None = None
    for word in args:
        if word.startswith("--"):
            name, equals, value = word.partition("=")
            if name in _NOT_EMULATED_OPTIONS:
                raise NotEmulated(f"aws {name}: not emulated locally")
            current = options.setdefault(name, [])
            if equals:
                current.append(value)
            if name in _GLOBAL_FLAGS:
                current = None
        elif current is not None:
            current.append(word)
        else:
            positional.append(word)
    for name in _GLOBAL_VALUE_OPTIONS & options.keys():
        if len(options[name]) != 1:
            raise _UsageError(f"argument {name}: expected one argument")
    return positional, options


def _check(options: dict[str, list[str]], allowed: set[str]) -> None:
    unknown = sorted(set(options) - allowed - _GLOBAL_FLAGS - _GLOBAL_VALUE_OPTIONS)
    if unknown:
        raise _UsageError(f"Unknown options: {', '.join(unknown)}")


def _single(options: dict[str, list[str]], name: str) -> str | None:
    values = options.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise _UsageError(f"argument {name}: expected one argument")
    return values[0]


# ---------------------------------------------------------------------------------------------- get-login-password


def _ecr_login_password(call: Call, options: dict[str, list[str]]) -> int:
    _check(options, set())
    call.out(ecr_password(call.client("ecr", call.region(_single(options, "--region")))))
    call.notes.append("printed the emulator's ECR password")
    return 0


def _ecr_public_login_password(call: Call, options: dict[str, list[str]]) -> int:
    _check(options, set())
    call.out(ECR_PUBLIC_TOKEN)
    call.notes.append("printed a local ECR Public token")
    return 0


# ---------------------------------------------------------------------------------------------- describe-images


def _describe_images(call: Call, options: dict[str, list[str]]) -> int:
    _check(options, {"--repository-name", "--registry-id", "--image-ids", "--filter"})
    repository = _single(options, "--repository-name")
    if not repository:
        raise _UsageError("the following arguments are required: --repository-name")
    request: dict[str, Any] = {"repositoryName": repository}
    if (registry := _single(options, "--registry-id")) is not None:
        request["registryId"] = registry
    if "--image-ids" in options:
        request["imageIds"] = [item for value in options["--image-ids"] for item in _structures(value)]
    if (filter_value := _single(options, "--filter")) is not None:
        (request["filter"],) = _structures(filter_value)
    output = _single(options, "--output") or call.environment.get("AWS_DEFAULT_OUTPUT") or "json"
    query = _compile_query(_single(options, "--query"))
    pages = call.client("ecr", call.region(_single(options, "--region"))).get_paginator("describe_images")
    paginated = pages.paginate(**request)
    if output == "json":
        result = _iso_timestamps(paginated.build_full_result())
        result.pop("NextToken", None)
        _write_json(query(result), call.stdout)
    elif output == "text":
        for page in paginated:
            _write_text(query({"imageDetails": _iso_timestamps(page.get("imageDetails", []))}), call.stdout)
    elif output != "off":
        raise NotEmulated(f"aws --output {output}: not emulated locally; use json or text")
    call.notes.append(f"answered from the emulator's ECR ({repository})")
    return 0


# ---------------------------------------------------------------------------------------------- retagging


def _write(call: Call, options: dict[str, list[str]], result: dict[str, Any]) -> None:
    output = _single(options, "--output") or call.environment.get("AWS_DEFAULT_OUTPUT") or "json"
    result.pop("ResponseMetadata", None)
    queried = _compile_query(_single(options, "--query"))(_iso_timestamps(result))
    if output == "json":
        _write_json(queried, call.stdout)
    elif output == "text":
        _write_text(queried, call.stdout)
    elif output != "off":
        raise NotEmulated(f"aws --output {output}: not emulated locally; use json or text")


def _required(options: dict[str, list[str]], name: str) -> str:
    value = _single(options, name)
    if not value:
        raise _UsageError(f"the following arguments are required: {name}")
    return value


def _blob(call: Call, value: str) -> str:
    """A string parameter, read from the named file when it starts with file:// (as the CLI does)."""
    if value.startswith("file://"):
        return (call.cwd / value.removeprefix("file://")).read_text(encoding="utf-8")
    return value


def _batch_get_image(call: Call, options: dict[str, list[str]]) -> int:
    _check(options, {"--repository-name", "--registry-id", "--image-ids", "--accepted-media-types"})
    request: dict[str, Any] = {
        "repositoryName": _required(options, "--repository-name"),
        "imageIds": [item for value in options.get("--image-ids", []) for item in _structures(value)],
    }
    if (registry := _single(options, "--registry-id")) is not None:
        request["registryId"] = registry
    if "--accepted-media-types" in options:
        request["acceptedMediaTypes"] = options["--accepted-media-types"]
    if not request["imageIds"]:
        raise _UsageError("the following arguments are required: --image-ids")
    result = call.client("ecr", call.region(_single(options, "--region"))).batch_get_image(**request)
    _write(call, options, result)
    call.notes.append(f"answered from the emulator's ECR ({request['repositoryName']})")
    return 0


def _put_image(call: Call, options: dict[str, list[str]]) -> int:
    allowed = {"--repository-name", "--registry-id", "--image-manifest", "--image-tag", "--image-digest"}
    _check(options, allowed | {"--image-manifest-media-type"})
    request: dict[str, Any] = {
        "repositoryName": _required(options, "--repository-name"),
        "imageManifest": _blob(call, _required(options, "--image-manifest")),
    }
    for option, name in (
        ("--registry-id", "registryId"),
        ("--image-tag", "imageTag"),
        ("--image-digest", "imageDigest"),
        ("--image-manifest-media-type", "imageManifestMediaType"),
    ):
        if (value := _single(options, option)) is not None:
            request[name] = value
    result = call.client("ecr", call.region(_single(options, "--region"))).put_image(**request)
    _write(call, options, result)
    call.notes.append(f"tagged {request.get('imageTag')} in the emulator's ECR ({request['repositoryName']})")
    return 0


def _structures(value: str) -> list[dict[str, Any]]:
    """A structure argument in JSON, or in shorthand syntax (key=value,key=value)."""
    text = value.strip()
    if text.startswith(("[", "{")):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            raise _UsageError(f"Error parsing parameter: Invalid JSON: {error}") from error
        return parsed if isinstance(parsed, list) else [parsed]
    structure: dict[str, Any] = {}
    for pair in text.split(","):
        key, equals, item = pair.partition("=")
        if not equals or not key:
            raise _UsageError(f"Error parsing parameter: Expected: '=', received: '{pair}' for input: {value}")
        structure[key.strip()] = item.strip()
    return [structure]


def _compile_query(expression: str | None) -> Callable[[Any], Any]:
    if expression is None:
        return lambda value: value
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        compiled = jmespath.compile(expression)
    except JMESPathError as error:
        raise _UsageError(f"argument --query: Bad value for --query {expression}: {error}") from error
    search: Callable[[Any], Any] = compiled.search
    return search


def _iso_timestamps(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _iso_timestamps(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_iso_timestamps(item) for item in value]
    return value


def _write_json(value: Any, stream: IO[str]) -> None:
    if value != {}:  # an empty response body prints nothing; any other value, null included, prints
        stream.write(json.dumps(value, indent=4, ensure_ascii=False) + "\n")


def _write_text(value: Any, stream: IO[str], label: str | None = None, columns: list[str] | None = None) -> None:
    """The AWS CLI's text output: one line per scalar or row of scalars, nested values after their parent's row."""
    if isinstance(value, dict):
        _write_text_object(value, stream, label, columns)
    elif isinstance(value, list):
        _write_text_list(value, stream, label)
    else:
        stream.write(f"{value}\n")


def _write_text_object(value: dict[str, Any], stream: IO[str], label: str | None, columns: list[str] | None) -> None:
    """A row of the object's scalars (in `columns`, those of all its siblings, if given), then its nested values."""
    keys = columns if columns is not None else sorted(key for key, item in value.items() if not _nested(item))
    row = [str(value.get(key, "")) for key in keys]
    if row:
        stream.write("\t".join(([label.upper()] if label else []) + row) + "\n")
    for key in sorted(set(value) - set(keys)):
        _write_text(value[key], stream, label=key)


def _write_text_list(value: list[Any], stream: IO[str], label: str | None) -> None:
    if any(isinstance(item, dict) for item in value):
        shared = sorted({key for item in value if isinstance(item, dict) for key, v in item.items() if not _nested(v)})
        for item in value:
            _write_text(item, stream, label=label, columns=shared if isinstance(item, dict) else None)
        return
    scalars = [item for item in value if not _nested(item)]
    if scalars and label:
        stream.writelines(f"{label.upper()}\t{item}\n" for item in scalars)
    elif scalars:
        stream.write("\t".join(str(item) for item in scalars) + "\n")
    for item in value:
        if _nested(item):
            _write_text(item, stream, label=label)


def _nested(value: Any) -> bool:
    return isinstance(value, dict | list)

"""CodeConnections (and CodeStar Connections) GetConnection answers with the local account's connections.

The gap
    moto 5.2.5 has no CodeConnections backend, nor one for its former name, CodeStar Connections: its server
    finds no application for a request signed for `codeconnections` and fails it. The GitHub code path needs a
    connection, and `sagepipe doctor` reads its status (PENDING until its owner completes the handshake).

What this adapter does
    Wraps the server's dispatcher (`DomainDispatcherApplication.__call__`): a request signed for
    `codeconnections` or `codestar-connections` is answered here, any other goes to moto as before.
    GetConnection answers the connection registered in the local account (sagepipe.local.account.state; the
    provisioner registers the stack's GitHubConnectionArn as AVAILABLE, tests change its status), in
    GetConnectionOutput's shape from botocore's model, in JSON 1.0, the protocol botocore resolves for both APIs
    (CodeConnections' model also offers Smithy RPC v2 CBOR, which botocore ranks lower; a contract test fails
    if that changes); an unknown ARN answers ResourceNotFoundException, as AWS does.

How it differs from AWS
    GetConnection only: every other operation answers an error naming the gap. IAM is not evaluated.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Final

import botocore.session

from sagepipe.local.account.state import LocalAccount
from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "code_connections"

SERVICES: Final = ("codeconnections", "codestar-connections")
"""The signing names botocore's models give the two APIs (metadata.signingName)."""

MOTO_INTERNALS: Final = (
    Internal(
        "moto.moto_server.werkzeug_app:DomainDispatcherApplication.__call__",
        parameters=("self", "environ", "start_response"),
        why="the WSGI entry point of moto's server: every request passes through it before routing",
    ),
)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def signing_service(environ: dict[str, Any]) -> str | None:
    """The service a SigV4 request was signed for (its credential scope: KEY/DATE/REGION/SERVICE/aws4_request)."""
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    try:
        scope = authorization.split(",", maxsplit=1)[0].split()[1].removeprefix("Credential=")
        return scope.split("/")[3]
    except IndexError:
        return None


class _Protocol:
    """How one of the two APIs is spoken: JSON 1.0, the operation named by X-Amz-Target."""

    def __init__(self, service: str) -> None:
        self.model = botocore.session.get_session().get_service_model(service)

    def operation(self, environ: dict[str, Any]) -> str:
        return str(environ.get("HTTP_X_AMZ_TARGET", "")).rsplit(".", 1)[-1]

    def decode(self, body: bytes) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(body) if body else {}
        return decoded

    def encode(self, value: dict[str, Any]) -> tuple[bytes, list[tuple[str, str]]]:
        return json.dumps(value).encode(), [("Content-Type", "application/x-amz-json-1.0")]

    def error(self, code: str, message: str) -> tuple[bytes, list[tuple[str, str]]]:
        # botocore's JSON parser takes the error code after the '#' of `__type`.
        namespace = self.model.metadata.get("targetPrefix", "").rsplit(".", 1)[0]
        return self.encode({"__type": f"{namespace}#{code}", "message": message})


def get_connection(arn: str) -> dict[str, Any] | None:
    connection = context.current().state(LocalAccount).connections.get(arn)
    if connection is None:
        return None
    return {
        "Connection": {
            "ConnectionName": connection.name,
            "ConnectionArn": connection.arn,
            "ProviderType": connection.provider,
            "OwnerAccountId": connection.owner_account_id,
            "ConnectionStatus": connection.status,
        }
    }


def answer(service: str, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    protocol = _Protocol(service)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    request = protocol.decode(environ["wsgi.input"].read(length) if length else b"")
    operation = protocol.operation(environ)
    if operation != "GetConnection":
        status = "400 Bad Request"
        body, headers = protocol.error(
            "UnsupportedOperationException", f"sagepipe's local {service} answers GetConnection only, not {operation}"
        )
    else:
        arn = str(request.get("ConnectionArn", ""))
        output = get_connection(arn)
        if output is None:
            status = "400 Bad Request"
            body, headers = protocol.error("ResourceNotFoundException", f"Connection {arn} does not exist")
        else:
            status = "200 OK"
            body, headers = protocol.encode(output)
    start_response(status, [*headers, ("Content-Length", str(len(body))), ("x-amzn-RequestId", str(uuid.uuid4()))])
    return [body]


def __call__(self: Any, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    service = signing_service(environ)
    if service in SERVICES:
        return answer(service, environ, start_response)
    dispatcher = importlib.import_module("moto.moto_server.werkzeug_app").DomainDispatcherApplication
    result: Iterable[bytes] = original_attribute(dispatcher, "__call__")(self, environ, start_response)
    return result


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    dispatcher = importlib.import_module("moto.moto_server.werkzeug_app").DomainDispatcherApplication
    replace_attribute(dispatcher, "__call__", __call__)

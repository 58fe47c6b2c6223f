"""CodeConnections (and CodeStar Connections) GetConnection answers with the local account's connections.

The gap
    moto 5.2.5 has no CodeConnections backend, nor one for its former name, CodeStar Connections: its server
    finds no application for a request signed for `codeconnections` and fails it. The GitHub code path needs a
    connection, and `sagepipe doctor` reads its status (PENDING until its owner completes the handshake).
    botocore speaks CodeConnections in the Smithy RPC v2 CBOR protocol (its model's first protocol), which
    moto cannot parse or serialise at all.

What this adapter does
    Wraps the server's dispatcher (`DomainDispatcherApplication.__call__`): a request signed for
    `codeconnections` or `codestar-connections` is answered here, any other goes to moto as before.
    GetConnection answers the connection registered in the local account (sagepipe.local.account; the
    provisioner registers the stack's GitHubConnectionArn as AVAILABLE, tests change its status), in
    GetConnectionOutput's shape from botocore's model, encoded by botocore's own CBOR serializer (or as JSON
    for codestar-connections); an unknown ARN answers ResourceNotFoundException, as AWS does.

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
from botocore.model import ShapeResolver

from sagepipe.local import context
from sagepipe.local.adapters._moto import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "code_connections"

SERVICES: Final = ("codeconnections", "codestar-connections")
"""The signing names botocore's models give the two APIs (metadata.signingName)."""

_ERROR_SHAPE_DEFINITIONS: Final[dict[str, Any]] = {
    "Error": {"type": "structure", "members": {"__type": {"shape": "String"}, "Message": {"shape": "String"}}},
    "String": {"type": "string"},
}
_ERROR_SHAPES: Final = ShapeResolver(_ERROR_SHAPE_DEFINITIONS)
"""An error body: Smithy RPC v2 names the error in `__type` (botocore's RpcV2CBORParser reads it there)."""

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
    """How one of the two APIs is spoken: CBOR (codeconnections) or JSON 1.0 (codestar-connections)."""

    def __init__(self, service: str) -> None:
        self.model = botocore.session.get_session().get_service_model(service)
        self.cbor = self.model.resolved_protocol == "smithy-rpc-v2-cbor"

    def operation(self, environ: dict[str, Any]) -> str:
        if self.cbor:  # POST /service/<ServiceName>/operation/<OperationName>
            return str(environ.get("PATH_INFO", "")).rsplit("/", 1)[-1]
        return str(environ.get("HTTP_X_AMZ_TARGET", "")).rsplit(".", 1)[-1]

    def decode(self, body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        if self.cbor:
            from botocore.parsers import RpcV2CBORParser

            parser = RpcV2CBORParser()
            decoded: dict[str, Any] = parser.parse_data_item(parser.get_peekable_stream_from_bytes(body))
            return decoded
        loaded: dict[str, Any] = json.loads(body)
        return loaded

    def encode(self, value: dict[str, Any], shape: Any) -> tuple[bytes, list[tuple[str, str]]]:
        if self.cbor:
            from botocore.serialize import RpcV2CBORSerializer

            serializer: Any = RpcV2CBORSerializer()  # the method that encodes a request's body encodes any shape
            body: bytes = serializer._serialize_body_params(value, shape)
            return body, [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        return json.dumps(value).encode(), [("Content-Type", "application/x-amz-json-1.0")]

    def error(self, code: str, message: str) -> tuple[bytes, list[tuple[str, str]]]:
        namespace = self.model.metadata.get("targetPrefix", "").rsplit(".", 1)[0]
        return self.encode(
            {"__type": f"{namespace}#{code}", "Message": message}, _ERROR_SHAPES.get_shape_by_name("Error")
        )


def get_connection(arn: str) -> dict[str, Any] | None:
    connection = context.current().account.connections.get(arn)
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
            body, headers = protocol.encode(output, protocol.model.operation_model(operation).output_shape)
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

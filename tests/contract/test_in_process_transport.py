"""Contract: the in-process transport (sagepipe/local/core/in_process.py) answers as moto 5.2.5's server does.

The transport hands a client's prepared request to the WSGI application moto's ThreadedMotoServer runs, without the
socket. These tests pin where that application is, and that for the calls the runtime's clients make (JSON, query
and REST protocols, errors, HEAD, S3 metadata whose names keep their underscores) a client with the transport gets
exactly what a client over HTTP gets from the same server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.useragent import UserAgentString

from sagepipe.local.core.in_process import MOTO_INTERNALS, InProcessTransport, served_application
from sagepipe.local.core.moto_internals import Internal

REGION = "us-east-1"
IGNORED_HEADERS = {"date", "server", "connection", "x-amzn-requestid", "x-amz-request-id", "x-amz-id-2", "x-amz-crc32"}
"""Headers that differ between any two answers (time, request ids), or that the HTTP server adds itself (the
hop-by-hop Connection: close, which only the socket needs)."""


@pytest.mark.parametrize("internal", MOTO_INTERNALS, ids=lambda internal: internal.path)
def test_moto_internal_is_where_the_transport_expects_it(internal: Internal) -> None:
    """Given an internal the transport declares, then it resolves in the installed moto."""
    internal.resolve("in_process")


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    try:
        yield moto_server
    finally:
        moto_server.stop()


def _endpoint(server: Any) -> str:
    return f"http://localhost:{server.get_host_and_port()[1]}"


def test_threaded_moto_server_keeps_the_application_it_serves(server: Any) -> None:
    """Given a started ThreadedMotoServer, then its werkzeug server (`_server`) serves a DomainDispatcherApplication
    as `.app`: the object the emulator hands to the transport."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    werkzeug_server = getattr(server, "_server", None)
    assert werkzeug_server is not None, "ThreadedMotoServer no longer keeps its werkzeug server as _server"
    assert isinstance(getattr(werkzeug_server, "app", None), DomainDispatcherApplication), (
        "ThreadedMotoServer's werkzeug server no longer serves a DomainDispatcherApplication as .app; "
        "re-check where Emulator.start finds the application for InProcessTransport"
    )


def _clients(server: Any, service: str) -> tuple[Any, Any, list[Any]]:
    """Two clients for the same server: over HTTP, and through the transport (with the answers it gave)."""
    endpoint = _endpoint(server)
    options: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": "sagepipe-local",
        "aws_secret_access_key": "sagepipe-local",
        "config": Config(retries={"max_attempts": 1}),
    }
    over_http = boto3.client(service, **options)  # type: ignore[call-overload]
    in_process = boto3.client(service, **options)  # type: ignore[call-overload]
    transport = InProcessTransport(endpoint, served_application(server))
    transport.attach(in_process)
    answers: list[Any] = []
    in_process.meta.events.register("after-call", lambda http_response, **_: answers.append(http_response))
    return over_http, in_process, answers


def _comparable(response: dict[str, Any]) -> dict[str, Any]:
    metadata = response.get("ResponseMetadata", {})
    headers = {k: v for k, v in metadata.get("HTTPHeaders", {}).items() if k.lower() not in IGNORED_HEADERS}
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    if hasattr(body.get("Body"), "read"):
        body["Body"] = body["Body"].read()
    return {"status": metadata.get("HTTPStatusCode"), "headers": headers, "body": body}


def _error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return _comparable(dict(raised.value.response))


def test_s3_answers_in_process_as_over_http(server: Any) -> None:
    """Given S3 objects written through the transport and over HTTP, one with a metadata key spelled with an
    underscore and one with both spellings, when they are read, listed and HEADed through the transport and over
    HTTP, then both clients get the same status, headers and body; the underscore survives when it is alone, and
    the dashed spelling wins when both are sent (moto's request handler's rules); a missing key is the same 404."""
    over_http, in_process, answers = _clients(server, "s3")
    in_process.create_bucket(Bucket="in-process-contract")
    written = {"a b/alone.txt": {"my_key": "1"}, "a b/both.txt": {"my_key": "1", "my-key": "2"}}
    for key, metadata in written.items():
        for writer, suffix in ((in_process, ""), (over_http, ".http")):
            writer.put_object(Bucket="in-process-contract", Key=key + suffix, Body=b"bytes", Metadata=metadata)
    assert answers, "the transport never answered: the client went over HTTP"
    for key in (*written, *(key + ".http" for key in written)):
        for call, kwargs in (
            (over_http.get_object, {"Bucket": "in-process-contract", "Key": key}),
            (over_http.head_object, {"Bucket": "in-process-contract", "Key": key}),
        ):
            twin = getattr(in_process, call.__name__)
            assert _comparable(twin(**kwargs)) == _comparable(call(**kwargs)), (call.__name__, key)
    listing = {"Bucket": "in-process-contract", "Prefix": "a b/"}
    assert _comparable(in_process.list_objects_v2(**listing)) == _comparable(over_http.list_objects_v2(**listing))
    for suffix in ("", ".http"):
        alone = in_process.head_object(Bucket="in-process-contract", Key="a b/alone.txt" + suffix)
        assert alone["Metadata"] == {"my_key": "1"}
        assert alone["ContentLength"] == len(b"bytes")
        both = in_process.head_object(Bucket="in-process-contract", Key="a b/both.txt" + suffix)
        assert both["Metadata"] == {"my-key": "2"}
    missing = {"Bucket": "in-process-contract", "Key": "missing"}
    assert _error(in_process.get_object, **missing) == _error(over_http.get_object, **missing)


def test_dynamodb_and_sns_answer_in_process_as_over_http(server: Any) -> None:
    """Given a table and a topic, when a conditional write fails and items and topics are read through the
    transport and over HTTP, then both get the same answers and the same ConditionalCheckFailedException."""
    over_http, in_process, answers = _clients(server, "dynamodb")
    in_process.create_table(
        TableName="in-process-contract",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    in_process.put_item(TableName="in-process-contract", Item={"pk": {"S": "run"}, "status": {"S": "RUNNING"}})
    read = {"TableName": "in-process-contract", "Key": {"pk": {"S": "run"}}}
    assert _comparable(in_process.get_item(**read)) == _comparable(over_http.get_item(**read))
    conditional = {
        "TableName": "in-process-contract",
        "Item": {"pk": {"S": "run"}},
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    failed = _error(in_process.put_item, **conditional)
    assert failed == _error(over_http.put_item, **conditional)
    assert failed["body"]["Error"]["Code"] == "ConditionalCheckFailedException"
    assert answers, "the transport never answered: the client went over HTTP"

    over_http_sns, in_process_sns, _ = _clients(server, "sns")
    arn = in_process_sns.create_topic(Name="in-process-contract")["TopicArn"]
    assert _comparable(in_process_sns.get_topic_attributes(TopicArn=arn)) == _comparable(
        over_http_sns.get_topic_attributes(TopicArn=arn)
    )
    published = in_process_sns.publish(TopicArn=arn, Message=json.dumps({"status": "DUPLICATE"}))
    assert published["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_other_endpoints_are_sent_as_usual(server: Any) -> None:
    """Given the transport for one emulator, then a request for another endpoint is not answered (botocore sends
    it), and neither is one whose host merely starts with the emulator's."""
    transport = InProcessTransport(_endpoint(server), served_application(server))
    assert transport.serves(f"{_endpoint(server)}/bucket/key")
    assert transport.serves(_endpoint(server))
    assert not transport.serves(f"{_endpoint(server)}0/bucket")
    assert not transport.serves("https://s3.us-east-1.amazonaws.com/bucket")


def test_a_served_client_sends_the_user_agent_botocore_builds_and_builds_it_once(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a client the transport serves and a plain twin, when both list tables (once with a paginator, which
    adds its feature id to the call's User-Agent) and the served one is asked again, then each call of the served
    client carries the header the twin's carries for the same call, and botocore built each distinct header for
    it once."""
    # Given
    over_http, in_process, answers = _clients(server, "dynamodb")
    sent: dict[str, list[str]] = {"in_process": [], "over_http": []}
    for name, client in (("in_process", in_process), ("over_http", over_http)):
        client.meta.events.register_first(
            "before-send", lambda request, name=name, **_: sent[name].append(request.headers["User-Agent"])
        )
    built: list[str] = []
    build = UserAgentString.to_string

    def counted(self: UserAgentString) -> str:
        built.append(type(self).__name__)
        return build(self)

    monkeypatch.setattr(UserAgentString, "to_string", counted)

    # When
    for client in (in_process, over_http):
        client.list_tables()
        client.get_paginator("list_tables").paginate().build_full_result()
    in_process.list_tables()
    in_process.get_paginator("list_tables").paginate().build_full_result()

    # Then
    assert answers, "the transport never answered: the client went over HTTP"
    assert sent["in_process"][:2] == sent["over_http"]
    assert sent["in_process"][2:] == sent["over_http"]
    assert sent["in_process"][0] != sent["in_process"][1], "the paginator's feature id is in its call's header"
    twin_builds = 4  # botocore builds each call's header twice (the request dict, then request-created)
    assert len(built) == twin_builds + 2, "the served client built each of its two headers once"

"""The GitHub webhook: only signed pushes to the configured branch become one 'GitHub Push' event per delivery.

Runs the real handler (Powertools Logger, Metrics, Parameters and Idempotency included) against in-process moto:
the secret in Secrets Manager, the idempotency records in a runs table (pk/sk), and EventBridge's default bus
with a rule that copies every `sagepipe.github` event into an SQS queue, which the tests read.
"""

import base64
import copy
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from pydantic import ValidationError

from common.observability import logger as powertools_logger
from common.observability import metrics
from github_webhook import app, webhook
from github_webhook.models import Settings
from github_webhook.signature import SignatureCheck, sign, verify
from sagepipe.template import PROJECT_ROOT

SECRET = b"It's a Secret to Everybody"
REPOSITORY = "example-org/training-code"
TABLE = "sagepipe-runs-test"
SAMPLE = json.loads((PROJECT_ROOT / "events" / "github-push.json").read_text(encoding="utf-8"))
EXPECTED_EVENT = json.loads((PROJECT_ROOT / "events" / "github-push-event.json").read_text(encoding="utf-8"))
DELIVERY = SAMPLE["headers"]["X-GitHub-Delivery"]
ZERO = "0" * 40


# ----------------------------------------------------------------------------- helpers
@dataclass
class FakeContext:
    function_name: str = "sagepipe-github-webhook"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:sagepipe-github-webhook"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def body_of(payload: Any) -> bytes:
    """Serialise a payload once; these exact bytes are what is signed and sent."""
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def url_event(
    body: bytes,
    *,
    method: str = "POST",
    secret: bytes | None = SECRET,
    signature: str | None = None,
    headers: dict[str, str | None] | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """A Lambda Function URL event (payload format 2.0) for a GitHub delivery of `body`, signed with `secret`.

    `signature` replaces the computed X-Hub-Signature-256; a header set to None in `headers` is left out.
    """
    sent = {key.lower(): value for key, value in SAMPLE["headers"].items()}
    if secret is not None:
        sent["x-hub-signature-256"] = sign(secret, body)
    if signature is not None:
        sent["x-hub-signature-256"] = signature
    for name, value in (headers or {}).items():
        sent[name.lower()] = value
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {name: value for name, value in sent.items() if value is not None},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnopqrstuvwxyz0",
            "domainName": "abcdefghijklmnopqrstuvwxyz0.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz0",
            "http": {
                "method": method,
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "140.82.115.1",
                "userAgent": "GitHub-Hookshot/a1b2c3d",
            },
            "requestId": "5bd3c5b2-1b7c-4f3e-9f0b-2f1c5e8a9d01",
            "routeKey": "$default",
            "stage": "$default",
            "time": "24/Nov/2026:09:11:48 +0000",
            "timeEpoch": 1795511508000,
        },
        "body": base64.b64encode(body).decode("ascii") if base64_encoded else body.decode("utf-8"),
        "isBase64Encoded": base64_encoded,
    }


def push_payload(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(SAMPLE["body"])
    payload.update(changes)
    return payload


SAMPLE_BODY = body_of(SAMPLE["body"])


@dataclass(frozen=True)
class Clients:
    """The tests' own clients of the moto account (the handler makes its own, cold, in every test)."""

    secretsmanager: Any
    dynamodb: Any
    sqs: Any
    events: Any


@dataclass
class World:
    """The moto account the handler runs in, and what it observed."""

    clients: Clients
    secret_arn: str
    queue_url: str
    capsys: pytest.CaptureFixture[str]
    logs: list[dict[str, Any]] = field(default_factory=list)
    metric_names: list[str] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.logs.clear()
        response = app.lambda_handler(event, FakeContext())
        self.metric_names = _metric_names(self.capsys.readouterr().out)
        return response["statusCode"], json.loads(response["body"]), response["headers"]

    def events(self) -> list[dict[str, Any]]:
        """Every event the rule has delivered so far (read once: the queue is emptied)."""
        sqs = self.clients.sqs
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def idempotency_records(self) -> list[dict[str, Any]]:
        return self.clients.dynamodb.scan(TableName=TABLE)["Items"]

    def log_lines(self, level: str | None = None) -> list[dict[str, Any]]:
        return [line for line in self.logs if level is None or line["level"] == level]


def _metric_names(stdout: str) -> list[str]:
    names: list[str] = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        blob = json.loads(line)
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            names.extend(metric["Name"] for metric in directive["Metrics"])
    return names


class _JsonLines(logging.Handler):
    """Collects the Powertools logger's records, formatted by its own formatter (appended keys included)."""

    def __init__(self, sink: list[dict[str, Any]]) -> None:
        super().__init__()
        self.sink = sink
        self.setFormatter(powertools_logger.registered_formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(json.loads(self.format(record)))


def _clear_caches() -> None:
    """Settings, the idempotent publisher, the EventBridge client and the cached secret live per execution
    environment; each test starts a cold one. (A test may have replaced a cached function with a plain one.)"""
    for cached in (app.settings, webhook.publisher, webhook.events_client):
        clear = getattr(cached, "cache_clear", None)
        if clear is not None:
            clear()
    parameters.clear_caches()


@pytest.fixture(scope="module")
def clients() -> Clients:
    """Made once for the module: a client keeps no state of the account, which each test's mock_aws starts afresh
    (moto answers every client made after its import, through a handler it adds to botocore's)."""
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    return Clients(
        secretsmanager=session.client("secretsmanager"),
        dynamodb=session.client("dynamodb"),
        sqs=session.client("sqs"),
        events=session.client("events"),
    )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clients: Clients) -> Iterator[World]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CODE_REPOSITORY": REPOSITORY,
        "CODE_BRANCH": "main",
        "RUNS_TABLE_NAME": TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "AWS_PROFILE",
        "EVENT_BUS_NAME",
        "MAX_BODY_BYTES",
        "IDEMPOTENCY_SECONDS",
        "POWERTOOLS_IDEMPOTENCY_DISABLED",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(metrics, "namespace", "sagepipe")
    _clear_caches()
    with mock_aws():
        secret = clients.secretsmanager.create_secret(Name="sagepipe/github-webhook", SecretString=SECRET.decode())
        secret_arn = secret["ARN"]
        monkeypatch.setenv("WEBHOOK_SECRET_ARN", secret_arn)
        clients.dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = clients.sqs
        queue_url = sqs.create_queue(QueueName="github-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = clients.events
        events.put_rule(Name="every-github-event", EventPattern=json.dumps({"source": ["sagepipe.github"]}))
        events.put_targets(Rule="every-github-event", Targets=[{"Id": "queue", "Arn": queue_arn}])

        state = World(clients=clients, secret_arn=secret_arn, queue_url=queue_url, capsys=capsys)
        handler = _JsonLines(state.logs)
        logging.getLogger(powertools_logger.name).addHandler(handler)
        try:
            yield state
        finally:
            logging.getLogger(powertools_logger.name).removeHandler(handler)
            _clear_caches()


def _delete_secret(world: World) -> None:
    world.clients.secretsmanager.delete_secret(SecretId=world.secret_arn, ForceDeleteWithoutRecovery=True)


# ----------------------------------------------------------------------------- accepted pushes
def test_the_sample_delivery_publishes_exactly_the_sample_event(world: World) -> None:
    """Given the sample delivery (events/github-push.json) signed with the webhook secret, when it arrives,
    then the answer is 202 accepted with the event id, and exactly one event is on the bus: the one in
    events/github-push-event.json (its detail in full, delivery id included)."""
    status, body, headers = world.invoke(url_event(SAMPLE_BODY))

    assert status == 202
    assert headers["content-type"] == "application/json"
    published = world.events()
    assert len(published) == 1
    event = published[0]
    assert body == {"status": "accepted", "delivery": DELIVERY, "eventId": event["id"]}
    assert event["source"] == EXPECTED_EVENT["source"] == "sagepipe.github"
    assert event["detail-type"] == EXPECTED_EVENT["detail-type"] == "GitHub Push"
    assert event["detail"] == EXPECTED_EVENT["detail"]
    assert world.metric_names == ["WebhookAccepted"]
    [line] = world.log_lines()
    assert line["message"] == "push accepted: event published"
    assert line["delivery"] == DELIVERY
    assert line["github_event"] == "push"


def test_the_published_detail_is_what_the_trigger_normaliser_reads(world: World) -> None:
    """Given an accepted push, then its detail parses with the shared GitHubPushDetail model (emitter and reader
    share one model), with the head commit under the 'head-commit' alias."""
    from common.events import GitHubPushDetail

    world.invoke(url_event(SAMPLE_BODY))
    [event] = world.events()
    assert "head-commit" in event["detail"]
    detail = GitHubPushDetail.model_validate(event["detail"])
    assert detail.head_commit is not None
    assert detail.head_commit.author == "Mona Lisa <mona@example.com>"
    assert detail.pusher == "monalisa"


def test_a_redelivery_returns_the_first_response_and_publishes_nothing_more(world: World) -> None:
    """Given a delivery that was published, when GitHub redelivers it (same X-GitHub-Delivery), then the answer
    is the first one (same eventId) and there is still exactly one event."""
    first = world.invoke(url_event(SAMPLE_BODY))
    second = world.invoke(url_event(SAMPLE_BODY))

    assert second[0] == first[0] == 202
    assert second[1] == first[1]
    assert len(world.events()) == 1
    assert world.metric_names == ["WebhookRedelivered"]
    [line] = world.log_lines()
    assert "already published" in line["message"]


def test_the_same_body_under_a_new_delivery_id_is_a_new_event(world: World) -> None:
    """Given a delivery that was published, when the same signed body arrives with a NEW delivery id (the
    signature does not cover headers: GitHub sends a new id for a new push, a replayer can too), then a
    second event is published. The pipeline's claim on (commit, data version) starts no second run for it."""
    first = world.invoke(url_event(SAMPLE_BODY))
    other = "9d1e2f3a-4b5c-11f0-8a7b-0242ac120002"
    second = world.invoke(url_event(SAMPLE_BODY, headers={"X-GitHub-Delivery": other}))

    assert first[0] == second[0] == 202
    assert second[1]["eventId"] != first[1]["eventId"]
    published = world.events()
    assert sorted(event["detail"]["delivery"] for event in published) == sorted([DELIVERY, other])
    assert published[0]["detail"]["after"] == published[1]["detail"]["after"]


def test_the_delivery_is_remembered_under_a_stable_key_for_four_days(world: World) -> None:
    """Given an accepted push, then one idempotency record exists: pk 'idempotency#github-webhook', a sort key
    that does not depend on the function's name, status COMPLETED, and an expiry four days out."""
    before = int(time.time())
    world.invoke(url_event(SAMPLE_BODY))

    [record] = world.idempotency_records()
    assert record["pk"] == {"S": "idempotency#github-webhook"}
    assert record["sk"]["S"].startswith("github-delivery#")
    assert record["status"] == {"S": "COMPLETED"}
    expiry = int(record["expiration"]["N"])
    assert before + 4 * 24 * 3600 <= expiry <= int(time.time()) + 4 * 24 * 3600 + 1
    assert json.loads(record["data"]["S"])["eventId"] == world.events()[0]["id"]


def test_a_base64_encoded_body_verifies_on_its_decoded_bytes(world: World) -> None:
    """Given the Function URL passed the body base64-encoded, then the signature is checked on the decoded
    bytes and the push is published."""
    status, body, _ = world.invoke(url_event(SAMPLE_BODY, base64_encoded=True))
    assert (status, body["status"]) == (202, "accepted")
    assert world.events()[0]["detail"] == EXPECTED_EVENT["detail"]


def test_a_unicode_commit_message_verifies_and_is_carried_through(world: World) -> None:
    """Given a commit message with accents, CJK and an emoji, sent as raw UTF-8 (not \\u escapes) and signed
    over those bytes, then it verifies and the event carries the message unchanged."""
    message = "Régler max_depth — 学習率を調整 🚀\n\nCo-authored-by: Zoë <zoe@example.com>"
    payload = push_payload()
    payload["head_commit"] = {**payload["head_commit"], "message": message}
    payload["commits"] = [payload["head_commit"]]
    body = body_of(payload)
    assert "🚀".encode() in body

    status, _, _ = world.invoke(url_event(body))

    assert status == 202
    assert world.events()[0]["detail"]["head-commit"]["message"] == message


def test_a_huge_commit_message_is_truncated_to_fit_an_eventbridge_entry(world: World) -> None:
    """Given a 300 KB commit message (an EventBridge entry holds 256 KiB), then the event is still published,
    with the message cut to its first 4096 characters."""
    payload = push_payload()
    payload["head_commit"] = {**payload["head_commit"], "message": "x" * 300_000}
    payload["commits"] = []
    status, _, _ = world.invoke(url_event(body_of(payload)))
    assert status == 202
    assert world.events()[0]["detail"]["head-commit"]["message"] == "x" * webhook.MAX_COMMIT_MESSAGE_CHARS


def test_the_secret_is_cached_across_invocations(world: World) -> None:
    """Given one verified delivery, when the secret then disappears from Secrets Manager, then the next delivery
    still verifies: the secret is cached in the execution environment (max_age 300 s)."""
    world.invoke(url_event(SAMPLE_BODY))
    _delete_secret(world)
    status, _, _ = world.invoke(url_event(SAMPLE_BODY, headers={"X-GitHub-Delivery": "another-delivery-id"}))
    assert status == 202


# ----------------------------------------------------------------------------- ping and other events
def test_ping_is_answered_with_pong(world: World) -> None:
    """Given the ping GitHub sends when the webhook is created, then 200 pong with its zen and hook id; no event."""
    ping = {"zen": "Design for failure.", "hook_id": 512345678, "hook": {"type": "Repository", "events": ["push"]}}
    status, body, _ = world.invoke(url_event(body_of(ping), headers={"X-GitHub-Event": "ping"}))
    assert status == 200
    assert body == {"status": "pong", "zen": "Design for failure.", "hook_id": 512345678}
    assert world.events() == []
    assert world.metric_names == ["WebhookPing"]


@pytest.mark.parametrize("event_name", ["issues", "pull_request", "create", "workflow_run"])
def test_other_events_are_ignored(world: World, event_name: str) -> None:
    status, body, _ = world.invoke(url_event(SAMPLE_BODY, headers={"X-GitHub-Event": event_name}))
    assert status == 202
    assert body == {"status": "ignored", "reason": f"event {event_name!r} is not handled"}
    assert world.events() == []
    assert world.metric_names == ["WebhookIgnored"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ref": "refs/heads/feature/experiment"}, "branch 'feature/experiment' is not 'main'"),
        ({"ref": "refs/tags/v1.0.0"}, "ref 'refs/tags/v1.0.0' is a tag, not a branch"),
        ({"ref": "refs/notes/commits"}, "ref 'refs/notes/commits' is not a branch"),
        ({"deleted": True, "after": ZERO, "head_commit": None, "commits": []}, "branch 'main' was deleted"),
        ({"deleted": False, "after": ZERO, "head_commit": None, "commits": []}, "branch 'main' was deleted"),
        ({"deleted": True}, "branch 'main' was deleted"),
        (
            {"repository": {"full_name": "example-org/other-code"}},
            "repository 'example-org/other-code' is not 'example-org/training-code'",
        ),
        (
            {"repository": {"full_name": "Example-Org/training-code"}},
            "repository 'Example-Org/training-code' is not 'example-org/training-code'",
        ),
    ],
    ids=["other-branch", "tag", "other-ref", "deleted", "zero-sha", "deleted-flag-only", "other-repo", "case"],
)
def test_pushes_that_start_nothing_are_ignored_with_a_logged_reason(
    world: World, changes: dict[str, Any], reason: str
) -> None:
    """Given a verified push that is not to the configured branch of the configured repository, then 202
    ignored with the reason, one info log line carrying the reason and the delivery id, and no event."""
    status, body, _ = world.invoke(url_event(body_of(push_payload(**changes))))

    assert status == 202
    assert body == {"status": "ignored", "reason": reason}
    assert world.events() == []
    assert world.idempotency_records() == []
    [line] = world.log_lines()
    assert (line["level"], line["message"], line["reason"]) == ("INFO", "webhook delivery ignored", reason)
    assert line["delivery"] == DELIVERY
    assert world.metric_names == ["WebhookIgnored"]


# ----------------------------------------------------------------------------- rejections
def _assert_rejected(world: World, status: int, body: dict[str, Any], expected: int, metric: str) -> None:
    assert status == expected
    assert body["status"] == "rejected"
    assert world.events() == []
    assert world.idempotency_records() == []
    assert world.metric_names == [metric]
    [line] = world.log_lines()
    assert line["level"] == "WARNING"
    assert line["message"] == "webhook delivery rejected"
    assert line["status_code"] == expected


VALID = sign(SECRET, SAMPLE_BODY)


@pytest.mark.parametrize(
    ("signature", "logged"),
    [
        (None, "signature missing"),
        ("", "signature malformed"),
        ("sha1=" + "0" * 40, "signature malformed"),
        ("sha256=" + VALID.removeprefix("sha256=")[:63], "signature malformed"),
        ("sha256=" + VALID.removeprefix("sha256=").upper(), "signature malformed"),
        ("SHA256=" + VALID.removeprefix("sha256="), "signature malformed"),
        (VALID + "\n", "signature malformed"),
        (" " + VALID, "signature malformed"),
        (sign(b"not the webhook secret", SAMPLE_BODY), "signature mismatch"),
        (sign(SECRET, SAMPLE_BODY + b" "), "signature mismatch"),
        (sign(SECRET, body_of(push_payload(ref="refs/heads/other"))), "signature mismatch"),
    ],
    ids=[
        "missing",
        "empty",
        "sha1",
        "63-hex",
        "uppercase-hex",
        "uppercase-prefix",
        "trailing-newline",
        "leading-space",
        "other-secret",
        "other-bytes",
        "other-body",
    ],
)
def test_a_delivery_without_a_valid_signature_is_refused(world: World, signature: str | None, logged: str) -> None:
    """Given the sample body with a missing, malformed or wrong X-Hub-Signature-256, then 401 'invalid signature'
    (whichever it was), no event and no idempotency record; the log line says which it was."""
    event = url_event(SAMPLE_BODY, secret=None, headers={"X-Hub-Signature-256": signature})

    status, body, _ = world.invoke(event)

    _assert_rejected(world, status, body, 401, "WebhookUnauthorized")
    assert body == {"status": "rejected", "reason": "invalid signature"}
    assert world.log_lines()[0]["reason"] == logged


@pytest.mark.parametrize("signature", [None, "sha1=" + "0" * 40])
def test_a_missing_or_malformed_signature_is_refused_without_fetching_the_secret(
    world: World, signature: str | None
) -> None:
    """Given no secret in Secrets Manager at all, when a request has no usable signature header, then it is
    still a clean 401: the secret is only fetched for a header that could be a signature."""
    _delete_secret(world)
    status, body, _ = world.invoke(url_event(SAMPLE_BODY, secret=None, headers={"X-Hub-Signature-256": signature}))
    _assert_rejected(world, status, body, 401, "WebhookUnauthorized")


@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD"])
def test_only_post_is_allowed(world: World, method: str) -> None:
    """Given a request that is not a POST (a browser, a scanner), then 405 with 'allow: POST', before anything else."""
    _delete_secret(world)
    status, body, headers = world.invoke(url_event(SAMPLE_BODY, method=method))
    _assert_rejected(world, status, body, 405, "WebhookMethodNotAllowed")
    assert headers["allow"] == "POST"


def test_an_oversized_body_is_refused_before_the_secret_is_fetched(world: World) -> None:
    """Given a validly signed body one byte over MAX_BODY_BYTES, and no secret in Secrets Manager, then 413:
    the size is checked before the secret is fetched and before the HMAC is computed."""
    _delete_secret(world)
    limit = 1024 * 1024
    body = b'{"padding": "' + b"x" * (limit - 14) + b'"}'
    assert len(body) == limit + 1

    status, response, _ = world.invoke(url_event(body))

    _assert_rejected(world, status, response, 413, "WebhookPayloadTooLarge")
    assert response == {"status": "rejected", "reason": "payload too large"}


@pytest.mark.parametrize(("slack", "expected"), [(0, 202), (-1, 413)])
def test_the_size_limit_applies_to_the_decoded_body(
    world: World, monkeypatch: pytest.MonkeyPatch, slack: int, expected: int
) -> None:
    """Given MAX_BODY_BYTES equal to the sample body's size, then its base64 form (a third longer) is accepted,
    and one byte less refuses it: the limit counts the bytes GitHub sent, not their encoding."""
    monkeypatch.setenv("MAX_BODY_BYTES", str(len(SAMPLE_BODY) + slack))
    status, _, _ = world.invoke(url_event(SAMPLE_BODY, base64_encoded=True))
    assert status == expected


def test_a_form_encoded_delivery_is_refused_with_how_to_fix_it(world: World) -> None:
    """Given a webhook set to 'application/x-www-form-urlencoded' (GitHub then sends payload=<json>), then 415
    with a reason telling the user to set the content type to application/json."""
    body = ("payload=" + urllib.parse.quote_plus(SAMPLE_BODY.decode())).encode()
    event = url_event(body, headers={"Content-Type": "application/x-www-form-urlencoded"})

    status, response, _ = world.invoke(event)

    _assert_rejected(world, status, response, 415, "WebhookUnsupportedMediaType")
    assert "set the webhook's Content type to application/json" in response["reason"]


def test_a_json_content_type_with_a_charset_is_accepted(world: World) -> None:
    status, _, _ = world.invoke(url_event(SAMPLE_BODY, headers={"Content-Type": "application/json; charset=utf-8"}))
    assert status == 202


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-GitHub-Event": None}, "missing or malformed X-GitHub-Event header"),
        ({"X-GitHub-Event": ""}, "missing or malformed X-GitHub-Event header"),
        ({"X-GitHub-Event": "push; rm -rf /"}, "missing or malformed X-GitHub-Event header"),
        ({"X-GitHub-Delivery": None}, "missing or malformed X-GitHub-Delivery header"),
        ({"X-GitHub-Delivery": "x" * 101}, "missing or malformed X-GitHub-Delivery header"),
        ({"X-GitHub-Delivery": "../../etc/passwd"}, "missing or malformed X-GitHub-Delivery header"),
    ],
    ids=["no-event", "empty-event", "odd-event", "no-delivery", "long-delivery", "odd-delivery"],
)
def test_github_headers_are_required(world: World, headers: dict[str, str | None], reason: str) -> None:
    status, body, _ = world.invoke(url_event(SAMPLE_BODY, headers=headers))
    _assert_rejected(world, status, body, 400, "WebhookBadRequest")
    assert body["reason"] == reason


@pytest.mark.parametrize(
    ("body", "logged"),
    [
        (b'{"ref": "refs/heads/main",', "malformed JSON"),
        (b"\xff\xfe not utf-8", "malformed JSON"),
        (b"", "malformed JSON"),
        (b'["refs/heads/main"]', "the body is not a JSON object"),
    ],
    ids=["truncated", "not-utf8", "empty", "array"],
)
def test_a_signed_body_that_is_not_a_json_object_is_a_bad_request(world: World, body: bytes, logged: str) -> None:
    """Given a body that is validly signed but not a JSON object, then 400 'malformed JSON'."""
    event = url_event(body, base64_encoded=True)
    status, response, _ = world.invoke(event)
    _assert_rejected(world, status, response, 400, "WebhookBadRequest")
    assert response["reason"] == "malformed JSON"
    assert world.log_lines()[0]["reason"] == logged


@pytest.mark.parametrize(
    ("remove", "field_name"),
    [("after", "after"), ("ref", "ref"), ("repository", "repository"), ("pusher", "pusher"), ("deleted", "deleted")],
)
def test_a_push_missing_a_required_field_is_a_bad_request(world: World, remove: str, field_name: str) -> None:
    payload = push_payload()
    del payload[remove]
    status, body, _ = world.invoke(url_event(body_of(payload)))
    _assert_rejected(world, status, body, 400, "WebhookBadRequest")
    assert body["reason"] == f"malformed push payload: {field_name}: Field required"


def test_a_push_with_an_abbreviated_commit_is_a_bad_request(world: World) -> None:
    status, body, _ = world.invoke(url_event(body_of(push_payload(after="3e5b0c1"))))
    _assert_rejected(world, status, body, 400, "WebhookBadRequest")
    assert body["reason"].startswith("malformed push payload: after: String should match pattern")


# ----------------------------------------------------------------------------- failures and idempotency
class _FailingOnce:
    """An EventBridge client whose first put_events reports FailedEntryCount 1; later calls go to moto."""

    def __init__(self) -> None:
        self.real = boto3.client("events")
        self.calls = 0

    def put_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            return {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "arn:aws:events:secret-internals"}],
            }
        return dict(self.real.put_events(**kwargs))


def test_a_failed_publish_is_a_500_that_is_not_remembered(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given EventBridge refuses the entry (FailedEntryCount 1), then 500 {"status": "error"} revealing nothing,
    and Powertools deletes the in-progress record; when GitHub redelivers it (same delivery id), then it is
    published: the failure was not cached."""
    failing = _FailingOnce()
    monkeypatch.setattr(webhook, "events_client", lambda: failing)

    status, body, _ = world.invoke(url_event(SAMPLE_BODY))

    assert (status, body) == (500, {"status": "error"})
    assert world.events() == []
    assert world.idempotency_records() == []
    assert world.metric_names == ["WebhookFailed"]
    [line] = world.log_lines("ERROR")
    assert line["message"] == "webhook delivery failed"
    assert "InternalFailure" in line["exception"]

    status, body, _ = world.invoke(url_event(SAMPLE_BODY))

    assert status == 202
    [event] = world.events()
    assert body == {"status": "accepted", "delivery": DELIVERY, "eventId": event["id"]}
    assert failing.calls == 2
    assert world.metric_names == ["WebhookAccepted"]


def test_an_unknown_event_bus_is_a_500_and_nothing_is_remembered(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given EVENT_BUS_NAME names a bus that does not exist, then PutEvents raises, the answer is a bare 500,
    and no idempotency record is left behind."""
    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")
    status, body, _ = world.invoke(url_event(SAMPLE_BODY))
    assert (status, body) == (500, {"status": "error"})
    assert world.idempotency_records() == []
    assert "no-such-bus" not in json.dumps(body)


def test_a_duplicate_arriving_while_the_first_is_publishing_is_a_409(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a delivery whose publish is still running, when the same delivery id arrives meanwhile, then the
    second is told 409 (in progress) and publishes nothing; the first completes with one event. The in-progress
    record expires when the first invocation would time out, not four days later."""
    real_put = webhook.put_push_event
    inner: list[tuple[int, dict[str, Any], dict[str, str]]] = []

    in_progress: list[dict[str, Any]] = []

    def put_while_a_duplicate_arrives(detail: Any, event_bus_name: str) -> str:
        if not inner:
            in_progress.extend(world.idempotency_records())
            inner.append(world.invoke(url_event(SAMPLE_BODY)))
        return real_put(detail, event_bus_name)

    monkeypatch.setattr(webhook, "put_push_event", put_while_a_duplicate_arrives)
    status, _, _ = world.invoke(url_event(SAMPLE_BODY))

    # The in-progress record expires with the invocation (the Lambda context was registered), so a timed-out
    # publish does not block redeliveries for the whole idempotency period.
    [record] = in_progress
    assert record["status"] == {"S": "INPROGRESS"}
    remaining_ms = FakeContext().get_remaining_time_in_millis()
    assert 0 < int(record["in_progress_expiration"]["N"]) - time.time() * 1000 <= remaining_ms
    assert inner[0][0] == 409
    assert inner[0][1]["status"] == "in progress"
    assert status == 202
    assert len(world.events()) == 1


def test_log_keys_do_not_leak_into_the_next_invocation(world: World) -> None:
    """Given a warm execution environment, when a delivery is followed by a request without GitHub headers,
    then the second log line carries no delivery id from the first."""
    world.invoke(url_event(SAMPLE_BODY))
    world.invoke(url_event(SAMPLE_BODY, method="GET", headers={"X-GitHub-Delivery": None, "X-GitHub-Event": None}))
    [line] = world.log_lines()
    assert "delivery" not in line
    assert "github_event" not in line


def test_the_event_and_the_logs_never_contain_the_secret_or_the_signature(world: World) -> None:
    world.invoke(url_event(SAMPLE_BODY))
    world.invoke(url_event(SAMPLE_BODY, signature=sign(b"wrong", SAMPLE_BODY)))
    text = json.dumps(world.events()) + json.dumps(world.logs)
    assert SECRET.decode() not in text
    assert VALID not in text


# ----------------------------------------------------------------------------- signature.verify
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (sign(SECRET, b"{}"), SignatureCheck.OK),
        (None, SignatureCheck.MISSING),
        ("", SignatureCheck.MALFORMED),
        ("sha256=", SignatureCheck.MALFORMED),
        ("sha1=" + "a" * 40, SignatureCheck.MALFORMED),
        ("sha256=" + "a" * 63, SignatureCheck.MALFORMED),
        ("sha256=" + "a" * 65, SignatureCheck.MALFORMED),
        ("sha256=" + "A" * 64, SignatureCheck.MALFORMED),
        ("sha256=" + "g" * 64, SignatureCheck.MALFORMED),
        ("sha256=" + "٣" * 64, SignatureCheck.MALFORMED),  # Arabic-Indic digits are \d, not hex
        ("sha256=" + "a" * 64, SignatureCheck.MISMATCH),
        (sign(b"other secret", b"{}"), SignatureCheck.MISMATCH),
        (sign(SECRET, b"{} "), SignatureCheck.MISMATCH),
    ],
)
def test_verify_outcomes(header: str | None, expected: SignatureCheck) -> None:
    assert verify(SECRET, b"{}", header) is expected


def test_verify_matches_githubs_documented_example() -> None:
    """GitHub's docs: secret "It's a Secret to Everybody", payload "Hello, World!" gives this signature."""
    documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(SECRET, b"Hello, World!") == documented
    assert verify(SECRET, b"Hello, World!", documented) is SignatureCheck.OK


def test_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison is hmac.compare_digest, called with the expected and the received signature."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    header = sign(SECRET, b"{}")
    assert verify(SECRET, b"{}", header) is SignatureCheck.OK
    assert verify(SECRET, b"[]", header) is SignatureCheck.MISMATCH
    assert calls == [(header.encode(), header.encode()), (sign(SECRET, b"[]").encode(), header.encode())]


def test_verify_refuses_an_empty_secret() -> None:
    """An empty key would make every signature computable by anyone: a configuration error, not a verification."""
    with pytest.raises(ValueError, match="secret is empty"):
        verify(b"", b"{}", sign(b"", b"{}"))


# ----------------------------------------------------------------------------- settings
def test_settings_defaults_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the required variables only, then the bus is 'default', bodies up to 1 MiB, deliveries remembered
    four days; a memory shorter than GitHub's three-day redelivery window is refused."""
    for name, value in {
        "WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:sagepipe/github-webhook-AbCdEf",
        "CODE_REPOSITORY": REPOSITORY,
        "CODE_BRANCH": "main",
        "RUNS_TABLE_NAME": TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("EVENT_BUS_NAME", "MAX_BODY_BYTES", "IDEMPOTENCY_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()  # type: ignore[call-arg]
    assert (settings.event_bus_name, settings.max_body_bytes, settings.idempotency_seconds) == (
        "default",
        1048576,
        345600,
    )
    monkeypatch.setenv("IDEMPOTENCY_SECONDS", "3600")
    with pytest.raises(ValidationError, match="idempotency_seconds"):
        Settings()  # type: ignore[call-arg]

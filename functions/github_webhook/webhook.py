"""A GitHub delivery in, one decision out: reject it, answer a ping, ignore it, or publish one 'GitHub Push' event.

The Function URL has no AWS authentication (GitHub cannot sign requests with SigV4): the HMAC signature is the
authentication, and nothing in a delivery is trusted or acted on before it has been verified. The checks run
cheapest first, so a request that fails one costs nothing more:

1. method POST (405)            4. Content-Type application/json (415)
2. body size (413)              5. X-GitHub-Event and X-GitHub-Delivery present, body a JSON object (400)
3. signature (401)              6. ping (200), other events (202 ignored), push filters (202 ignored)

An accepted push is published at most once per delivery id: Powertools Idempotency records the delivery in the
runs table, so a redelivery from GitHub's UI returns the first response and puts no second event. A failed
publish raises inside the idempotent function, which deletes the record, so the redelivery publishes.

Every request ends in exactly one log line and one metric (see `Outcome.metric`).
"""

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from common.events import GITHUB_PUSH, GITHUB_SOURCE, ZERO_COMMIT, GitHubCommit, GitHubPushDetail
from common.observability import MetricUnit, logger, metrics, tracer
from github_webhook import signature
from github_webhook.models import PingPayload, PushPayload, Settings

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

SECRET_MAX_AGE_SECONDS = 300
"""How long the webhook secret is cached in the execution environment. A rotated secret takes this long to apply."""

IDEMPOTENCY_PK = "idempotency#github-webhook"
IDEMPOTENCY_KEY_PREFIX = "github-delivery"
"""Sort keys are `github-delivery#<md5 of the delivery id>`: stable across function renames and refactors."""

MAX_COMMIT_MESSAGE_CHARS = 4096
"""An EventBridge entry is at most 256 KiB; a commit message can be far longer. The pipeline keeps one line."""

_DELIVERY = re.compile(r"[A-Za-z0-9-]{1,100}", re.ASCII)
_EVENT_NAME = re.compile(r"[a-z_]{1,64}", re.ASCII)
_LOGGED_HEADER_CHARS = 100


# ----------------------------------------------------------------------------- request and outcome
@dataclass(frozen=True)
class Request:
    """The parts of a Function URL request the webhook reads. `headers` must answer lower-case names."""

    method: str
    headers: Mapping[str, str]
    body: str | None
    is_base64_encoded: bool = False


@dataclass(frozen=True)
class Outcome:
    """What to answer, and how to account for it.

    `metric` is one of: WebhookMethodNotAllowed, WebhookPayloadTooLarge, WebhookUnauthorized,
    WebhookUnsupportedMediaType, WebhookBadRequest (the rejections), WebhookPing, WebhookIgnored,
    WebhookAccepted, WebhookRedelivered, WebhookInProgress, WebhookFailed.
    """

    status_code: int
    body: dict[str, Any]
    metric: str
    log: str
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class PublishError(Exception):
    """EventBridge did not accept the event. Raised so the delivery fails and the user can redeliver it."""


def _rejected(status_code: int, metric: str, message: str, reason: str | None = None) -> Outcome:
    # `message` is what the caller sees; `reason` (logged only) may say more, e.g. which signature check failed.
    return Outcome(
        status_code=status_code,
        body={"status": "rejected", "reason": message},
        metric=metric,
        log="webhook delivery rejected",
        reason=reason or message,
    )


def _ignored(reason: str) -> Outcome:
    return Outcome(
        status_code=202,
        body={"status": "ignored", "reason": reason},
        metric="WebhookIgnored",
        log="webhook delivery ignored",
        reason=reason,
    )


def _first_error(error: ValidationError) -> str:
    item = error.errors()[0]
    where = ".".join(str(part) for part in item["loc"]) or "body"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {item['msg']}{more}"


# ----------------------------------------------------------------------------- AWS
@tracer.capture_method(capture_response=False)  # the response is the secret: it must never reach X-Ray
def fetch_secret(secret_arn: str) -> bytes:
    """The webhook secret, cached for SECRET_MAX_AGE_SECONDS across invocations by Powertools Parameters."""
    return parameters.get_secret(secret_arn, max_age=SECRET_MAX_AGE_SECONDS).encode("utf-8")


@cache
def events_client() -> "EventBridgeClient":
    return boto3.client("events")


@tracer.capture_method
def put_push_event(detail: GitHubPushDetail, event_bus_name: str) -> str:
    """Put the 'GitHub Push' event; return its EventBridge id. Raises PublishError if the entry failed."""
    response = events_client().put_events(
        Entries=[
            {
                "Source": GITHUB_SOURCE,
                "DetailType": GITHUB_PUSH,
                "Detail": detail.model_dump_json(by_alias=True),
                "EventBusName": event_bus_name,
            }
        ]
    )
    entry = response["Entries"][0] if response.get("Entries") else {}
    if response.get("FailedEntryCount", 0) or "EventId" not in entry:
        raise PublishError(f"EventBridge refused the event: {entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
    return entry["EventId"]


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    # Called by Powertools only when it returns a stored response instead of running the function.
    return {**response, "replayed": True} if isinstance(response, dict) else response


@dataclass(frozen=True)
class Publisher:
    """The idempotent publish step. `config` is given each invocation's Lambda context before `publish` runs."""

    config: IdempotencyConfig
    publish: Callable[..., dict[str, Any]]


@cache
def publisher(settings: Settings) -> Publisher:
    """Built on first use, not at import: the table, expiry and AWS clients come from the settings."""
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.runs_table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=IDEMPOTENCY_PK,
        expiry_attr="expiration",
    )
    config = IdempotencyConfig(
        event_key_jmespath="delivery",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=settings.idempotency_seconds,
        response_hook=_mark_replayed,
    )

    def publish(*, detail: GitHubPushDetail) -> dict[str, Any]:
        return {"eventId": put_push_event(detail, settings.event_bus_name)}

    idempotent = idempotent_function(
        data_keyword_argument="detail",
        persistence_store=persistence,
        config=config,
        key_prefix=IDEMPOTENCY_KEY_PREFIX,
    )(publish)
    return Publisher(config=config, publish=idempotent)


# ----------------------------------------------------------------------------- the checks
def raw_body(request: Request) -> bytes:
    """The bytes GitHub signed. Raises ValueError (binascii.Error) if the Function URL's base64 is not base64."""
    if request.body is None:
        return b""
    if request.is_base64_encoded:
        return base64.b64decode(request.body, validate=True)
    return request.body.encode("utf-8")


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def push_detail(push: PushPayload, delivery: str) -> GitHubPushDetail:
    """The 'GitHub Push' event detail for an accepted push (the model functions/normalise_trigger reads)."""
    head = push.head_commit
    head_commit = (
        GitHubCommit(
            id=head.id,
            message=head.message[:MAX_COMMIT_MESSAGE_CHARS],
            timestamp=head.timestamp,
            url=head.url,
            author=head.author.as_author() if head.author else None,
        )
        if head
        else None
    )
    # Validated from a mapping: the field's alias ('head-commit') is not a Python keyword argument.
    return GitHubPushDetail.model_validate(
        {
            "delivery": delivery,
            "repository": push.repository.full_name,
            "ref": push.ref,
            "before": push.before,
            "after": push.after,
            "deleted": False,
            "head_commit": head_commit,
            "pusher": push.pusher.name,
        }
    )


def ignore_reason(push: PushPayload, settings: Settings) -> str | None:
    """Why this push starts nothing, or None when it is a push to the configured branch of the repository."""
    if push.repository.full_name != settings.code_repository:
        return f"repository {push.repository.full_name!r} is not {settings.code_repository!r}"
    if push.ref.startswith("refs/tags/"):
        return f"ref {push.ref!r} is a tag, not a branch"
    if not push.ref.startswith("refs/heads/"):
        return f"ref {push.ref!r} is not a branch"
    branch = push.ref.removeprefix("refs/heads/")
    if push.deleted or push.after == ZERO_COMMIT:
        return f"branch {branch!r} was deleted"
    if branch != settings.code_branch:
        return f"branch {branch!r} is not {settings.code_branch!r}"
    return None


def _push(payload: dict[str, Any], delivery: str, settings: Settings, context: LambdaContext) -> Outcome:
    try:
        push = PushPayload.model_validate(payload)
    except ValidationError as error:
        return _rejected(400, "WebhookBadRequest", f"malformed push payload: {_first_error(error)}")
    reason = ignore_reason(push, settings)
    if reason is not None:
        return _ignored(reason)

    published = publisher(settings)
    published.config.register_lambda_context(context)  # in-progress records then expire with this invocation
    try:
        result = published.publish(detail=push_detail(push, delivery))
    except IdempotencyAlreadyInProgressError:
        return Outcome(
            status_code=409,
            body={"status": "in progress", "reason": "this delivery is being processed; redeliver it later"},
            metric="WebhookInProgress",
            log="webhook delivery already in progress",
            reason="another invocation holds this delivery's idempotency record",
        )
    body = {"status": "accepted", "delivery": delivery, "eventId": result["eventId"]}
    if result.get("replayed"):
        return Outcome(
            status_code=202,
            body=body,
            metric="WebhookRedelivered",
            log="webhook redelivery: the event was already published, returning the first response",
        )
    return Outcome(status_code=202, body=body, metric="WebhookAccepted", log="push accepted: event published")


def _authenticate(request: Request, settings: Settings) -> Outcome | bytes:
    """Steps 1-3, cheapest first: the verified raw body, or the rejection."""
    if request.method.upper() != "POST":
        outcome = _rejected(405, "WebhookMethodNotAllowed", "method not allowed", f"method {request.method!r}")
        return replace(outcome, headers={"allow": "POST"})
    try:
        body = raw_body(request)
    except ValueError:  # binascii.Error, or non-ASCII characters in the base64 text
        return _rejected(400, "WebhookBadRequest", "malformed body", "the base64 body does not decode")
    if len(body) > settings.max_body_bytes:
        reason = f"{len(body)} bytes > MAX_BODY_BYTES {settings.max_body_bytes}"
        return _rejected(413, "WebhookPayloadTooLarge", "payload too large", reason)

    header = request.headers.get("x-hub-signature-256")
    # A missing or malformed header is refused before the secret is fetched.
    check = signature.check_header(header)
    if check is None:
        check = signature.verify(fetch_secret(settings.webhook_secret_arn), body, header)
    if check is not signature.SignatureCheck.OK:
        return _rejected(401, "WebhookUnauthorized", "invalid signature", f"signature {check.value}")
    return body


@dataclass(frozen=True)
class _Delivery:
    event_name: str
    delivery: str
    payload: dict[str, Any]


def _read(request: Request, body: bytes) -> Outcome | _Delivery:
    """Steps 4-5, on a verified body: the event name, delivery id and JSON payload, or the rejection."""
    content_type = _media_type(request.headers.get("content-type"))
    if content_type != "application/json":
        return _rejected(
            415,
            "WebhookUnsupportedMediaType",
            f"content type {content_type or 'missing'!r} is not supported: "
            "set the webhook's Content type to application/json in GitHub",
        )
    event_name, delivery = request.headers.get("x-github-event"), request.headers.get("x-github-delivery")
    if not event_name or not _EVENT_NAME.fullmatch(event_name):
        return _rejected(400, "WebhookBadRequest", "missing or malformed X-GitHub-Event header")
    if not delivery or not _DELIVERY.fullmatch(delivery):
        return _rejected(400, "WebhookBadRequest", "missing or malformed X-GitHub-Delivery header")
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _rejected(400, "WebhookBadRequest", "malformed JSON")
    if not isinstance(payload, dict):
        return _rejected(400, "WebhookBadRequest", "malformed JSON", "the body is not a JSON object")
    return _Delivery(event_name=event_name, delivery=delivery, payload=payload)


def _ping(payload: dict[str, Any]) -> Outcome:
    try:
        ping = PingPayload.model_validate(payload)
    except ValidationError as error:
        return _rejected(400, "WebhookBadRequest", f"malformed ping payload: {_first_error(error)}")
    return Outcome(
        status_code=200,
        body={"status": "pong", "zen": ping.zen, "hook_id": ping.hook_id},
        metric="WebhookPing",
        log="webhook ping",
    )


def _decide(request: Request, settings: Settings, context: LambdaContext) -> Outcome:
    body = _authenticate(request, settings)
    if isinstance(body, Outcome):
        return body
    read = _read(request, body)
    if isinstance(read, Outcome):
        return read
    if read.event_name == "ping":
        return _ping(read.payload)
    if read.event_name != "push":
        return _ignored(f"event {read.event_name!r} is not handled")
    return _push(read.payload, read.delivery, settings, context)


def _clip(value: str | None) -> str | None:
    # Headers are logged before they are validated: bound what a caller can write into the logs.
    return value[:_LOGGED_HEADER_CHARS] if value is not None else None


def handle(request: Request, settings: Settings, context: LambdaContext) -> Outcome:
    """Decide, then log one line and add one metric. Unexpected errors become a 500 that reveals nothing."""
    logger.append_keys(
        delivery=_clip(request.headers.get("x-github-delivery")),
        github_event=_clip(request.headers.get("x-github-event")),
    )
    try:
        outcome = _decide(request, settings, context)
    except Exception:
        # Includes a failed publish (PublishError): GitHub shows a failed delivery and the user can redeliver it.
        outcome = Outcome(
            status_code=500, body={"status": "error"}, metric="WebhookFailed", log="webhook delivery failed"
        )
        logger.exception(outcome.log)
    else:
        extra = {"status_code": outcome.status_code, "reason": outcome.reason}
        if outcome.status_code >= 400:
            logger.warning(outcome.log, extra=extra)
        else:
            logger.info(outcome.log, extra=extra)
    metrics.add_metric(name=outcome.metric, unit=MetricUnit.Count, value=1)
    return outcome

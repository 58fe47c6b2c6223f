"""Replaying a sample event (events/*.json) on the local stack.

A sample names things that exist only in its example account: a bucket, an object version, a commit. Unless
asked to send it as is, replay adapts it to the local stack and says what it changed:

* account, region and resource names become the local stack's (a branch becomes the stack's branch; a tag
  stays a tag);
* a commit that is not in the local repository becomes HEAD;
* an S3 object is created locally first (the default dataset, or the sample's size of it), with the bucket's
  EventBridge notifications paused, so that the replayed event, not the upload, starts the run;
* the other half of a run is seeded through the real event path (a data upload for a code push, a code push
  for a data upload), so the replayed event runs the pipeline instead of ending SKIPPED.

Before anything is seeded or sent, the event is matched against the rules that start the pipeline, with moto's
matcher (sagepipe.local.eventbridge.patterns). An event that no rule would match is not sent: `NoRuleMatches`
lists each rule and the first field where the event does not match it.

A GitHub webhook delivery (`{"headers": ..., "body": ...}`, like events/github-push.json) is not an EventBridge
event: it is signed with the local stack's webhook secret and delivered to the webhook function as the
Function URL request GitHub would make, and the function puts the event. The body may be the JSON object or
the raw JSON text GitHub sent (as its "Recent Deliveries" page shows it), and the headers an object or the
page's header lines (`Name: value`); the GitHub REST API's delivery (`{"request": {"headers", "payload"}}`)
replays too.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import importlib.util
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_plus

from sagepipe import template
from sagepipe.local.core.emulator import ACCOUNT_ID, REGION
from sagepipe.local.eventbridge import patterns
from sagepipe.local.git import commit_exists, git
from sagepipe.local.runner import RunError, Trigger, now
from sagepipe.local.s3.events import encode_key
from sagepipe.local.sample_data import write_breast_cancer_csv

if TYPE_CHECKING:
    from sagepipe.local.runner import LocalPipeline

SEED_TIMEOUT_SECONDS = 120.0
ZERO_COMMIT: Final = "0" * 40
"""A push's `after` when it deleted the branch (GitHub's push payload)."""
NOT_FORWARDED: Final = frozenset({"content-length", "host", "x-hub-signature", "x-hub-signature-256"})
"""Headers of a recorded delivery that are not replayed: the length and host are the new request's, and the
signatures were made with GitHub's copy of another secret (the replay signs with the local one)."""


class ReplayInputError(RunError):
    """The file given to replay is not an event or a delivery replay can send (bad input)."""


class NoRuleMatches(RunError):
    """No rule that starts the pipeline would match the event: nothing was seeded or sent."""

    def __init__(self, summary: str, verdicts: list[RuleVerdict], notes: list[str]) -> None:
        super().__init__(summary)
        self.summary = summary
        self.verdicts = verdicts
        self.notes = notes

    def lines(self) -> list[str]:
        starting = [verdict for verdict in self.verdicts if verdict.starts_run]
        width = max((len(verdict.rule) for verdict in starting), default=0)
        lines = [self.summary]
        lines += [f"  {verdict.rule:<{width}}  {verdict.explanation}" for verdict in starting]
        logged = [verdict.rule for verdict in self.verdicts if not verdict.starts_run and verdict.matched]
        if logged:
            lines.append(f"  (it would only be logged, by {', '.join(logged)})")
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "matched": False,
            "summary": self.summary,
            "rules": [verdict.as_json() for verdict in self.verdicts],
            "notes": self.notes,
        }


class NothingToRun(RunError):
    """The delivery was accepted by the webhook but starts no run (it ignored it: a tag, another branch...)."""

    def __init__(self, message: str, notes: list[str]) -> None:
        super().__init__(message)
        self.notes = notes


def _local_commit(pipeline: LocalPipeline, commit: str | None, notes: list[str]) -> str:
    if commit and commit_exists(pipeline.repository, commit):
        return commit
    head = git(pipeline.repository, "rev-parse", "HEAD")
    notes.append(f"commit {str(commit)[:12]} is not in the local repository: using HEAD {head[:12]}")
    return head


def _seed_and_wait(pipeline: LocalPipeline, send: Callable[[], Trigger], notes: list[str]) -> None:
    trigger = send()
    result = pipeline.follow(pipeline.started_by(trigger), timeout=SEED_TIMEOUT_SECONDS)
    notes.append(
        f"seeded {trigger.description} "
        f"(execution {result.run_id[:8]}: {result.status}, {(result.output or {}).get('status', '')})"
    )


def _known_half(pipeline: LocalPipeline, half: str) -> bool:
    """Whether the stack already knows a latest `half` (latest_commit, latest_data): the pipeline's pointer item."""
    item = (
        pipeline.emulator.client("dynamodb")
        .get_item(
            TableName=pipeline.stack.outputs["RunsTableName"],
            Key={"pk": {"S": "POINTER"}, "sk": {"S": "LATEST"}},
            ConsistentRead=True,
        )
        .get("Item", {})
    )
    return half in item


def _seed_data(pipeline: LocalPipeline, notes: list[str]) -> None:
    if _known_half(pipeline, "latest_data"):
        notes.append("the stack already has training data: nothing seeded")
        return
    data = write_breast_cancer_csv(pipeline.runs_dir.parent / "data" / "breast-cancer.csv")
    _seed_and_wait(pipeline, lambda: pipeline.uploaded(data), notes)


def _seed_commit(pipeline: LocalPipeline, notes: list[str]) -> None:
    if _known_half(pipeline, "latest_commit"):
        notes.append("the stack already has a commit: nothing seeded")
        return
    head = git(pipeline.repository, "rev-parse", "HEAD")
    _seed_and_wait(pipeline, lambda: pipeline.pushed(head), notes)


def _put_object_quietly(pipeline: LocalPipeline, key: str) -> dict[str, Any]:
    """Create the object the sample refers to without S3 announcing it (notifications paused)."""
    s3 = pipeline.emulator.client("s3")
    data = write_breast_cancer_csv(pipeline.runs_dir.parent / "data" / "breast-cancer.csv")
    saved = s3.get_bucket_notification_configuration(Bucket=pipeline.data_bucket)
    saved.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(Bucket=pipeline.data_bucket, NotificationConfiguration={})
    try:
        response = s3.put_object(Bucket=pipeline.data_bucket, Key=key, Body=data.read_bytes())
    finally:
        # moto's GET does not echo EventBridgeConfiguration; the data bucket always has it on.
        s3.put_bucket_notification_configuration(
            Bucket=pipeline.data_bucket, NotificationConfiguration={**saved, "EventBridgeConfiguration": {}}
        )
    return {"version-id": response["VersionId"], "etag": response["ETag"].strip('"'), "size": data.stat().st_size}


# ----------------------------------------------------------------------------------------- adapting
def adapt(pipeline: LocalPipeline, event: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """The sample with the local stack's names: account, region, bucket, repository, branch, a local commit.
    Changes nothing in the emulator (seeding comes later, once a rule is known to match)."""
    adapted = copy.deepcopy(event)
    adapted["account"], adapted["region"] = ACCOUNT_ID, REGION
    detail = adapted.setdefault("detail", {})
    parameters = pipeline.stack.parameters
    source = adapted.get("source")
    if source == "aws.s3" and isinstance(detail.get("bucket"), dict):
        notes.append(f"bucket {detail['bucket'].get('name')} -> {pipeline.data_bucket}")
        detail["bucket"]["name"] = pipeline.data_bucket
        adapted["resources"] = [f"arn:aws:s3:::{pipeline.data_bucket}"]
    elif source == "aws.codecommit":
        repository, branch = parameters["CodeRepositoryName"], parameters["CodeBranch"]
        if detail.get("repositoryName") != repository:
            notes.append(f"repository {detail.get('repositoryName')} -> {repository}")
        detail["repositoryName"] = repository
        adapted["resources"] = [f"arn:aws:codecommit:{REGION}:{ACCOUNT_ID}:{repository}"]
        # A branch becomes the stack's branch; a tag stays what it is (the rule is about branches).
        if detail.get("referenceType") == "branch" and detail.get("referenceName") != branch:
            notes.append(f"branch {detail.get('referenceName')} -> {branch}")
            detail["referenceName"], detail["referenceFullName"] = branch, f"refs/heads/{branch}"
        if "commitId" in detail:  # a deletion has only the oldCommitId
            detail["commitId"] = _local_commit(pipeline, detail.get("commitId"), notes)
    elif source == "sagepipe.github":
        detail["repository"] = parameters["CodeRepositoryName"]
        if str(detail.get("ref", "")).startswith("refs/heads/"):
            detail["ref"] = f"refs/heads/{parameters['CodeBranch']}"
        if detail.get("after") and detail.get("after") != ZERO_COMMIT:
            commit = _local_commit(pipeline, detail.get("after"), notes)
            if (detail.get("head-commit") or {}).get("id") == detail.get("after"):
                detail["head-commit"]["id"] = commit
            detail["after"] = commit
    return adapted


def _prepare(pipeline: LocalPipeline, event: dict[str, Any], notes: list[str]) -> None:
    """Make the adapted event run the pipeline: create the object it announces, seed the other half."""
    detail = event.get("detail", {})
    source = event.get("source")
    if source == "aws.s3" and event.get("detail-type") == "Object Created" and detail["object"].get("size", 0):
        key = unquote_plus(detail["object"]["key"])
        _seed_commit(pipeline, notes)
        created = _put_object_quietly(pipeline, key)
        detail["object"].update(created)
        detail["object"]["key"] = encode_key(key)
        notes.append(f"created s3://{pipeline.data_bucket}/{key} (version {created['version-id']}) for the event")
    elif source in {"aws.codecommit", "sagepipe.github"}:
        _seed_data(pipeline, notes)


# ----------------------------------------------------------------------------------------- the rules
@dataclass(frozen=True)
class RuleVerdict:
    """One rule of the default bus, and what moto's matcher says of the event."""

    rule: str
    """The rule's logical id in the stack (its name when the stack does not list it)."""
    starts_run: bool
    """One of its targets is the pipeline's state machine."""
    enabled: bool
    matched: bool
    mismatch: patterns.Mismatch | None

    @property
    def explanation(self) -> str:
        if not self.enabled:
            return "is DISABLED: it delivers nothing"
        if self.matched:
            return "matches"
        if self.mismatch is None:
            return "does not match (moto's matcher says so; no single field explains it)"
        return self.mismatch.describe()

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "starts_run": self.starts_run,
            "enabled": self.enabled,
            "matched": self.matched,
            "field": self.mismatch.field if self.mismatch else None,
            "explanation": self.explanation,
        }


def rule_verdicts(pipeline: LocalPipeline, event: Mapping[str, Any]) -> list[RuleVerdict]:
    """Every rule of the default bus (ListRules, ListTargetsByRule), judged on `event` as EventBridge delivers
    it; the rules that start the pipeline first."""
    events = pipeline.emulator.client("events")
    machine = pipeline.stack.outputs["PipelineStateMachineArn"]
    logical_ids = {
        str(resource.ref): logical_id
        for logical_id, resource in pipeline.stack.resources.items()
        if resource.resource_type == "AWS::Events::Rule"
    }
    verdicts = []
    for page in events.get_paginator("list_rules").paginate(EventBusName="default"):
        for rule in page["Rules"]:
            if "EventPattern" not in rule:
                continue  # a schedule
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName="default")["Targets"]
            pattern = json.loads(rule["EventPattern"])
            matched = patterns.matches(pattern, event)
            verdicts.append(
                RuleVerdict(
                    rule=logical_ids.get(rule["Name"], rule["Name"]),
                    starts_run=any(target["Arn"] == machine for target in targets),
                    enabled=rule.get("State", "ENABLED") == "ENABLED",
                    matched=matched,
                    mismatch=None if matched else patterns.first_mismatch(pattern, event),
                )
            )
    return sorted(verdicts, key=lambda verdict: (not verdict.starts_run, verdict.rule))


def _entry(event: Mapping[str, Any]) -> dict[str, Any]:
    """The PutEvents entry that sends `event` (an event's own id, account and time are EventBridge's to set)."""
    return {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event.get("detail", {})),
        "Resources": list(event.get("resources", [])),
    }


def check_rules(pipeline: LocalPipeline, event: Mapping[str, Any], notes: list[str]) -> list[RuleVerdict]:
    """The verdicts on the event as it would be delivered; NoRuleMatches when no enabled pipeline rule matches."""
    delivered = patterns.delivered(_entry(event), account=ACCOUNT_ID, region=REGION)
    verdicts = rule_verdicts(pipeline, delivered)
    if not any(verdict.starts_run and verdict.enabled and verdict.matched for verdict in verdicts):
        summary = (
            f"no rule starts the pipeline for this {event['source']} / {event['detail-type']} event; "
            "nothing was sent. The rules, and where the event differs:"
        )
        raise NoRuleMatches(summary, verdicts, notes)
    return verdicts


# ----------------------------------------------------------------------------------------- webhook deliveries
def function_url_request(headers: dict[str, str], body: bytes, host: str, *, method: str = "POST") -> dict[str, Any]:
    """The event a Lambda Function URL passes to its function (payload format 2.0).

    Like the Function URL, a body that is not UTF-8 text is passed base64-encoded.
    """
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {name.lower(): value for name, value in headers.items()} | {"host": host},
        "requestContext": {
            "domainName": host,
            "http": {
                "method": method,
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.30.252.1",
                "userAgent": headers.get("User-Agent", "GitHub-Hookshot/local"),
            },
            "requestId": hashlib.sha256(body).hexdigest()[:32],
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 0,
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


def webhook_secret(pipeline: LocalPipeline) -> bytes:
    outputs = pipeline.stack.outputs
    if "GitHubWebhookUrl" not in outputs:
        raise RunError("the local stack has no GitHub webhook (GitHubConnectionArn is empty)")
    secret = pipeline.emulator.client("secretsmanager").get_secret_value(SecretId=outputs["GitHubWebhookSecretArn"])
    return str(secret["SecretString"]).encode()


WEBHOOK_SIGNATURE_MODULE = Path("functions") / "github_webhook" / "signature.py"


@functools.cache
def _webhook_signature(project_root: Path) -> ModuleType:
    """The webhook function's own signature module (loaded from its file: functions/ is not a package of sagepipe)."""
    path = project_root / WEBHOOK_SIGNATURE_MODULE
    spec = importlib.util.spec_from_file_location("sagepipe_replay_github_webhook_signature", path)
    if spec is None or spec.loader is None:
        raise RunError(f"cannot load the webhook function's signature module {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sign(secret: bytes, body: bytes) -> str:
    """The X-Hub-Signature-256 header GitHub sends for `body`, as the webhook function's own `sign` computes it."""
    signature: str = _webhook_signature(template.project_root()).sign(secret, body)
    return signature


def invoke_webhook(
    pipeline: LocalPipeline, headers: dict[str, str], body: bytes, *, method: str = "POST"
) -> dict[str, Any]:
    """Send one request to the webhook function as its Function URL would, headers as given (nothing is signed).
    Returns the function's answer: statusCode, headers and body."""
    outputs = pipeline.stack.outputs
    if "GitHubWebhookUrl" not in outputs:
        raise RunError("the local stack has no GitHub webhook (GitHubConnectionArn is empty)")
    host = str(outputs["GitHubWebhookUrl"]).removeprefix("https://").split("/", 1)[0]
    response = pipeline.emulator.client("lambda").invoke(
        FunctionName=pipeline.stack.ref("GitHubWebhookFunction"),
        Payload=json.dumps(function_url_request(headers, body, host, method=method)).encode(),
    )
    answer: dict[str, Any] = json.loads(response["Payload"].read())
    return answer


def deliver_webhook(pipeline: LocalPipeline, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """POST a delivery to the webhook function the way GitHub does, signed with the local secret."""
    signed = {**headers, "X-Hub-Signature-256": sign(webhook_secret(pipeline), body)}
    return invoke_webhook(pipeline, signed, body)


@dataclass(frozen=True)
class Delivery:
    """A GitHub webhook delivery to replay: its headers (as recorded, without the ones not forwarded) and the
    exact body bytes to send."""

    headers: dict[str, str]
    body: bytes
    dropped: tuple[str, ...] = field(default=())

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)

    @property
    def event_name(self) -> str | None:
        return self.header("X-GitHub-Event")


def is_delivery(event: Mapping[str, Any]) -> bool:
    """A recorded webhook delivery: headers and body, or the REST API's {"request": {"headers", "payload"}}."""
    request = event.get("request")
    return ("headers" in event and "body" in event) or (
        isinstance(request, Mapping) and "headers" in request and "payload" in request
    )


def _header_lines(text: str) -> dict[str, str]:
    """The header block of GitHub's Recent Deliveries page: one `Name: value` a line (its "Request method:"
    and "Request URL:" lines are not headers)."""
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lower().startswith(("request method:", "request url:")):
            continue
        name, separator, value = line.partition(":")
        if not separator or not name.strip():
            raise ReplayInputError(f"the delivery's headers: {line.strip()!r} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def read_delivery(event: Mapping[str, Any]) -> Delivery:
    """The delivery's headers and body bytes. A body given as text is sent byte for byte, as GitHub sent it; one
    given as a JSON object is serialised once."""
    request = event.get("request")
    raw_headers, body = (
        (request["headers"], request["payload"]) if isinstance(request, Mapping) else (event["headers"], event["body"])
    )
    if isinstance(raw_headers, str):
        headers = _header_lines(raw_headers)
    elif isinstance(raw_headers, Mapping):
        headers = {str(name): str(value) for name, value in raw_headers.items()}
    else:
        raise ReplayInputError("the delivery's headers are neither an object nor 'Name: value' lines")
    if isinstance(body, str):
        raw = body.encode("utf-8")
    elif body is None:
        raw = b""
    else:
        raw = json.dumps(body).encode("utf-8")
    kept = {name: value for name, value in headers.items() if name.lower() not in NOT_FORWARDED}
    dropped = tuple(name for name in headers if name.lower() in NOT_FORWARDED)
    return Delivery(kept, raw, dropped)


def _adapt_push(pipeline: LocalPipeline, delivery: Delivery, notes: list[str]) -> tuple[Delivery, bool]:
    """A push delivery for the local stack: repository, branch (a tag stays a tag), a local commit, and a
    delivery id of its own. Returns it, and whether it pushes to a branch (so the webhook will publish it)."""
    parameters = pipeline.stack.parameters
    try:
        body = json.loads(delivery.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReplayInputError(f"the delivery's body is not JSON ({error})") from None
    if not isinstance(body, dict):
        raise ReplayInputError("the delivery's body is not a JSON object")
    repository = body.setdefault("repository", {})
    if isinstance(repository, dict):
        repository["full_name"] = parameters["CodeRepositoryName"]
    branch_push = str(body.get("ref", "")).startswith("refs/heads/")
    if branch_push:
        body["ref"] = f"refs/heads/{parameters['CodeBranch']}"
    deleted = bool(body.get("deleted")) or body.get("after") == ZERO_COMMIT
    if not deleted:
        commit = _local_commit(pipeline, body.get("after"), notes)
        if (body.get("head_commit") or {}).get("id") == body.get("after"):
            body["head_commit"]["id"] = commit
        body["after"] = commit
    notes.append(
        f"repository -> {parameters['CodeRepositoryName']}"
        + (f", branch -> {parameters['CodeBranch']}" if branch_push else "")
    )
    # The webhook publishes a delivery id once (a repeat is GitHub's "Redeliver"): each replay is a new delivery.
    headers = dict(delivery.headers)
    delivery_header = next((name for name in headers if name.lower() == "x-github-delivery"), "X-GitHub-Delivery")
    headers[delivery_header] = str(uuid.uuid4())
    notes.append(f"delivery id -> {headers[delivery_header]} (a new delivery; --as-is keeps the recorded one)")
    return replace(delivery, headers=headers, body=json.dumps(body).encode("utf-8")), branch_push and not deleted


@dataclass(frozen=True)
class Replayed:
    notes: list[str]
    trigger: Trigger | None
    """What finds the execution the replay started; None when nothing was to run (a ping)."""


def _replay_delivery(pipeline: LocalPipeline, event: Mapping[str, Any], *, adapt_event: bool) -> Replayed:
    notes: list[str] = []
    delivery = read_delivery(event)
    if delivery.dropped:
        notes.append(f"not replayed: {', '.join(delivery.dropped)} (the replay is signed with the local secret)")
    runs = False
    if adapt_event and delivery.event_name == "push":
        delivery, runs = _adapt_push(pipeline, delivery, notes)
    if runs:
        _seed_data(pipeline, notes)
    since = now()
    answer = deliver_webhook(pipeline, delivery.headers, delivery.body)
    status = answer.get("statusCode")
    try:
        said: Any = json.loads(answer.get("body") or "{}")
    except json.JSONDecodeError:
        said = {}
    notes.append(f"delivered to the webhook function, signed with the local secret: {status} {answer.get('body')}")
    if status == 200:
        return Replayed(notes, None)  # a ping: answered, nothing to run
    if status == 202 and said.get("status") == "accepted" and said.get("eventId"):
        description = f"GitHub delivery {said.get('delivery')} (event {said['eventId']})"
        return Replayed(notes, Trigger.event(str(said["eventId"]), since, description))
    if status == 202:
        raise NothingToRun(f"the webhook function ignored the delivery: {said.get('reason', said)}", notes)
    raise ReplayInputError(f"the webhook function refused the delivery: {status} {answer.get('body')}")


def replay(pipeline: LocalPipeline, event: dict[str, Any], *, adapt_event: bool = True) -> Replayed:
    """Send the event (adapted unless told otherwise) once a rule is known to match it, after any seeding.

    Raises NoRuleMatches (nothing seeded, nothing sent) when no rule that starts the pipeline would match it,
    NothingToRun when the webhook ignores a delivery, ReplayInputError for input replay cannot send."""
    if is_delivery(event):
        return _replay_delivery(pipeline, event, adapt_event=adapt_event)
    if not isinstance(event.get("source"), str) or not isinstance(event.get("detail-type"), str):
        raise ReplayInputError(
            "not an EventBridge event (needs 'source' and 'detail-type') nor a webhook delivery ('headers' and 'body')"
        )
    notes: list[str] = []
    sent = adapt(pipeline, event, notes) if adapt_event else copy.deepcopy(event)
    check_rules(pipeline, sent, notes)
    if adapt_event:
        _prepare(pipeline, sent, notes)
    since = now()
    event_id = pipeline.put_event(sent["source"], sent["detail-type"], sent.get("detail", {}), sent.get("resources"))
    notes.append(f"put {sent['source']} / {sent['detail-type']} on the default bus")
    return Replayed(notes, Trigger.event(event_id, since, f"replayed {sent['source']} / {sent['detail-type']}"))


def load_event(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReplayInputError(f"{path} is not JSON: {error}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ReplayInputError(f"{path} cannot be read: {error}") from error
    if not isinstance(loaded, dict):
        raise ReplayInputError(f"{path} does not hold a JSON object")
    return loaded

"""Replaying a sample event (events/*.json) on the local stack.

A sample names things that exist only in its example account: a bucket, an object version, a commit. Unless
asked to send it as is, replay adapts it to the local stack and says what it changed:

* account, region and resource names become the local stack's;
* a commit that is not in the local repository becomes HEAD;
* an S3 object is created locally first (the default dataset, or the sample's size of it), with the bucket's
  EventBridge notifications paused, so that the replayed event, not the upload, starts the run;
* the other half of a run is seeded through the real event path (a data upload for a code push, a code push
  for a data upload), so the replayed event runs the pipeline instead of ending SKIPPED.

A GitHub webhook delivery (`{"headers": ..., "body": ...}`, like events/github-push.json) is not an EventBridge
event: it is signed with the local stack's webhook secret and delivered to the webhook function as the
Function URL request GitHub would make, and the function puts the event.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from sagepipe import template
from sagepipe.local.core.emulator import ACCOUNT_ID, REGION
from sagepipe.local.git import commit_exists, git
from sagepipe.local.runner import RunError
from sagepipe.local.s3.events import encode_key
from sagepipe.local.sample_data import write_breast_cancer_csv

if TYPE_CHECKING:
    from sagepipe.local.runner import LocalPipeline

SEED_TIMEOUT_SECONDS = 120.0


def _local_commit(pipeline: LocalPipeline, commit: str | None, notes: list[str]) -> str:
    if commit and commit_exists(pipeline.repository, commit):
        return commit
    head = git(pipeline.repository, "rev-parse", "HEAD")
    notes.append(f"commit {str(commit)[:12]} is not in the local repository: using HEAD {head[:12]}")
    return head


def _seed_and_wait(pipeline: LocalPipeline, what: str, action: Any, notes: list[str]) -> None:
    marker = pipeline.execution_marker()
    action()
    (arn,) = pipeline.started_since(marker)
    result = pipeline.follow(arn, timeout=SEED_TIMEOUT_SECONDS)
    notes.append(
        f"seeded {what} (execution {result.run_id[:8]}: {result.status}, {(result.output or {}).get('status', '')})"
    )


def _seed_data(pipeline: LocalPipeline, notes: list[str]) -> None:
    data = write_breast_cancer_csv(pipeline.runs_dir.parent / "data" / "breast-cancer.csv")
    _seed_and_wait(
        pipeline, f"training data {pipeline.data_prefix}{data.name}", lambda: pipeline.upload_data(data), notes
    )


def _seed_commit(pipeline: LocalPipeline, notes: list[str]) -> None:
    head = git(pipeline.repository, "rev-parse", "HEAD")
    _seed_and_wait(pipeline, f"a push of HEAD {head[:12]}", lambda: pipeline.push_commit(head), notes)


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


def adapt(pipeline: LocalPipeline, event: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    adapted = copy.deepcopy(event)
    adapted["account"], adapted["region"] = ACCOUNT_ID, REGION
    detail = adapted.get("detail", {})
    parameters = pipeline.stack.parameters
    source = adapted.get("source")
    if source == "aws.s3":
        notes.append(f"bucket {detail['bucket']['name']} -> {pipeline.data_bucket}")
        detail["bucket"]["name"] = pipeline.data_bucket
        adapted["resources"] = [f"arn:aws:s3:::{pipeline.data_bucket}"]
        key = unquote_plus(detail["object"]["key"])
        if adapted.get("detail-type") == "Object Created" and detail["object"].get("size", 0):
            _seed_commit(pipeline, notes)
            created = _put_object_quietly(pipeline, key)
            detail["object"].update(created)
            detail["object"]["key"] = encode_key(key)
            notes.append(f"created s3://{pipeline.data_bucket}/{key} (version {created['version-id']}) for the event")
    elif source == "aws.codecommit":
        detail["repositoryName"] = parameters["CodeRepositoryName"]
        detail["referenceName"] = parameters["CodeBranch"]
        detail["referenceFullName"] = f"refs/heads/{parameters['CodeBranch']}"
        adapted["resources"] = [f"arn:aws:codecommit:{REGION}:{ACCOUNT_ID}:{parameters['CodeRepositoryName']}"]
        detail["commitId"] = _local_commit(pipeline, detail.get("commitId"), notes)
        _seed_data(pipeline, notes)
    elif source == "sagepipe.github":
        detail["repository"] = parameters["CodeRepositoryName"]
        detail["ref"] = f"refs/heads/{parameters['CodeBranch']}"
        commit = _local_commit(pipeline, detail.get("after"), notes)
        if detail.get("head-commit", {}).get("id") == detail.get("after"):
            detail["head-commit"]["id"] = commit
        detail["after"] = commit
        _seed_data(pipeline, notes)
    return adapted


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


def _adapt_delivery(
    pipeline: LocalPipeline, delivery: dict[str, Any], notes: list[str]
) -> tuple[dict[str, str], bytes]:
    parameters = pipeline.stack.parameters
    body = copy.deepcopy(delivery["body"])
    if delivery["headers"].get("X-GitHub-Event") == "push":
        body.setdefault("repository", {})["full_name"] = parameters["CodeRepositoryName"]
        body["ref"] = f"refs/heads/{parameters['CodeBranch']}"
        commit = _local_commit(pipeline, body.get("after"), notes)
        if (body.get("head_commit") or {}).get("id") == body.get("after"):
            body["head_commit"]["id"] = commit
        body["after"] = commit
        notes.append(f"repository -> {parameters['CodeRepositoryName']}, branch -> {parameters['CodeBranch']}")
        _seed_data(pipeline, notes)
    return dict(delivery["headers"]), json.dumps(body).encode("utf-8")


@dataclass(frozen=True)
class Replayed:
    notes: list[str]
    marker: int
    """Executions started after this index are the replayed event's (seeding happened before it)."""


def replay(pipeline: LocalPipeline, event: dict[str, Any], *, adapt_event: bool = True) -> Replayed:
    """Put the event on the local default bus (adapted unless told otherwise), after any seeding."""
    notes: list[str] = []
    if isinstance(event, dict) and isinstance(event.get("headers"), dict) and "body" in event:
        headers, body = (
            _adapt_delivery(pipeline, event, notes)
            if adapt_event
            else (dict(event["headers"]), json.dumps(event["body"]).encode("utf-8"))
        )
        marker = pipeline.execution_marker()
        answer = deliver_webhook(pipeline, headers, body)
        notes.append(
            f"delivered to the webhook function, signed with the local secret: {answer.get('statusCode')} "
            f"{answer.get('body')}"
        )
        return Replayed(notes, marker)
    if not isinstance(event, dict) or "source" not in event or "detail-type" not in event:
        raise RunError("not an EventBridge event (needs 'source' and 'detail-type') nor a webhook delivery")
    sent = adapt(pipeline, event, notes) if adapt_event else event
    marker = pipeline.execution_marker()
    pipeline.put_event(sent["source"], sent["detail-type"], sent.get("detail", {}), sent.get("resources"))
    notes.append(f"put {sent['source']} / {sent['detail-type']} on the default bus")
    return Replayed(notes, marker)


def load_event(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RunError(f"{path} is not JSON: {error}") from error
    if not isinstance(loaded, dict):
        raise RunError(f"{path} does not hold a JSON object")
    return loaded

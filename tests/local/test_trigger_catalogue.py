"""A catalogue of hostile and malformed trigger inputs, each with the one outcome it must have.

Every input goes through the real path on the local runtime: webhook requests through the webhook function (as
its Function URL passes them), S3 changes through S3 and its EventBridge notifications, other events through
PutEvents on the default bus. The stack is provisioned once for the module, seeded with a trained run, so that a
valid input ends in exactly one training job.

Outcomes:
- Rejected: the webhook answers 4xx, logs "webhook delivery rejected", and no execution starts.
- Answered: the webhook answers 200/202 without publishing (ping, ignored events, redeliveries), with its log
  line, and no execution starts.
- Filtered: no rule matches, no execution starts; an event of the stack's bucket or of a code source still
  leaves a line in the trigger audit log group.
- Ignored: the run's normaliser refuses it: the execution ends IGNORED with the reason, the function logs
  "trigger ignored", and nothing is recorded or trained.
- Duplicate: the execution ends as a recorded DUPLICATE, and no training job starts.
- OneRun: exactly one execution, a SUCCEEDED record and exactly one more training job; or, for input the training
  cache has seen (the seed's tree and bytes), a CACHED record and no training job.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sagepipe.local.core import context
from sagepipe.local.core.emulator import ACCOUNT_ID, REGION, Emulator
from sagepipe.local.git import git
from sagepipe.local.replay import invoke_webhook, sign, webhook_secret
from sagepipe.local.runner import LocalPipeline, RunResult
from sagepipe.local.s3.events import encode_key
from sagepipe.local.sample_data import write_breast_cancer_csv
from sagepipe.template import PROJECT_ROOT
from tests.local.conftest import BuiltImage, provision_for_test, put_image_of_head, wait_for_quiet

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS = 300.0
IDENTITY = ("-c", "user.name=sagepipe-test", "-c", "user.email=test@example.com")
GITHUB_PUSH = json.loads((PROJECT_ROOT / "events" / "github-push.json").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------- the stack


@dataclass
class Catalogue:
    """The provisioned stack, seeded with one trained run, and the ways to send it input."""

    pipeline: LocalPipeline
    data: Path
    repository: Path
    seeded_key: str
    seeded_version: str
    uploads: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # -------------------------------------------------------------------- names
    @property
    def head(self) -> str:
        return git(self.repository, "rev-parse", "HEAD")

    @property
    def data_bucket(self) -> str:
        return self.pipeline.data_bucket

    @property
    def repository_name(self) -> str:
        return str(self.pipeline.stack.parameters["CodeRepositoryName"])

    @property
    def branch(self) -> str:
        return str(self.pipeline.stack.parameters["CodeBranch"])

    def new_commit(self, message: str) -> str:
        """A commit on top of HEAD with the same tree (a fresh SHA the build can check out)."""
        return git(self.repository, *IDENTITY, "commit-tree", f"{self.head}^{{tree}}", "-p", self.head, "-m", message)

    def client(self, service: str) -> Any:
        return self.pipeline.emulator.client(service)

    # -------------------------------------------------------------------- S3
    def fresh_data(self) -> bytes:
        """The seed's data without its first n rows, n new each time: bytes no run has trained on, so that the
        training cache (the data's sha256 is part of its key) lets the run train instead of ending CACHED."""
        header, *rows = self.data.read_text(encoding="utf-8").splitlines()
        return "\n".join([header, *rows[next(self.uploads) :]]).encode() + b"\n"

    def upload(self, key: str, body: bytes | None = None) -> str:
        response = self.client("s3").put_object(
            Bucket=self.data_bucket, Key=key, Body=self.fresh_data() if body is None else body
        )
        return str(response["VersionId"])

    # -------------------------------------------------------------------- events
    def put_event(
        self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str] | None = None
    ) -> str:
        return self.pipeline.put_event(source, detail_type, detail, resources)

    def codecommit_detail(self, **changes: Any) -> dict[str, Any]:
        detail = {
            "callerUserArn": f"arn:aws:iam::{ACCOUNT_ID}:user/mallory",
            "commitId": self.head,
            "event": "referenceUpdated",
            "referenceFullName": f"refs/heads/{self.branch}",
            "referenceName": self.branch,
            "referenceType": "branch",
            "repositoryId": "00000000-0000-0000-0000-000000000000",
            "repositoryName": self.repository_name,
        }
        return {name: value for name, value in (detail | changes).items() if value is not None}

    def codecommit_resources(self, repository: str | None = None) -> list[str]:
        return [f"arn:aws:codecommit:{REGION}:{ACCOUNT_ID}:{repository or self.repository_name}"]

    def s3_detail(self, key: str, **object_changes: Any) -> dict[str, Any]:
        return {
            "version": "0",
            "bucket": {"name": self.data_bucket},
            "object": {"key": encode_key(key), "size": 1024, "etag": "0" * 32, "sequencer": "00"} | object_changes,
            "request-id": "REQUEST",
            "requester": ACCOUNT_ID,
            "source-ip-address": "203.0.113.7",
            "reason": "PutObject",
        }

    # -------------------------------------------------------------------- the webhook
    def push_body(self, commit: str, **changes: Any) -> dict[str, Any]:
        body = json.loads(json.dumps(GITHUB_PUSH["body"]))
        body["after"] = commit
        body["ref"] = f"refs/heads/{self.branch}"
        body["repository"]["full_name"] = self.repository_name
        body["head_commit"]["id"] = commit
        body["commits"] = [body["head_commit"]]
        return body | changes

    def webhook(
        self,
        body: bytes | dict[str, Any] | list[Any],
        *,
        event: str | None = "push",
        delivery: str | None = None,
        content_type: str = "application/json",
        signature: str | Callable[[bytes], str | None] | None = "valid",
        method: str = "POST",
    ) -> dict[str, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": content_type, "User-Agent": "GitHub-Hookshot/a1b2c3d"}
        if event is not None:
            headers["X-GitHub-Event"] = event
        headers["X-GitHub-Delivery"] = delivery or str(uuid.uuid4())
        if delivery == "":
            del headers["X-GitHub-Delivery"]
        header = sign(webhook_secret(self.pipeline), raw) if signature == "valid" else signature
        if callable(header):
            header = header(raw)
        if header is not None:
            headers["X-Hub-Signature-256"] = header
        return invoke_webhook(self.pipeline, headers, raw, method=method)

    # -------------------------------------------------------------------- observing
    def training_jobs(self) -> int:
        jobs = self.client("sagemaker").list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
        return len(jobs)

    def function_log(self, logical_id: str) -> Path:
        return context.current().logs_dir / "lambda" / f"{self.pipeline.stack.ref(logical_id)}.log"

    def audit_lines(self) -> list[str]:
        logs = self.client("logs")
        group = self.pipeline.stack.ref("TriggerEventsLogGroup")
        messages: list[str] = []
        arguments: dict[str, Any] = {"logGroupName": group}
        for _ in range(1000):  # pages; bounded
            page = logs.filter_log_events(**arguments)
            messages += [event["message"] for event in page["events"]]
            if not page.get("nextToken"):
                break
            arguments["nextToken"] = page["nextToken"]
        return messages


@dataclass(frozen=True)
class Before:
    """What the stack looked like just before the input was sent."""

    marker: int
    training_jobs: int
    log_offsets: dict[str, int]
    audit_lines: int

    @classmethod
    def take(cls, catalogue: Catalogue) -> Before:
        offsets = {}
        for logical_id in ("GitHubWebhookFunction", "NormaliseTriggerFunction"):
            path = catalogue.function_log(logical_id)
            offsets[logical_id] = path.stat().st_size if path.exists() else 0
        return cls(
            catalogue.pipeline.execution_marker(),
            catalogue.training_jobs(),
            offsets,
            len(catalogue.audit_lines()),
        )

    def log_lines(self, catalogue: Catalogue, logical_id: str) -> list[dict[str, Any]]:
        """The function's structured log lines written since."""
        path = catalogue.function_log(logical_id)
        if not path.exists():
            return []
        with path.open("rb") as handle:
            handle.seek(self.log_offsets[logical_id])
            text = handle.read().decode("utf-8")
        lines = []
        for line in text.splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


@dataclass(frozen=True)
class Sent:
    answer: dict[str, Any] | None = None
    """The webhook's answer, for requests to the webhook."""
    token: str | None = None
    """A string the event's audit log line must contain (its key or id), when it must leave one."""


# ----------------------------------------------------------------------------------------------- outcomes


def _no_execution(catalogue: Catalogue, before: Before) -> None:
    # Locally, delivery is synchronous: the request that sent the input (PutEvents, PutObject, the webhook's
    # invocation) has started every execution its event leads to before it returns, so there is nothing to wait
    # for. _one_execution checks that this still holds.
    started = context.current().executions_since(before.marker)
    assert started == [], f"expected no run, but {[item.rule_name for item in started]} started one"
    assert catalogue.training_jobs() == before.training_jobs


def _one_execution(catalogue: Catalogue, before: Before) -> RunResult:
    assert context.current().executions_since(before.marker), (
        "the input's execution had not started when its request returned: delivery is no longer synchronous, "
        "so _no_execution must wait for executions that must not start"
    )
    (arn,) = catalogue.pipeline.started_since(before.marker, timeout=30)
    result = catalogue.pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS)
    more = context.current().executions_since(before.marker)
    assert len(more) == 1, f"expected one execution, saw {len(more)}"
    return result


def _answer_body(sent: Sent) -> dict[str, Any]:
    assert sent.answer is not None, "expected a webhook answer"
    body: dict[str, Any] = json.loads(sent.answer["body"])
    return body


@dataclass(frozen=True)
class Rejected:
    status: int
    reason: str

    def check(self, catalogue: Catalogue, before: Before, sent: Sent) -> None:
        assert sent.answer is not None
        assert sent.answer["statusCode"] == self.status, sent.answer
        assert _answer_body(sent)["status"] == "rejected"
        lines = before.log_lines(catalogue, "GitHubWebhookFunction")
        rejected = [line for line in lines if line.get("message") == "webhook delivery rejected"]
        assert len(rejected) == 1, f"expected one 'webhook delivery rejected' line, got {lines}"
        assert rejected[0]["status_code"] == self.status
        assert self.reason in rejected[0]["reason"], rejected[0]
        assert rejected[0]["level"] == "WARNING"
        _no_execution(catalogue, before)


@dataclass(frozen=True)
class Answered:
    status: int
    message: str
    body_status: str

    def check(self, catalogue: Catalogue, before: Before, sent: Sent) -> None:
        assert sent.answer is not None
        assert sent.answer["statusCode"] == self.status, sent.answer
        assert _answer_body(sent)["status"] == self.body_status
        messages = [line.get("message") for line in before.log_lines(catalogue, "GitHubWebhookFunction")]
        assert messages.count(self.message) == 1, messages
        _no_execution(catalogue, before)


@dataclass(frozen=True)
class Filtered:
    audited: bool = True
    """Whether the event must leave a line in the trigger audit log group (events of the stack's own sources)."""

    def check(self, catalogue: Catalogue, before: Before, sent: Sent) -> None:
        _no_execution(catalogue, before)
        new_lines = catalogue.audit_lines()[before.audit_lines :]
        if self.audited:
            assert sent.token is not None
            assert any(sent.token in line for line in new_lines), f"no audit line contains {sent.token!r}"
        else:
            assert new_lines == [], f"an event of another bucket reached the audit log: {new_lines}"


def _check_webhook_status(expected: int | None, sent: Sent) -> None:
    """For inputs sent to the webhook: the status it answered before its event ran."""
    if expected is not None:
        assert sent.answer is not None
        assert sent.answer["statusCode"] == expected, sent.answer


@dataclass(frozen=True)
class Ignored:
    reason: str
    webhook_status: int | None = None

    def check(self, catalogue: Catalogue, before: Before, sent: Sent) -> None:
        _check_webhook_status(self.webhook_status, sent)
        result = _one_execution(catalogue, before)
        assert result.status == "SUCCEEDED", result.cause
        assert result.output is not None
        assert result.output["status"] == "IGNORED"
        assert self.reason in result.output["reason"], result.output
        assert result.record is None, "an ignored trigger must not be recorded"
        ignored = [
            line
            for line in before.log_lines(catalogue, "NormaliseTriggerFunction")
            if line.get("message") == "trigger ignored"
        ]
        assert len(ignored) == 1
        assert self.reason in ignored[0]["reason"]
        assert catalogue.training_jobs() == before.training_jobs


@dataclass(frozen=True)
class Duplicate:
    webhook_status: int | None = None

    def check(self, catalogue: Catalogue, before: Before, sent: Sent) -> None:
        _check_webhook_status(self.webhook_status, sent)
        result = _one_execution(catalogue, before)
        assert result.status == "SUCCEEDED", result.cause
        assert result.record is not None
        assert result.record["status"] == "DUPLICATE"
        owner = catalogue.client("dynamodb").get_item(
            TableName=catalogue.pipeline.stack.outputs["RunsTableName"],
            Key={"pk": {"S": f"RUN#{result.record['duplicate_of']}"}, "sk": {"S": "RECORD"}},
        )["Item"]
        # The owner trained, or (a push of the seed's tree and data) was served from the training cache.
        assert owner["status"]["S"] in {"SUCCEEDED", "CACHED"}, "a duplicate points at the run that owns the pair"
        assert catalogue.training_jobs() == before.training_jobs


@dataclass(frozen=True)
class OneRun:
    webhook_status: int | None = None
    also: Callable[[Catalogue, dict[str, Any]], None] | None = None
    cached: bool = False
    """The run's training cache key is the seed's (its tree and its bytes): it ends CACHED and trains nothing."""

    def check(self, catalogue: Catalogue, before: Before, sent: Sent) -> None:
        _check_webhook_status(self.webhook_status, sent)
        result = _one_execution(catalogue, before)
        assert result.status == "SUCCEEDED", result.cause
        assert result.record is not None
        if self.cached:
            assert result.record["status"] == "CACHED", result.record
            assert result.record["cached_from"], result.record
            assert catalogue.training_jobs() == before.training_jobs
        else:
            assert result.record["status"] == "SUCCEEDED", result.record
            assert catalogue.training_jobs() == before.training_jobs + 1
        if self.also is not None:
            self.also(catalogue, result.record)


Outcome = Rejected | Answered | Filtered | Ignored | Duplicate | OneRun


@dataclass(frozen=True)
class Case:
    id: str
    send: Callable[[Catalogue], Sent]
    expect: Outcome
    prepare: Callable[[Catalogue], None] | None = field(default=None)
    """Runs before the 'before' snapshot: what the case needs to exist first."""


# ----------------------------------------------------------------------------------------------- the cases


def _webhook(body: Any = None, **options: Any) -> Callable[[Catalogue], Sent]:
    """A request to the webhook: by default a signed push of HEAD to the configured branch."""

    def send(catalogue: Catalogue) -> Sent:
        payload = body(catalogue) if callable(body) else body
        if payload is None:
            payload = catalogue.push_body(catalogue.head)
        return Sent(answer=catalogue.webhook(payload, **options))

    return send


def _push(**changes: Any) -> Callable[[Catalogue], dict[str, Any]]:
    return lambda catalogue: catalogue.push_body(catalogue.head, **changes)


def _push_other_repository(catalogue: Catalogue) -> dict[str, Any]:
    body = catalogue.push_body(catalogue.head)
    body["repository"]["full_name"] = "mallory/training-code"
    return body


def _push_without_after(catalogue: Catalogue) -> dict[str, Any]:
    body = catalogue.push_body(catalogue.head)
    del body["after"]
    return body


def _tampered(catalogue: Catalogue) -> Sent:
    """A valid signature, of another body: what an attacker who saw one delivery could try."""
    body = json.dumps(catalogue.push_body(catalogue.head)).encode()
    signature = sign(webhook_secret(catalogue.pipeline), body)
    tampered = body.replace(catalogue.head.encode(), catalogue.new_commit("mallory").encode())
    return Sent(answer=catalogue.webhook(tampered, signature=signature))


def _valid_github_push(catalogue: Catalogue) -> Sent:
    return Sent(answer=catalogue.webhook(catalogue.push_body(catalogue.new_commit("github push"))))


@dataclass
class _Redelivery:
    """GitHub's 'Redeliver' (same X-GitHub-Delivery), or an attacker replaying a captured, signed body under a
    new delivery id: the first delivery has run to its end before the second arrives."""

    same_delivery_id: bool
    body: bytes = b""
    delivery: str = ""

    def prepare(self, catalogue: Catalogue) -> None:
        self.body = json.dumps(catalogue.push_body(catalogue.new_commit("pushed once"))).encode()
        self.delivery = str(uuid.uuid4())
        marker = catalogue.pipeline.execution_marker()
        first = catalogue.webhook(self.body, delivery=self.delivery)
        assert first["statusCode"] == 202, first
        (arn,) = catalogue.pipeline.started_since(marker, timeout=30)
        assert catalogue.pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS).status == "SUCCEEDED"

    def send(self, catalogue: Catalogue) -> Sent:
        delivery = self.delivery if self.same_delivery_id else str(uuid.uuid4())
        return Sent(answer=catalogue.webhook(self.body, delivery=delivery))


def _upload(key: str, body: bytes | None = None) -> Callable[[Catalogue], Sent]:
    def send(catalogue: Catalogue) -> Sent:
        catalogue.upload(key, body)
        return Sent(token=encode_key(key))

    return send


def _upload_to_another_bucket(catalogue: Catalogue) -> Sent:
    s3 = catalogue.client("s3")
    bucket = "mallory-data"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    s3.put_object(Bucket=bucket, Key=f"{catalogue.pipeline.data_prefix}stolen.csv", Body=catalogue.data.read_bytes())
    return Sent()


def _delete(catalogue: Catalogue) -> Sent:
    """A real DeleteObject (a delete marker) of the seeded data, and the 'Object Deleted' event S3 documents
    for it (moto emits none for delete markers): neither starts a run."""
    catalogue.client("s3").delete_object(Bucket=catalogue.data_bucket, Key=catalogue.seeded_key)
    detail = catalogue.s3_detail(catalogue.seeded_key, **{"version-id": "deletemarker1"})
    detail = {**detail, "reason": "DeleteObject", "deletion-type": "Delete Marker Created"}
    detail["object"].pop("size")
    event_id = catalogue.put_event("aws.s3", "Object Deleted", detail, [f"arn:aws:s3:::{catalogue.data_bucket}"])
    return Sent(token=event_id)


def _copy(catalogue: Catalogue) -> Sent:
    key = f"{catalogue.pipeline.data_prefix}copied.csv"
    catalogue.client("s3").copy_object(
        Bucket=catalogue.data_bucket,
        Key=key,
        CopySource={
            "Bucket": catalogue.data_bucket,
            "Key": catalogue.seeded_key,
            "VersionId": catalogue.seeded_version,
        },
    )
    return Sent(token=key)


def _multipart(catalogue: Catalogue) -> Sent:
    s3 = catalogue.client("s3")
    key = f"{catalogue.pipeline.data_prefix}multipart.csv"
    upload = s3.create_multipart_upload(Bucket=catalogue.data_bucket, Key=key)
    part = s3.upload_part(
        Bucket=catalogue.data_bucket,
        Key=key,
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=catalogue.fresh_data(),
    )
    s3.complete_multipart_upload(
        Bucket=catalogue.data_bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    return Sent(token=key)


def _put_s3_event(detail_type: str, key: str, **changes: Any) -> Callable[[Catalogue], Sent]:
    def send(catalogue: Catalogue) -> Sent:
        detail = catalogue.s3_detail(key)
        for argument, value in changes.items():
            # object_version_id=... changes detail.object["version-id"]; reason=... changes detail["reason"].
            if argument.startswith("object_"):
                target, name = detail["object"], argument.removeprefix("object_").replace("_", "-")
            else:
                target, name = detail, argument
            if value is None:
                target.pop(name, None)
            else:
                target[name] = value
        event_id = catalogue.put_event("aws.s3", detail_type, detail, [f"arn:aws:s3:::{catalogue.data_bucket}"])
        return Sent(token=event_id)

    return send


def _codecommit(**changes: Any) -> Callable[[Catalogue], Sent]:
    def send(catalogue: Catalogue) -> Sent:
        repository = changes.get("repositoryName")
        event_id = catalogue.put_event(
            "aws.codecommit",
            "CodeCommit Repository State Change",
            catalogue.codecommit_detail(**changes),
            catalogue.codecommit_resources(repository),
        )
        return Sent(token=event_id)

    return send


def _github_event(**changes: Any) -> Callable[[Catalogue], Sent]:
    """A 'GitHub Push' event put straight on the bus, as only something with events:PutEvents could."""

    def send(catalogue: Catalogue) -> Sent:
        detail = {
            "delivery": str(uuid.uuid4()),
            "repository": catalogue.repository_name,
            "ref": f"refs/heads/{catalogue.branch}",
            "before": "0" * 40,
            "after": catalogue.head,
            "deleted": False,
            "pusher": "mallory",
        }
        detail = {name: value for name, value in (detail | changes).items() if value is not None}
        return Sent(token=catalogue.put_event("sagepipe.github", "GitHub Push", detail))

    return send


def _manual(commit: Callable[[Catalogue], str] | str | None = None, **data: Any) -> Callable[[Catalogue], Sent]:
    def send(catalogue: Catalogue) -> Sent:
        detail: dict[str, Any] = {
            "commit": commit(catalogue) if callable(commit) else (commit or catalogue.head),
            "requestedBy": f"arn:aws:iam::{ACCOUNT_ID}:user/alice",
            "data": {
                "bucket": catalogue.data_bucket,
                "key": catalogue.seeded_key,
                "versionId": catalogue.seeded_version,
            },
        }
        for name, value in data.items():
            if value is None:
                detail["data"].pop(name, None)
            else:
                detail["data"][name] = value
        return Sent(token=catalogue.put_event("sagepipe.manual", "Manual Run Requested", detail))

    return send


def _manual_on_object_outside_the_prefix(catalogue: Catalogue) -> Sent:
    """A manual run may name any version in the data bucket, even one whose upload started nothing."""
    key = "manual/breast-cancer.csv"
    version = catalogue.upload(key)
    return _manual(key=key, versionId=version)(catalogue)


def _record_has(**expected: Any) -> Callable[[Catalogue, dict[str, Any]], None]:
    def check(catalogue: Catalogue, record: dict[str, Any]) -> None:
        for name, value in expected.items():
            assert record[name] == value, f"{name}: {record[name]!r} != {value!r}"

    return check


def _staged_under_the_file_name_limit(key: str) -> Callable[[Catalogue, dict[str, Any]], None]:
    def check(catalogue: Catalogue, record: dict[str, Any]) -> None:
        assert record["data_key"] == key
        artifacts = catalogue.pipeline.stack.outputs["ArtifactsBucketName"]
        prefix = f"runs/{record['run_id']}/input/train/"
        staged = catalogue.client("s3").list_objects_v2(Bucket=artifacts, Prefix=prefix)["Contents"]
        (name,) = [item["Key"].removeprefix(prefix) for item in staged]
        assert name == key.rsplit("/", 1)[-1][-63:]
        assert len(name.encode()) <= 255

    return check


UNICODE_KEY = "datasets/données/été 2026 ✓ 📈.csv"
SPACES_AND_PLUS_KEY = "datasets/breast cancer/train+v2 (final).csv"
PERCENT_KEY = "datasets/100% sure/a%2Fb.csv"
HUGE_KEY = "datasets/" + "deep-folder/" * 40 + "x" * 480 + ".csv"
_pushed_once = _Redelivery(same_delivery_id=True)
_replayed_body = _Redelivery(same_delivery_id=False)


def _wrong_secret_signature(raw: bytes) -> str:
    return sign(b"not-the-secret", raw)


CASES = [
    # ---------------------------------------------------------------- the webhook: who may call it
    Case("webhook-signature-missing", _webhook(signature=None), Rejected(401, "signature missing")),
    Case("webhook-signature-sha1", _webhook(signature="sha1=" + "0" * 40), Rejected(401, "signature malformed")),
    Case("webhook-signature-not-hex", _webhook(signature="sha256=" + "z" * 64), Rejected(401, "signature malformed")),
    Case("webhook-signature-truncated", _webhook(signature="sha256=abc"), Rejected(401, "signature malformed")),
    Case("webhook-signature-wrong-secret", _webhook(signature=_wrong_secret_signature), Rejected(401, "mismatch")),
    Case("webhook-signature-of-another-body", _tampered, Rejected(401, "mismatch")),
    Case("webhook-get", _webhook(method="GET"), Rejected(405, "method 'GET'")),
    Case(
        "webhook-body-over-1-mib",
        _webhook(body=lambda c: c.push_body(c.head, padding="x" * (1024 * 1024))),
        Rejected(413, "MAX_BODY_BYTES"),
    ),
    # ---------------------------------------------------------------- the webhook: what it accepts
    Case(
        "webhook-form-encoded",
        _webhook(body=b"payload=%7B%7D", content_type="application/x-www-form-urlencoded"),
        Rejected(415, "application/json"),
    ),
    Case("webhook-malformed-json", _webhook(body=b'{"ref": "refs/heads/main",'), Rejected(400, "malformed JSON")),
    Case("webhook-json-array", _webhook(body=[1, 2, 3]), Rejected(400, "not a JSON object")),
    Case("webhook-not-utf8", _webhook(body=b"\xff\xfe{}"), Rejected(400, "malformed JSON")),
    Case("webhook-no-event-header", _webhook(event=None), Rejected(400, "X-GitHub-Event")),
    Case("webhook-event-header-injection", _webhook(event="push\nadmin"), Rejected(400, "X-GitHub-Event")),
    Case("webhook-no-delivery-header", _webhook(delivery=""), Rejected(400, "X-GitHub-Delivery")),
    Case("webhook-push-without-after", _webhook(body=_push_without_after), Rejected(400, "after")),
    Case("webhook-push-after-not-a-sha", _webhook(body=_push(after="main")), Rejected(400, "after")),
    Case(
        "webhook-ping",
        _webhook(event="ping", body={"zen": "Keep it logically awesome.", "hook_id": 1}),
        Answered(200, "webhook ping", "pong"),
    ),
    Case(
        "webhook-issues-event",
        _webhook(event="issues", body={"action": "opened"}),
        Answered(202, "webhook delivery ignored", "ignored"),
    ),
    Case(
        "webhook-push-other-branch",
        _webhook(body=_push(ref="refs/heads/feature/x")),
        Answered(202, "webhook delivery ignored", "ignored"),
    ),
    Case(
        "webhook-push-tag",
        _webhook(body=_push(ref="refs/tags/v1.0.0")),
        Answered(202, "webhook delivery ignored", "ignored"),
    ),
    Case(
        "webhook-push-branch-deleted",
        _webhook(body=_push(deleted=True, after="0" * 40, head_commit=None)),
        Answered(202, "webhook delivery ignored", "ignored"),
    ),
    Case(
        "webhook-push-other-repository",
        _webhook(body=_push_other_repository),
        Answered(202, "webhook delivery ignored", "ignored"),
    ),
    Case(
        "webhook-redelivery-same-delivery-id",
        _pushed_once.send,
        Answered(202, "webhook redelivery: the event was already published, returning the first response", "accepted"),
        prepare=_pushed_once.prepare,
    ),
    Case(
        "webhook-replayed-body-new-delivery-id",
        _replayed_body.send,
        Duplicate(webhook_status=202),
        prepare=_replayed_body.prepare,
    ),
    # A push of a commit with the seed's tree, on the seed's data: the training cache serves it.
    Case("webhook-valid-push", _valid_github_push, OneRun(webhook_status=202, cached=True)),
    # ---------------------------------------------------------------- S3: which objects are data
    Case("s3-outside-the-prefix", _upload("other/train.csv"), Filtered()),
    Case("s3-folder-marker", _upload("datasets/new-folder/", b""), Filtered()),
    Case("s3-zero-byte-object", _upload("datasets/empty.csv", b""), Filtered()),
    Case("s3-another-bucket", _upload_to_another_bucket, Filtered(audited=False)),
    Case("s3-object-deleted", _delete, Filtered()),
    Case("s3-restore-completed", _put_s3_event("Object Restore Completed", "datasets/archived.csv"), Filtered()),
    Case(
        "s3-post-object-reason", _put_s3_event("Object Created", "datasets/form.csv", reason="POST Object"), Filtered()
    ),
    Case(
        "s3-no-version-id",
        _put_s3_event("Object Created", "datasets/unversioned.csv", object_version_id=None),
        Ignored("has no version id"),
    ),
    # A copy of the seed's object holds its bytes: the same data, so the training cache serves it.
    Case("s3-copy-object", _copy, OneRun(cached=True)),
    Case("s3-multipart-upload", _multipart, OneRun()),
    Case("s3-unicode-key", _upload(UNICODE_KEY), OneRun(also=_record_has(data_key=UNICODE_KEY))),
    Case(
        "s3-spaces-and-plus-key", _upload(SPACES_AND_PLUS_KEY), OneRun(also=_record_has(data_key=SPACES_AND_PLUS_KEY))
    ),
    Case("s3-literal-percent-key", _upload(PERCENT_KEY), OneRun(also=_record_has(data_key=PERCENT_KEY))),
    Case("s3-1000-byte-key", _upload(HUGE_KEY), OneRun(also=_staged_under_the_file_name_limit(HUGE_KEY))),
    # ---------------------------------------------------------------- code pushes and manual runs as events
    Case(
        "codecommit-tag",
        _codecommit(referenceType="tag", referenceName="v1", referenceFullName="refs/tags/v1"),
        Filtered(),
    ),
    Case("codecommit-branch-deleted", _codecommit(event="referenceDeleted"), Filtered()),
    Case("codecommit-other-branch", _codecommit(referenceName="dev", referenceFullName="refs/heads/dev"), Filtered()),
    Case("codecommit-other-repository", _codecommit(repositoryName="mallory-code"), Filtered()),
    Case("codecommit-no-commit-id", _codecommit(commitId=None), Ignored("commitId")),
    Case("codecommit-abbreviated-commit", _codecommit(commitId="3e5b0c1"), Ignored("3e5b0c1")),
    Case("github-event-branch-deleted", _github_event(deleted=True), Filtered()),
    Case("github-event-without-after", _github_event(after=None), Ignored("after")),
    Case("manual-abbreviated-commit", _manual(commit="3e5b0c1"), Ignored("commit")),
    Case("manual-another-bucket", _manual(bucket="mallory-data"), Ignored("not the data bucket")),
    Case("manual-no-version", _manual(versionId=None), Ignored("versionId")),
    Case("manual-same-commit-and-data", _manual(), Duplicate()),
    Case(
        "manual-object-outside-the-prefix",
        _manual_on_object_outside_the_prefix,
        OneRun(also=_record_has(trigger_kind="manual", data_key="manual/breast-cancer.csv")),
    ),
]


# ----------------------------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def catalogue(
    emulator: Emulator, tmp_path_factory: pytest.TempPathFactory, built_images: dict[str, BuiltImage]
) -> Iterator[Catalogue]:
    """The stack, provisioned once for the catalogue, with HEAD's image in ECR and trained on the sample data."""
    work = tmp_path_factory.mktemp("catalogue")
    repository = work / "training-code"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(PROJECT_ROOT), str(repository)], check=True, timeout=60)
    data = write_breast_cancer_csv(work / "breast-cancer.csv")
    emulator.reset()
    stack = provision_for_test(emulator, repository=repository)
    pipeline = LocalPipeline(emulator, stack, repository, runs_dir=work / "runs")
    put_image_of_head(pipeline, built_images)
    marker = pipeline.execution_marker()
    pipeline.push_commit(git(repository, "rev-parse", "HEAD"))
    key, version = pipeline.upload_data(data, f"{pipeline.data_prefix}seed.csv")
    seeded = [pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS) for arn in pipeline.started_since(marker, 2, 30)]
    statuses = sorted(str((run.record or {}).get("status")) for run in seeded)
    assert statuses == ["SKIPPED", "SUCCEEDED"], "the seed must train, or every OneRun case would build"
    yield Catalogue(pipeline, data, repository, key, version)
    wait_for_quiet(emulator)


def test_the_catalogue_has_at_least_30_cases_with_unique_ids() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_or_malformed_trigger_has_exactly_its_outcome(catalogue: Catalogue, case: Case) -> None:
    """Given the seeded stack, when the input is sent through its real path, then the outcome is exactly the
    catalogue's: rejected with a status, answered, filtered, ignored with a logged reason, a recorded duplicate,
    or exactly one run with one training job."""
    if case.prepare is not None:
        case.prepare(catalogue)
    before = Before.take(catalogue)

    sent = case.send(catalogue)

    case.expect.check(catalogue, before, sent)

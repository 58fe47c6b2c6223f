"""The fault matrix: every Task state of the deployed definition × {transient error, permanent error, timeout}.

Each scenario arms a fault on the state's integration (sagepipe.local.stepfunctions.faults), starts the kind of run
that
reaches the state through the real event path, and checks the one outcome the workflow promises:

- transient: the error is one the state's Retry names; the call fails twice (once for the integrations that
  start a job: the job starts, then the response is lost) and the run ends as it would without the fault.
  The training job gets a fresh name on the retry.
- permanent: the error is not retried; the run goes through the failure branch and ends Failed, with a
  terminal record (status, failed stage, error, cause) and exactly one failure notification. A record that
  was already final (SUCCEEDED, SKIPPED) stays as it was.
- timeout: every call hangs past the state's timeout (shortened for this run by the local clock); States.Timeout
  is retried where the Retry names it, then fails like a permanent error. The hung calls are then let through:
  late writers, which must not change a final record.

For the failure branch's own states (RecordFailure, NotifyFailure), the run first fails at StageTrainingData;
when one of the two fails, the other still happens and the run still ends Failed. When SealRecord fails, the
record stays final as it was and its outcome is still notified, saying the ledger was not written; the
execution then ends Failed (sagepipe.SealRecordFailed). A hung seal that completes late seals the record.

RecordCachePackage is reached by a CACHED run that registers its model: before each of its scenarios, the seed's
package is approved (the champion), a worse model trains on new data and is REJECTED by it, and the champion is
rejected again; the scenario's run asks for that training once more (a re-run request), hits the REJECTED run,
passes the gate with no champion left, and registers.

Retry waits are scaled by 1/1000 (the local clock records the waits the definition asked for); the definition
is the deployed one. The results are printed as a table at the end of the test session.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from common.audit_digests import LEDGER_FIELDS
from sagepipe import error_names
from sagepipe.local.core.emulator import Emulator
from sagepipe.local.git import git
from sagepipe.local.process import poll_until
from sagepipe.local.runner import LocalPipeline, RunResult
from sagepipe.local.sample_data import write_breast_cancer_csv
from sagepipe.local.stepfunctions import faults
from sagepipe.local.stepfunctions.faults import Fault, InjectedCall
from sagepipe.template import PROJECT_ROOT
from tests.local import fault_matrix_report
from tests.local.conftest import BuiltImage, provision_for_test, put_image_of_head, wait_for_quiet

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS = 300.0
RETRY_SCALE = 0.001
HANG_TIMEOUT_SECONDS = 0.3
NOTIFICATION_WAIT_SECONDS = 10.0
IDENTITY = ("-c", "user.name=sagepipe-test", "-c", "user.email=test@example.com")

DEFINITION = json.loads((PROJECT_ROOT / "statemachine" / "pipeline.asl.json").read_text(encoding="utf-8"))
TASKS: dict[str, dict[str, Any]] = {
    name: state for name, state in DEFINITION["States"].items() if state["Type"] == "Task"
}

Kind = Literal["transient", "permanent", "timeout"]
Route = Literal[
    "data",
    "cached",
    "cached-register",
    "retag",
    "build",
    "duplicate",
    "skip",
    "marker",
    "manual",
    "failure",
    "rejected",
]

ROUTE_OF: dict[str, Route] = {
    "NormaliseTrigger": "data",
    "RecordLatestPointer": "data",
    "ClaimRun": "data",
    "OpenRunRecord": "data",
    "FindImage": "data",
    "ComputeCacheKey": "data",
    "RecordCacheKey": "data",
    "RecordCached": "cached",
    "NotifyCached": "cached",
    "RecordCachePackage": "cached-register",
    "StageTrainingData": "data",
    "Train": "data",
    "DigestArtifact": "data",
    "EvaluateGate": "data",
    "RegisterModelPackage": "data",
    "RecordSuccess": "data",
    "NotifySuccess": "data",
    "SealRecord": "data",
    "ReadImageManifest": "retag",
    "TagImageWithCommit": "retag",
    "BuildImage": "build",
    "FindClaimOwner": "duplicate",
    "RecordDuplicate": "duplicate",
    "RecordSkipped": "skip",
    "NotifySkipped": "skip",
    "StageDataset": "marker",
    "StageTrainingDataInParts": "manual",
    "RecordFailure": "failure",
    "NotifyFailure": "failure",
    "RecordRejected": "rejected",
    "NotifyRejected": "rejected",
}
"""The run that reaches each Task state."""

TRANSIENT_ERRORS = {
    "lambda:invoke": "TooManyRequestsException",
    "dynamodb:putItem": "ProvisionedThroughputExceededException",
    "dynamodb:updateItem": "ProvisionedThroughputExceededException",
    "dynamodb:getItem": "ProvisionedThroughputExceededException",
    "sns:publish": "Throttled",
    "aws-sdk:ecr:describeImages": "ThrottlingException",
    "aws-sdk:ecr:batchGetImage": "ThrottlingException",
    "aws-sdk:ecr:putImage": "ThrottlingException",
    "aws-sdk:s3:copyObject": "SlowDown",
    "codebuild:startBuild": "ThrottlingException",
    "sagemaker:createTrainingJob": "ThrottlingException",
    "aws-sdk:sagemaker:createModelPackage": "ThrottlingException",
}
"""A transient code each service really answers (docs/error-names.md); ECR, S3, CodeBuild and SageMaker do not
model theirs, so Step Functions reports the client's base exception (Ecr.EcrException, S3.S3Exception, ...)."""
PERMANENT_ERRORS = {
    "lambda:invoke": "ResourceNotFoundException",
    "dynamodb:putItem": "ResourceNotFoundException",
    "dynamodb:updateItem": "ResourceNotFoundException",
    "dynamodb:getItem": "ResourceNotFoundException",
    "sns:publish": "AuthorizationError",
    "aws-sdk:ecr:describeImages": "RepositoryNotFoundException",
    "aws-sdk:ecr:batchGetImage": "RepositoryNotFoundException",
    "aws-sdk:ecr:putImage": "RepositoryNotFoundException",
    "aws-sdk:s3:copyObject": "NoSuchKey",
    "codebuild:startBuild": "ResourceNotFoundException",
    "sagemaker:createTrainingJob": "ResourceNotFound",
    "aws-sdk:sagemaker:createModelPackage": "ResourceLimitExceeded",
}
"""A permanent code each service models (so Step Functions gives it its own name, which no Retry lists). An
unmodelled permanent code (AccessDeniedException) shares the generic name with unmodelled throttling, which is
retried: docs/error-names.md."""
REJECT_EVERY_MODEL = json.dumps({"validation:roc_auc": {">": 1}})
"""The rejecting stack's GateThresholds: no ROC AUC exceeds 1, so every run that trains ends REJECTED."""
WORSE = {"n_estimators": "1", "max_depth": "1", "learning_rate": "0.1"}
"""Hyperparameters of a model worse than the seed's (one stump against the 25 trees of the tests' QUICK_MODEL):
REJECTED while the seed's model is the champion."""
JOB_STARTING = {"codebuild:startBuild", "sagemaker:createTrainingJob"}
PRIMARY_FAILURE = Fault("aws-sdk:s3:copyObject", error="NoSuchKey", times=None, state="StageTrainingData")
"""How the failure route fails first, so that the failure branch runs."""
NORMAL_END: dict[Route, tuple[str, str, list[str]]] = {
    "data": ("SUCCEEDED", "SUCCEEDED", ["SUCCEEDED"]),
    "retag": ("SUCCEEDED", "CACHED", ["CACHED"]),
    "cached": ("SUCCEEDED", "CACHED", ["CACHED"]),
    "cached-register": ("SUCCEEDED", "CACHED", ["CACHED"]),
    "build": ("SUCCEEDED", "SUCCEEDED", ["SUCCEEDED"]),
    "marker": ("SUCCEEDED", "SUCCEEDED", ["SUCCEEDED"]),
    "manual": ("SUCCEEDED", "SUCCEEDED", ["SUCCEEDED"]),
    "duplicate": ("SUCCEEDED", "DUPLICATE", []),
    "skip": ("SUCCEEDED", "SKIPPED", ["SKIPPED"]),
    "failure": ("FAILED", "FAILED", ["FAILED"]),
    "rejected": ("SUCCEEDED", "REJECTED", ["REJECTED"]),
}
"""Execution status, record status and notification statuses of each route's run when nothing else goes wrong."""


def integration_of(state: str) -> str:
    resource = str(TASKS[state]["Resource"]).removeprefix("arn:aws:states:::")
    return resource.removesuffix(".sync")


def sfn_error_name(integration: str, code: str) -> str:
    """How Step Functions names an integration's error code (sagepipe.error_names)."""
    return error_names.error_name(integration, code)


def retried_errors(state: str) -> set[str]:
    return {name for retrier in TASKS[state].get("Retry", []) for name in retrier["ErrorEquals"]}


def max_attempts(state: str, error: str) -> int:
    for retrier in TASKS[state].get("Retry", []):
        if error in retrier["ErrorEquals"] or "States.ALL" in retrier["ErrorEquals"]:
            return 1 + int(retrier.get("MaxAttempts", 3))
    return 1


# ----------------------------------------------------------------------------------------------- stacks


@dataclass
class MatrixStack:
    """One provisioned stack, seeded for its routes, with a queue subscribed to the notifications topic."""

    kind: str
    pipeline: LocalPipeline
    repository: Path
    data: Path
    queue_url: str
    seeded_key: str | None = None
    seeded_version: str | None = None
    seeded_run: str | None = None
    rejected_request: dict[str, Any] | None = None
    """The re-run request whose training was REJECTED last (prepare_cached_register): asked for again, it hits."""

    def new_commit(self, message: str) -> str:
        """A fresh commit with HEAD's tree (HEAD itself stays the seeded commit): the same image tree, so its run
        reuses HEAD's image and only tags it with the commit."""
        head = git(self.repository, "rev-parse", "HEAD")
        return git(self.repository, *IDENTITY, "commit-tree", f"{head}^{{tree}}", "-p", head, "-m", message)

    def new_image_commit(self, message: str) -> str:
        """A fresh commit whose container/ differs from HEAD's (one added file): a new image tree, so its run
        builds. HEAD and the index stay as they are."""
        head = git(self.repository, "rev-parse", "HEAD")
        blob = (
            subprocess.run(
                ["git", "-C", str(self.repository), "hash-object", "-w", "--stdin"],
                input=message.encode(),
                capture_output=True,
                check=True,
                timeout=60,
            )
            .stdout.decode()
            .strip()
        )
        index = self.repository / ".git" / f"matrix-index-{uuid.uuid4().hex}"
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}
        try:
            for args in (
                ["read-tree", head],
                ["update-index", "--add", "--cacheinfo", f"100644,{blob},container/matrix-{uuid.uuid4().hex[:8]}.txt"],
            ):
                subprocess.run(["git", "-C", str(self.repository), *args], check=True, env=env, timeout=60)
            tree = (
                subprocess.run(
                    ["git", "-C", str(self.repository), "write-tree"],
                    check=True,
                    env=env,
                    capture_output=True,
                    timeout=60,
                )
                .stdout.decode()
                .strip()
            )
        finally:
            index.unlink(missing_ok=True)
        return git(self.repository, *IDENTITY, "commit-tree", tree, "-p", head, "-m", message)

    def drain_notifications(self) -> None:
        sqs = self.pipeline.emulator.client("sqs")
        for _ in range(100):  # bounded
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return
            for message in messages:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def notifications_for(self, run_id: str) -> list[dict[str, Any]]:
        """Every notification about this run, once its execution has ended.

        The emulator's SNS delivers to the SQS subscriber inside the Publish call, so when the execution has
        ended every notification its states published is already in the queue: the queue is read until it
        is empty (bounded), and a second notification would be found with the first."""
        sqs = self.pipeline.emulator.client("sqs")
        found: list[dict[str, Any]] = []

        def drained() -> bool:
            response = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = response.get("Messages", [])
            for message in messages:
                body = json.loads(message["Body"])
                if body.get("MessageAttributes", {}).get("run_id", {}).get("Value") == run_id:
                    found.append(body)
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            return not messages

        assert poll_until(drained, timeout=NOTIFICATION_WAIT_SECONDS, interval=0), "the queue never emptied"
        return found


class Stacks:
    """The matrix needs four stacks (seeded, code-only, marker mode, and one whose gate rejects every model); it
    builds each when first needed and reprovisions when the next scenario needs another (the scenarios are ordered
    to do that rarely)."""

    def __init__(self, emulator: Emulator, work: Path, built_images: dict[str, BuiltImage]) -> None:
        self.emulator = emulator
        self.work = work
        self.built_images = built_images
        self.current: MatrixStack | None = None
        self.data = write_breast_cancer_csv(work / "breast-cancer.csv")
        self._variants = 0

    def new_data(self) -> Path:
        """The seed data without one row, a different row each call: new bytes, so the training cache misses
        and the run trains (the seed data itself is the `cached` route's)."""
        self._variants += 1
        lines = self.data.read_text(encoding="utf-8").splitlines(keepends=True)
        variant = self.work / f"variant-{self._variants}.csv"
        variant.write_text("".join(lines[: self._variants] + lines[self._variants + 1 :]), encoding="utf-8")
        return variant

    def use(self, kind: str) -> MatrixStack:
        if self.current is not None and self.current.kind == kind:
            return self.current
        if self.current is not None:
            wait_for_quiet(self.emulator)
        self.current = self._provision(kind)
        return self.current

    def _provision(self, kind: str) -> MatrixStack:
        repository = self.work / f"training-code-{kind}"
        if not repository.exists():
            subprocess.run(
                ["git", "clone", "--quiet", "--shared", str(PROJECT_ROOT), str(repository)], check=True, timeout=60
            )
        self.emulator.reset()
        parameters = {"DataTriggerMode": "marker"} if kind == "marker" else {}
        if kind == "rejecting":
            parameters = {"GateThresholds": REJECT_EVERY_MODEL}
        stack = provision_for_test(self.emulator, parameters, repository=repository)
        pipeline = LocalPipeline(self.emulator, stack, repository, runs_dir=self.work / "runs")
        sqs = self.emulator.client("sqs")
        queue_url = sqs.create_queue(QueueName=f"matrix-{kind}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.emulator.client("sns").subscribe(
            TopicArn=stack.outputs["NotificationsTopicArn"], Protocol="sqs", Endpoint=queue_arn
        )
        matrix_stack = MatrixStack(kind, pipeline, repository, self.data, queue_url)
        head = git(repository, "rev-parse", "HEAD")
        if kind in {"seeded", "marker", "rejecting"}:
            # The seed run trains on HEAD's image, built once per session: only the code-only stack's scenarios
            # (the build's own faults among them) build.
            put_image_of_head(pipeline, self.built_images)
            marker = pipeline.execution_marker()
            pipeline.push_commit(head)
            if kind in {"seeded", "rejecting"}:
                key, version = pipeline.upload_data(self.data, f"{pipeline.data_prefix}seed.csv")
                matrix_stack.seeded_key, matrix_stack.seeded_version = key, version
            else:
                _upload_dataset(pipeline, self.data, "seed")
            seeded = [pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS) for arn in pipeline.started_since(marker, 2)]
            ended = "REJECTED" if kind == "rejecting" else "SUCCEEDED"
            assert sorted(str((run.record or {}).get("status")) for run in seeded) == sorted(["SKIPPED", ended])
            matrix_stack.seeded_run = next(run.run_id for run in seeded if (run.record or {}).get("status") == ended)
        return matrix_stack


def _upload_dataset(pipeline: LocalPipeline, data: Path, name: str) -> None:
    s3 = pipeline.emulator.client("s3")
    folder = f"{pipeline.data_prefix}{name}/"
    s3.put_object(Bucket=pipeline.data_bucket, Key=f"{folder}part-0001.csv", Body=data.read_bytes())
    s3.put_object(Bucket=pipeline.data_bucket, Key=f"{folder}_SUCCESS", Body=b"")


# ----------------------------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    state: str
    kind: Kind

    @property
    def route(self) -> Route:
        return ROUTE_OF[self.state]

    @property
    def integration(self) -> str:
        return integration_of(self.state)

    @property
    def stack_kind(self) -> str:
        return {"skip": "code-only", "marker": "marker", "rejected": "rejecting"}.get(self.route, "seeded")

    def fault(self) -> Fault:
        if self.kind == "transient":
            starts_a_job = self.integration in JOB_STARTING
            return Fault(
                self.integration,
                error=TRANSIENT_ERRORS[self.integration],
                times=1 if starts_a_job else 2,
                state=self.state,
                after_call=starts_a_job,
            )
        if self.kind == "permanent":
            return Fault(self.integration, error=PERMANENT_ERRORS[self.integration], times=None, state=self.state)
        return Fault(self.integration, hang=True, times=None, state=self.state, timeout_seconds=HANG_TIMEOUT_SECONDS)

    def __str__(self) -> str:
        return f"{self.state}-{self.kind}"


ROUTE_ORDER: dict[Route, int] = {
    "data": 0,
    "cached": 1,
    "cached-register": 2,
    "duplicate": 3,
    "manual": 4,
    "failure": 5,
    "retag": 6,
    "build": 7,
    "skip": 8,
    "marker": 9,
    "rejected": 10,
}
"""Scenarios sharing a stack run together. Builds come last on the seeded stack: a build that fails leaves
the latest commit without an image, and every later data run would build it."""
SCENARIOS = sorted(
    (Scenario(state, kind) for state in TASKS for kind in ("transient", "permanent", "timeout")),
    key=lambda item: (ROUTE_ORDER[item.route], list(TASKS).index(item.state)),
)


@dataclass
class Observed:
    result: RunResult
    record: dict[str, Any] | None
    notifications: list[dict[str, Any]]
    attempts: int
    retry_waits: list[float]
    injected: list[InjectedCall]
    record_after_late_calls: dict[str, Any] | None = None
    late_results: list[str] = field(default_factory=list)


def start_run(stacks: Stacks, stack: MatrixStack, route: Route) -> str:
    pipeline = stack.pipeline
    marker = pipeline.execution_marker()
    name = uuid.uuid4().hex[:8]
    if route in {"data", "failure", "rejected"}:
        pipeline.upload_data(stacks.new_data(), f"{pipeline.data_prefix}matrix-{name}.csv")
    elif route == "cached":
        # The seed's bytes under a new key: the seed run's key, which SUCCEEDED.
        pipeline.upload_data(stack.data, f"{pipeline.data_prefix}matrix-{name}.csv")
    elif route == "cached-register":
        # After prepare_cached_register: the REJECTED training asked for again (a new request: its own claim).
        assert stack.rejected_request is not None
        pipeline.put_event(
            "sagepipe.manual", "Manual Run Requested", stack.rejected_request | {"rerunRequestId": str(uuid.uuid4())}
        )
    elif route == "retag":
        # After prepare_retag: a commit with HEAD's tree, so its run reuses the image and tags it with the commit;
        # its key (same image, same data) is then the prepared run's: CACHED.
        pipeline.push_commit(stack.new_commit(f"matrix {name}"))
    elif route == "skip":
        pipeline.push_commit(stack.new_commit(f"matrix {name}"))
    elif route == "build":
        pipeline.push_commit(stack.new_image_commit(f"matrix {name}"))
    elif route == "manual":
        # A manual run names no size, so its version is staged in parts. Outside the prefix, the upload starts nothing.
        key = f"manual/matrix-{name}.csv"
        version = pipeline.emulator.client("s3").put_object(
            Bucket=pipeline.data_bucket, Key=key, Body=stacks.new_data().read_bytes()
        )["VersionId"]
        pipeline.put_event(
            "sagepipe.manual",
            "Manual Run Requested",
            {
                "commit": git(stack.repository, "rev-parse", "HEAD"),
                "requestedBy": "fault-matrix",
                "data": {"bucket": pipeline.data_bucket, "key": key, "versionId": version},
            },
        )
    elif route == "duplicate":
        pipeline.put_event(
            "sagepipe.manual",
            "Manual Run Requested",
            {
                "commit": git(stack.repository, "rev-parse", "HEAD"),
                "requestedBy": "fault-matrix",
                "data": {"bucket": pipeline.data_bucket, "key": stack.seeded_key, "versionId": stack.seeded_version},
            },
        )
    else:
        _upload_dataset(pipeline, stack.data, f"matrix-{name}")
    (arn,) = pipeline.started_since(marker, timeout=30)
    return arn


def prepare_retag(stacks: Stacks, stack: MatrixStack) -> None:
    """Before the retag route's faults are armed: new data, whose own run (with the latest commit, tagged there
    and then if an earlier scenario could not) trains on it, so that the retag run's key is known to be that run's."""
    pipeline = stack.pipeline
    marker = pipeline.execution_marker()
    pipeline.upload_data(stacks.new_data(), f"{pipeline.data_prefix}matrix-{uuid.uuid4().hex[:8]}.csv")
    (arn,) = pipeline.started_since(marker, timeout=30)
    prepared = pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS)
    assert (prepared.record or {}).get("status") == "SUCCEEDED", prepared.cause


def prepare_cached_register(stacks: Stacks, stack: MatrixStack) -> None:
    """Before the cached-register route's faults are armed: a model with no package that passes the gate once the
    champion is gone. The seed's package (version 1) is approved, a worse model trains on new data (a re-run
    request with WORSE) and is REJECTED by it, then version 1 is rejected: no champion is left."""
    pipeline = stack.pipeline
    sagemaker = pipeline.emulator.client("sagemaker")
    group = pipeline.stack.outputs["ModelPackageGroupName"]
    seed_package = next(
        item["ModelPackageArn"]
        for item in sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
        if item["ModelPackageArn"].endswith("/1")
    )
    sagemaker.update_model_package(ModelPackageArn=seed_package, ModelApprovalStatus="Approved")
    key = f"manual/matrix-{uuid.uuid4().hex[:8]}.csv"  # outside the data prefix: the upload starts nothing
    version = pipeline.emulator.client("s3").put_object(
        Bucket=pipeline.data_bucket, Key=key, Body=stacks.new_data().read_bytes()
    )["VersionId"]
    parameters = pipeline.stack.parameters
    request: dict[str, Any] = {
        "commit": git(stack.repository, "rev-parse", "HEAD"),
        "requestedBy": "fault-matrix",
        "data": {"bucket": pipeline.data_bucket, "key": key, "versionId": version},
        "rerunOf": stack.seeded_run,
        "rerunRequestId": str(uuid.uuid4()),
        "training": {
            "instanceType": parameters["TrainingInstanceType"],
            "instanceCount": 1,
            "volumeSizeGb": int(parameters["TrainingVolumeSizeGb"]),
            "maxRuntimeSeconds": int(parameters["TrainingMaxRuntimeSeconds"]),
            "hyperparameters": WORSE,
        },
    }
    marker = pipeline.execution_marker()
    pipeline.put_event("sagepipe.manual", "Manual Run Requested", request)
    (arn,) = pipeline.started_since(marker, timeout=30)
    source = pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS)
    assert (source.record or {}).get("status") == "REJECTED", source.cause
    sagemaker.update_model_package(ModelPackageArn=seed_package, ModelApprovalStatus="Rejected")
    stack.rejected_request = request | {"rerunOf": source.run_id}


def attempts_of(result: RunResult, state: str) -> int:
    """How many times the state called its integration: TaskScheduled events while the state was current."""
    current, attempts = None, 0
    for event in result.history:
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
        elif event["type"] == "TaskScheduled" and current == state:
            attempts += 1
    return attempts


def run(stacks: Stacks, scenario: Scenario) -> Observed:
    stack = stacks.use(scenario.stack_kind)
    runtime = faults.controls()
    runtime.faults.clear()
    runtime.clock.reset()
    runtime.clock.retry_scale = RETRY_SCALE
    if scenario.route == "retag":
        prepare_retag(stacks, stack)
    if scenario.route == "cached-register":
        prepare_cached_register(stacks, stack)
    stack.drain_notifications()
    if scenario.route == "failure":
        runtime.faults.inject(PRIMARY_FAILURE)
    runtime.faults.inject(scenario.fault())

    arn = start_run(stacks, stack, scenario.route)
    result = stack.pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS)
    notifications = stack.notifications_for(result.run_id)
    observed = Observed(
        result=result,
        record=result.record,
        notifications=notifications,
        attempts=attempts_of(result, scenario.state),
        retry_waits=list(runtime.clock.retry_waits),
        injected=[call for call in runtime.faults.calls if call.state == scenario.state],
    )
    hung = [call for call in observed.injected if call.outcome == "hung"]
    if hung:
        # The state gave up on them; now they go through, late. Each outcome is kept.
        runtime.faults.release_hung_calls()
        for call in hung:
            assert call.late_done.wait(timeout=60), f"a late {call.integration} call of {call.state} never finished"
        observed.late_results = [str(call.late_result) for call in hung]
        observed.record_after_late_calls = stack.pipeline.record(arn)
    runtime.faults.clear()
    runtime.clock.reset()
    return observed


# ----------------------------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Expected:
    execution: str
    execution_error: str | None
    record_status: str | None
    failed_stage: str | None
    record_error: str | None
    notifications: list[str]
    attempts: int


def expected(scenario: Scenario) -> Expected:
    state, route = scenario.state, scenario.route
    execution, record_status, notifications = NORMAL_END[route]
    primary = "StageTrainingData" if route == "failure" else None
    primary_error = sfn_error_name(PRIMARY_FAILURE.integration, str(PRIMARY_FAILURE.error))
    if scenario.kind == "transient":
        fault = scenario.fault()
        return Expected(
            execution,
            f"sagepipe.{primary}Failed" if primary else None,
            record_status,
            primary,
            primary_error if primary else None,
            notifications,
            attempts=(fault.times or 0) + 1,
        )
    error = (
        sfn_error_name(scenario.integration, PERMANENT_ERRORS[scenario.integration])
        if scenario.kind == "permanent"
        else "States.Timeout"
    )
    attempts = max_attempts(state, error) if error in retried_errors(state) else 1
    if route == "failure":
        if state == "RecordFailure":
            # The record cannot be written: it stays RUNNING, and the notification says so.
            return Expected("FAILED", "sagepipe.StageTrainingDataFailed", "RUNNING", None, None, ["FAILED"], attempts)
        return Expected("FAILED", "sagepipe.StageTrainingDataFailed", "FAILED", primary, primary_error, [], attempts)
    if state == "SealRecord":
        # The record is final and stays as it is; the outcome is notified (saying the ledger was not written),
        # then the execution fails.
        return Expected("FAILED", "sagepipe.SealRecordFailed", record_status, None, None, notifications, attempts)
    if state in {"NotifySuccess", "NotifySkipped", "NotifyRejected", "NotifyCached"}:
        # The record was already final: it is kept; the failure is notified.
        return Expected("FAILED", f"sagepipe.{state}Failed", record_status, None, None, ["FAILED"], attempts)
    return Expected("FAILED", f"sagepipe.{state}Failed", "FAILED", state, error, ["FAILED"], attempts)


# ----------------------------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def stacks(
    emulator: Emulator, tmp_path_factory: pytest.TempPathFactory, built_images: dict[str, BuiltImage]
) -> Iterator[Stacks]:
    provided = Stacks(emulator, tmp_path_factory.mktemp("fault-matrix"), built_images)
    yield provided
    faults.controls().faults.clear()
    faults.controls().clock.reset()
    wait_for_quiet(emulator)


def test_the_matrix_covers_every_task_state_with_errors_its_retry_does_and_does_not_name() -> None:
    """Every Task state of the definition has a route; its transient error is one its Retry names, and its
    permanent error is one it does not (so the matrix tests the definition, not a guess)."""
    assert set(ROUTE_OF) == set(TASKS), f"Task states without a route: {set(TASKS) - set(ROUTE_OF)}"
    for state in TASKS:
        integration = integration_of(state)
        retried = retried_errors(state)
        assert sfn_error_name(integration, TRANSIENT_ERRORS[integration]) in retried, state
        assert sfn_error_name(integration, PERMANENT_ERRORS[integration]) not in retried, state
        assert "States.ALL" not in retried, f"{state} retries everything, permanent errors included"
    assert len(SCENARIOS) == 3 * len(TASKS)


@pytest.mark.parametrize(
    "scenario",
    [pytest.param(item, id=str(item)) for item in SCENARIOS],
)
def test_fault(stacks: Stacks, scenario: Scenario, request: pytest.FixtureRequest) -> None:
    """Given the fault on the state's integration, when the run that reaches the state starts, then it ends in
    exactly the outcome the matrix expects (see the module docstring)."""
    want = expected(scenario)

    seen = run(stacks, scenario)

    result = seen.result
    request.node.user_properties.append(
        (fault_matrix_report.PROPERTY, fault_matrix_report.row(SCENARIOS.index(scenario), scenario, seen, want))
    )
    assert result.status == want.execution, f"{result.status}: {result.error} {result.cause}"
    assert result.error == want.execution_error, result.cause
    assert seen.attempts == want.attempts, f"{scenario.state} was called {seen.attempts} times"
    if want.record_status is None:
        assert seen.record is None
    else:
        assert seen.record is not None, "the run has no record"
        assert seen.record["status"] == want.record_status, seen.record
    if want.failed_stage is not None:
        assert seen.record is not None
        assert seen.record["failed_stage"] == want.failed_stage
        assert seen.record["error"] == want.record_error
        assert seen.record["cause"], "a failed record says why"
        assert seen.record["finished_at"]
    check_notifications(scenario, seen, want)

    if scenario.kind == "transient":
        # The definition's backoff was asked for, once per retry (and scaled down locally).
        assert len(seen.retry_waits) >= (scenario.fault().times or 0)
        if scenario.integration == "sagemaker:createTrainingJob":
            jobs = (
                stacks.use("seeded")
                .pipeline.emulator.client("sagemaker")
                .list_training_jobs(NameContains=result.run_id[:20], MaxResults=100)["TrainingJobSummaries"]
            )
            names = sorted(job["TrainingJobName"] for job in jobs)
            assert len(names) == 2, names
            assert (names[0][-2:], names[1][-2:]) == ("a0", "a1"), "each attempt names its job afresh"
            assert seen.record is not None
            assert seen.record["training_job_name"] == names[1]

    if scenario.kind == "timeout":
        check_late_calls(scenario, seen, want)


def check_notifications(scenario: Scenario, seen: Observed, want: Expected) -> None:
    """The run's notifications: their statuses, and what a failure's, or a failed seal's, says."""
    statuses = [item["MessageAttributes"]["status"]["Value"] for item in seen.notifications]
    assert statuses == want.notifications, [item.get("Subject") for item in seen.notifications]
    for message in seen.notifications:
        if message["MessageAttributes"]["status"]["Value"] == "FAILED":
            assert "FAILED" in message["Subject"]
            assert seen.result.run_id[:8] in message["Subject"]
            assert "Execution:" in message["Message"]
            if scenario.state == "RecordFailure" and scenario.kind != "transient":
                assert "Record: NOT written" in message["Message"]
            if scenario.state in {"NotifySuccess", "NotifySkipped", "NotifyRejected"} and scenario.kind != "transient":
                assert "Record: kept as it was" in message["Message"]
        if scenario.state == "SealRecord" and scenario.kind != "transient":
            assert "Ledger: NOT written" in message["Message"]
            assert message["MessageAttributes"]["ledger"]["Value"] == "not-sealed"
    if scenario.state == "SealRecord" and scenario.kind != "transient":
        assert seen.record is not None
        assert "ledger_sha256" not in seen.record, "a failed seal left a ledger pointer"


def check_late_calls(scenario: Scenario, seen: Observed, want: Expected) -> None:
    """Late writers: when the hung calls finally go through, a final record does not change (but for the late
    seal, which seals it)."""
    terminal = want.record_status in {"SUCCEEDED", "REJECTED", "FAILED", "SKIPPED", "DUPLICATE", "STOPPED"}
    if scenario.state == "SealRecord":
        # The late seal completes: it adds the ledger pointers, and nothing else.
        late = dict(seen.record_after_late_calls or {})
        assert {late.pop(name, None) is not None for name in LEDGER_FIELDS} == {True}, "the late seal did not seal"
        assert late == seen.record, "the late seal changed the record"
    elif terminal:
        assert seen.record_after_late_calls == seen.record, "a late call changed a final record"
    if scenario.state == "RecordFailure":
        assert seen.record_after_late_calls is not None
        assert seen.record_after_late_calls["status"] == "FAILED", "the late RecordFailure completes the record"

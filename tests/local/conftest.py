"""Fixtures for tests that run the pipeline on the local runtime.

One emulator serves the whole session (moto's backends are process-wide); each test gets a freshly reset
emulator with the stack provisioned again, and, when it needs to change the training code, a throwaway
clone of this repository to commit into (the build checks out commits from it).
"""

import contextlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from common.image_tree import IMAGE_INPUTS, TREE_TAG_PREFIX
from sagepipe.local.core import context
from sagepipe.local.core.emulator import Emulator
from sagepipe.local.git import git, image_tree
from sagepipe.local.process import poll_until
from sagepipe.local.provisioner import LocalStack, provision
from sagepipe.local.runner import END_RECHECK_SECONDS, LocalPipeline, RunResult
from sagepipe.local.sample_data import write_breast_cancer_csv
from sagepipe.local.services import start_emulator
from sagepipe.template import PROJECT_ROOT

QUICK_MODEL: dict[str, str] = {"n_estimators": "25", "max_depth": "3", "learning_rate": "0.1"}
"""The model the stacks under test train: 25 boosting stages, one checkpoint step (container/train.py), where the
template's default trains 200. These tests are about the pipeline around the training, which still really runs;
a fit of 200 stages cost about 1.1 s of CPU per run, and the training jobs 16.8% of the samples of a py-spy
profile of the whole suite (2026-12-02); one of 25 about 0.15 s. On the bundled data it still scores
validation:roc_auc 0.984 (200: 0.990).
Tests about the model itself set their own hyperparameters."""

TEST_STACK_PARAMETERS: dict[str, str] = {"TrainingHyperparameters": json.dumps(QUICK_MODEL)}


def provision_for_test(emulator: Emulator, parameters: dict[str, str] | None = None, **options: Any) -> LocalStack:
    """`provision`, with the tests' defaults (TEST_STACK_PARAMETERS) under the test's own parameters."""
    return provision(emulator, parameters={**TEST_STACK_PARAMETERS, **(parameters or {})}, **options)


@dataclass
class TrainingRepository:
    """A clone of this repository's HEAD that a test may commit to."""

    path: Path

    def commit(self, message: str, files: dict[str, str]) -> str:
        for relative, content in files.items():
            target = self.path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        git(self.path, "add", "--all")
        git(self.path, "-c", "user.name=sagepipe-test", "-c", "user.email=test@example.com", "commit", "-qm", message)
        return git(self.path, "rev-parse", "HEAD")

    @property
    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD")

    def head_of(self, back: int) -> str:
        """The commit `back` commits before HEAD."""
        return git(self.path, "rev-parse", f"HEAD~{back}")

    def read(self, relative: str) -> str:
        return (self.path / relative).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    running = start_emulator(tmp_path_factory.mktemp("emulator"))
    yield running
    running.stop()


@pytest.fixture
def repository(tmp_path: Path) -> TrainingRepository:
    clone = tmp_path / "training-code"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(PROJECT_ROOT), str(clone)], check=True, timeout=60)
    return TrainingRepository(clone)


@pytest.fixture
def stack_parameters() -> dict[str, str]:
    """Template parameters for the stack under test; override in a test module or with indirect params."""
    return {}


@pytest.fixture
def pipeline(
    emulator: Emulator, repository: TrainingRepository, stack_parameters: dict[str, str], tmp_path: Path
) -> Iterator[LocalPipeline]:
    emulator.reset()
    stack = provision_for_test(emulator, stack_parameters, repository=repository.path)
    yield LocalPipeline(emulator, stack, repository.path, runs_dir=tmp_path / "runs")
    wait_for_quiet(emulator)


@dataclass(frozen=True)
class BuiltImage:
    """A training image a real build pushed: its manifest, and the tags that build gave it."""

    manifest: str
    media_type: str
    tags: tuple[str, ...]


@pytest.fixture(scope="session")
def built_images() -> dict[str, BuiltImage]:
    """Images really built in this session (this worker), by image tree id."""
    return {}


@pytest.fixture
def image_of_head(pipeline: LocalPipeline, built_images: dict[str, BuiltImage]) -> BuiltImage:
    """Given ECR already holds the image of HEAD's image tree (put_image_of_head)."""
    return put_image_of_head(pipeline, built_images)


def put_image_of_head(pipeline: LocalPipeline, built_images: dict[str, BuiltImage]) -> BuiltImage:
    """Put into the stack's ECR repository the image of the pipeline repository's HEAD image tree, as a build of
    an earlier commit with the same tree left it: tagged with the tree and with that commit.

    For tests whose subject is not the build: their runs reuse the image (FindImage finds the tree tag) instead of
    building it again in every test, since each test's reset empties ECR. The image is really built, once per
    session (per worker), by the stack's own CodeBuild project started as the pipeline starts it
    (`codebuild:startBuild.sync`); later calls put its manifest back under the same tags, which gives the same
    digest, so training runs the files that build kept. Tests about the build, its reuse and its record do not use
    it.
    """
    head_tree = image_tree(pipeline.repository, "HEAD", IMAGE_INPUTS)
    built = built_images.get(head_tree)
    if built is None:
        built = built_images[head_tree] = _build_image(pipeline, head_tree)
        return built
    ecr = pipeline.emulator.client("ecr")
    for tag in built.tags:
        ecr.put_image(
            repositoryName=pipeline.stack.ref("TrainingImageRepository"),
            imageManifest=built.manifest,
            imageManifestMediaType=built.media_type,
            imageTag=tag,
        )
    return built


def _build_image(pipeline: LocalPipeline, head_tree: str) -> BuiltImage:
    """Run the stack's image build for a new commit with HEAD's tree, through a one-state machine whose Task is the
    pipeline's own `codebuild:startBuild.sync`, and return what it pushed."""
    earlier = git(
        pipeline.repository, "-c", "user.name=sagepipe-test", "-c", "user.email=test@example.com",
        "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "an earlier commit with the same image tree",
    )  # fmt: skip
    sfn = pipeline.emulator.client("stepfunctions")
    pipeline_machine = sfn.describe_state_machine(stateMachineArn=pipeline.stack.outputs["PipelineStateMachineArn"])
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "BuildImage",
        "States": {
            "BuildImage": {
                "Type": "Task",
                "Resource": "arn:aws:states:::codebuild:startBuild.sync",
                "Arguments": {
                    "ProjectName": pipeline.stack.ref("TrainingImageBuild"),
                    "SourceVersion": earlier,
                    "EnvironmentVariablesOverride": [
                        {"Name": "IMAGE_TAG", "Type": "PLAINTEXT", "Value": earlier},
                        {"Name": "IMAGE_TREE", "Type": "PLAINTEXT", "Value": head_tree},
                    ],
                },
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="build-image-of-head", definition=json.dumps(definition), roleArn=pipeline_machine["roleArn"]
    )["stateMachineArn"]
    try:
        execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        ended_in_time = context.current().wait_for_execution_ends(
            lambda: sfn.describe_execution(executionArn=execution)["status"] != "RUNNING",
            timeout=300,
            recheck=END_RECHECK_SECONDS,
        )
        assert ended_in_time, "the image build did not end within 300 s"
        ended = sfn.describe_execution(executionArn=execution)
        assert ended["status"] == "SUCCEEDED", f"the image build failed: {ended.get('error')}: {ended.get('cause')}"
    finally:
        sfn.delete_state_machine(stateMachineArn=machine)
    tree_tag = f"{TREE_TAG_PREFIX}{head_tree}"
    (image,) = pipeline.emulator.client("ecr").batch_get_image(
        repositoryName=pipeline.stack.ref("TrainingImageRepository"), imageIds=[{"imageTag": tree_tag}]
    )["images"]
    return BuiltImage(image["imageManifest"], image["imageManifestMediaType"], (tree_tag, earlier))


def wait_for_quiet(emulator: Emulator, timeout: float = 60.0) -> None:
    """Let executions a test started finish before the next test resets the emulator under them."""
    sfn = emulator.client("stepfunctions")
    pending = [started.execution_arn for started in context.current().started_executions[-50:]]

    def quiet() -> bool:
        while pending:
            with contextlib.suppress(Exception):  # a reset already forgot it: nothing to wait for
                if sfn.describe_execution(executionArn=pending[0])["status"] == "RUNNING":
                    return False
            pending.pop(0)
        return True

    context.current().wait_for_execution_ends(quiet, timeout=timeout, recheck=END_RECHECK_SECONDS)


@pytest.fixture(scope="session")
def training_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_breast_cancer_csv(tmp_path_factory.mktemp("data") / "breast-cancer.csv")


@dataclass
class Notifications:
    """An SQS queue subscribed to the notifications topic, as a team's alerting would be."""

    pipeline: LocalPipeline
    queue_url: str

    def received(self, expected: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The notifications in the queue: at least `expected` (waited for, for at most `timeout` seconds), then
        every other one already there. Called once the runs that notify have ended: the emulator's SNS delivers to
        the SQS subscriber inside the Publish call, so a notification more than expected is in the queue by then,
        and is returned for the test to see (a test that asked for more than its runs send waited out `timeout`)."""
        sqs = self.pipeline.emulator.client("sqs")
        messages: list[dict[str, Any]] = []

        def receive(wait_seconds: int) -> int:
            response = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            )
            for message in response.get("Messages", []):
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            return len(response.get("Messages", []))

        def enough() -> bool:
            if len(messages) < expected:
                receive(1)  # the long poll (WaitTimeSeconds) is the wait: no pause is needed between receives
            return len(messages) >= expected

        poll_until(enough, timeout=timeout, interval=0)
        poll_until(lambda: receive(0) == 0, timeout=timeout, interval=0)
        return messages


@pytest.fixture
def notifications(pipeline: LocalPipeline) -> Notifications:
    sqs = pipeline.emulator.client("sqs")
    url = sqs.create_queue(QueueName="team-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pipeline.emulator.client("sns").subscribe(
        TopicArn=pipeline.stack.outputs["NotificationsTopicArn"], Protocol="sqs", Endpoint=arn
    )
    return Notifications(pipeline, url)


def run_through_events(
    pipeline: LocalPipeline, *, commit: str | None, data: Path | None, data_key: str | None = None
) -> list[RunResult]:
    """Push `commit` (if given), then upload `data` (if given), each through EventBridge, following each run."""
    results = []
    if commit is not None:
        marker = pipeline.execution_marker()
        pipeline.push_commit(commit)
        (arn,) = pipeline.started_since(marker)
        results.append(pipeline.follow(arn, timeout=300))
    if data is not None:
        marker = pipeline.execution_marker()
        pipeline.upload_data(data, data_key)
        (arn,) = pipeline.started_since(marker)
        results.append(pipeline.follow(arn, timeout=300))
    return results


def read_s3_uri(pipeline: LocalPipeline, uri: str) -> bytes:
    """The bytes of an s3://bucket/key object in the emulator."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body: bytes = pipeline.emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def states_entered(result: RunResult) -> list[str]:
    return [
        event["stateEnteredEventDetails"]["name"] for event in result.history if "stateEnteredEventDetails" in event
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that starts the emulator belongs to the end-to-end tier, which `make test-fast` leaves out:
    one that is not marked e2e stops the collection, instead of slowing the fast loop unnoticed."""
    unmarked = [
        item.nodeid
        for item in items
        if "emulator" in getattr(item, "fixturenames", ()) and item.get_closest_marker("e2e") is None
    ]
    if unmarked:
        raise pytest.UsageError("tests that start the emulator must be marked e2e: " + ", ".join(unmarked))


AUDIT_RECORD_SCHEMA = json.loads((PROJECT_ROOT / "docs" / "audit-record.schema.json").read_text(encoding="utf-8"))


def assert_valid_record(record: dict[str, Any]) -> None:
    """The run record follows docs/audit-record.schema.json (every error listed, not just the first)."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(AUDIT_RECORD_SCHEMA).iter_errors(record), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, error.path)) or '(record)'}: {error.message}" for error in errors)


def create_training_job_request(run: RunResult) -> dict[str, Any]:
    """The parameters the Train state sent to sagemaker:createTrainingJob, as the execution history shows them."""
    for event in run.history:
        details = event.get("taskScheduledEventDetails")
        if details and details["resource"] == "createTrainingJob.sync":
            parameters: dict[str, Any] = json.loads(details["parameters"])
            return parameters
    raise AssertionError("the run scheduled no training job")

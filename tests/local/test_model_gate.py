"""The quality gate and the model registry on the local runtime: real trainings judged, registered, approved and
rejected, through the real event paths, read back with `sagepipe models`.

One module-scoped story serves the tests, in order: a first (deliberately modest) model with no champion yet is
registered PendingManualApproval; `sagepipe models approve` makes it the champion, and the approval is recorded
on its run; a worse model (a hyperparameter the test sets, through a re-run request) is REJECTED with both values;
a better one is registered; `sagepipe models reject` is recorded and announced as a rejection. A last test, on a
stack of its own, names a metric no run has in its threshold.

The hyperparameters were chosen on the bundled breast cancer data (train.py, seed 42): validation:roc_auc is about
0.955 with 2 stumps, 0.908 with 1 and 0.991 with 20 depth-2 trees; the threshold 0.9 lets all three through, so
only the champion comparison tells them apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sagepipe.cli import main
from sagepipe.local.core.emulator import Emulator
from sagepipe.local.git import git
from sagepipe.local.process import poll_until
from sagepipe.local.provisioner import provision
from sagepipe.local.runner import LocalPipeline, RunResult
from sagepipe.local.sample_data import write_breast_cancer_csv
from sagepipe.manual import DataVersion, Rerun, manual_run_entry
from sagepipe.template import PROJECT_ROOT
from tests.local.conftest import (
    BuiltImage,
    Notifications,
    assert_valid_record,
    provision_for_test,
    put_image_of_head,
    run_through_events,
    wait_for_quiet,
)

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS = 300.0
EVENT_TIMEOUT_SECONDS = 30.0
THRESHOLD = 0.9
THRESHOLDS = json.dumps({"validation:roc_auc": {">=": THRESHOLD}})
MODEST = {"n_estimators": "2", "max_depth": "1", "learning_rate": "0.1"}
WORSE = {"n_estimators": "1", "max_depth": "1", "learning_rate": "0.1"}
BETTER = {"n_estimators": "20", "max_depth": "2", "learning_rate": "0.1"}


@dataclass
class Story:
    pipeline: LocalPipeline
    repository: Path
    alerts: Notifications
    first: RunResult

    @property
    def stack(self) -> str:
        return self.pipeline.stack.name

    @property
    def group(self) -> str:
        return self.pipeline.stack.outputs["ModelPackageGroupName"]

    def cli(self, *args: str) -> Result:
        """`sagepipe models ...` in process, pointed at the emulator by boto3's usual environment variables."""
        environment: dict[str, str | None] = dict(self.pipeline.emulator.client_environment())
        return CliRunner(mix_stderr=False).invoke(main, ["models", *args, "--stack", self.stack], env=environment)

    def json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    def decide(self, *args: str) -> Any:
        """`sagepipe models approve|reject ...` as its own process, as a person runs it against `sagepipe local
        up`. Not in process: the decision's event runs RecordModelDecision in this process at once, and the local
        Lambda runtime takes the process's stdout while a handler runs."""
        environment = os.environ | self.pipeline.emulator.client_environment()
        completed = subprocess.run(
            [str(Path(sys.executable).parent / "sagepipe"), "models", *args, "--stack", self.stack, "--json"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, (completed.stdout, completed.stderr)
        return json.loads(completed.stdout)

    def rerun(self, hyperparameters: dict[str, str]) -> RunResult:
        """Train the first run's commit on its data version again with `hyperparameters`: a re-run request, the
        one kind of run that carries its own training configuration."""
        record = self.first.record
        assert record is not None
        entry = manual_run_entry(
            record["commit_id"],
            DataVersion(record["data_bucket"], record["data_key"], record["data_version_id"]),
            "arn:aws:iam::123456789012:user/test",
            "the gate's test",
            Rerun(
                of=self.first.run_id,
                request_id=str(uuid.uuid4()),
                instance_type=record["instance_type"],
                instance_count=int(record["instance_count"]),
                volume_size_gb=int(record["volume_size_gb"]),
                max_runtime_seconds=int(record["max_runtime_seconds"]),
                hyperparameters=hyperparameters,
            ),
        )
        marker = self.pipeline.execution_marker()
        self.pipeline.emulator.client("events").put_events(Entries=[entry])
        (arn,) = self.pipeline.started_since(marker)
        return self.pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS)

    def package(self, version: int) -> dict[str, Any]:
        sagemaker = self.pipeline.emulator.client("sagemaker")
        arns = [
            item["ModelPackageArn"]
            for item in sagemaker.list_model_packages(ModelPackageGroupName=self.group)["ModelPackageSummaryList"]
            if item["ModelPackageArn"].endswith(f"/{version}")
        ]
        assert arns, f"no version {version} in {self.group}"
        return dict(sagemaker.describe_model_package(ModelPackageName=arns[0]))

    def record_of(self, run_id: str) -> dict[str, Any]:
        """A run's record, as `sagepipe runs show --json` prints it."""
        result = CliRunner(mix_stderr=False).invoke(
            main,
            ["runs", "show", run_id, "--stack", self.stack, "--json"],
            env=dict(self.pipeline.emulator.client_environment()),
        )
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return dict(json.loads(result.stdout)["record"])

    def versions(self) -> list[int]:
        summaries = self.pipeline.emulator.client("sagemaker").list_model_packages(ModelPackageGroupName=self.group)
        return sorted(int(item["ModelPackageArn"].rsplit("/", 1)[-1]) for item in summaries["ModelPackageSummaryList"])

    def decisions(self, run_id: str, expected: int) -> list[dict[str, Any]]:
        """The APPROVAL items on a run, once there are `expected` of them (RecordModelDecision runs on its own)."""
        dynamodb = self.pipeline.emulator.client("dynamodb")
        found: list[dict[str, Any]] = []

        def enough() -> bool:
            items = dynamodb.query(
                TableName=self.pipeline.stack.outputs["RunsTableName"],
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}, ":prefix": {"S": "APPROVAL#"}},
                ConsistentRead=True,
            )["Items"]
            found[:] = [{name: next(iter(value.values())) for name, value in item.items()} for item in items]
            return len(found) >= expected

        poll_until(enough, timeout=EVENT_TIMEOUT_SECONDS)
        return sorted(found, key=lambda item: (item["decided_at"], item["recorded_at"]))


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    return {name: value["Value"] for name, value in message["MessageAttributes"].items()}


@pytest.fixture(scope="module")
def story(
    emulator: Emulator, tmp_path_factory: pytest.TempPathFactory, built_images: dict[str, BuiltImage]
) -> Iterator[Story]:
    work = tmp_path_factory.mktemp("model-gate")
    repository = work / "training-code"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(PROJECT_ROOT), str(repository)], check=True, timeout=60)
    emulator.reset()
    parameters = {"GateThresholds": THRESHOLDS, "TrainingHyperparameters": json.dumps(MODEST)}
    pipeline = LocalPipeline(
        emulator, provision(emulator, parameters=parameters, repository=repository), repository, runs_dir=work / "runs"
    )
    put_image_of_head(pipeline, built_images)  # the gate is the subject, not the build
    sqs = emulator.client("sqs")
    url = sqs.create_queue(QueueName="model-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    emulator.client("sns").subscribe(
        TopicArn=pipeline.stack.outputs["NotificationsTopicArn"], Protocol="sqs", Endpoint=queue_arn
    )
    data = write_breast_cancer_csv(work / "breast-cancer.csv")
    _, first = run_through_events(pipeline, commit=git(repository, "rev-parse", "HEAD"), data=data)
    yield Story(pipeline, repository, Notifications(pipeline, url), first)
    wait_for_quiet(emulator)


def test_the_first_model_with_no_champion_is_registered_pending_manual_approval(story: Story) -> None:
    """Given an empty group and a model above the threshold, then the run SUCCEEDED, its record holds the gate
    (the threshold held, no champion yet) and version 1, and the package holds the image by digest, the artifact,
    the run, commit, data version, content digest and metrics, PendingManualApproval."""
    record = story.first.record
    assert record is not None
    assert record["status"] == "SUCCEEDED", (story.first.error, story.first.cause)
    assert_valid_record(record)
    gate = record["gate"]
    assert gate["passed"] is True
    kinds = {item["kind"]: item for item in gate["comparisons"]}
    assert set(kinds) == {"threshold", "no-champion"}
    roc_auc = record["metrics"]["validation:roc_auc"]
    assert THRESHOLD < roc_auc < 0.97, "MODEST is meant to be a modest model"
    assert kinds["threshold"] | {"passed": True, "value": roc_auc, "threshold": THRESHOLD} == kinds["threshold"]
    assert record["model_package_version"] == 1
    assert record["model_package_arn"].endswith(f":model-package/{story.group}/1")

    package = story.package(1)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    (container,) = package["InferenceSpecification"]["Containers"]
    assert container["ImageDigest"] == record["image_digest"]
    assert container["ModelDataUrl"] == record["artifact_uri"]
    properties = package["CustomerMetadataProperties"]
    assert properties["sagepipe:run-id"] == story.first.run_id
    assert properties["sagepipe:commit"] == record["commit_id"]
    assert properties["sagepipe:data-version-id"] == record["data_version_id"]
    assert properties["sagepipe:content-sha256"] == record["model_content_sha256"]
    assert float(properties["metric:validation:roc_auc"]) == roc_auc
    assert package["MetadataProperties"]["CommitId"] == record["commit_id"]

    messages = story.alerts.received(expected=2)  # the SKIPPED code push, then this success
    (success,) = [item for item in messages if _attributes(item)["status"] == "SUCCEEDED"]
    assert f"Model package: {record['model_package_arn']} (version 1, PendingManualApproval)" in success["Message"]


def test_approving_it_makes_it_the_champion_and_records_who_and_why_on_its_run(story: Story) -> None:
    """Given version 1 pending, when `sagepipe models approve 1 --reason R`, then it is the champion, and the
    state change event reaches RecordModelDecision, which records the approval (who, when, why, which package)
    on run 1 and announces it, once, as MODEL_APPROVED."""
    approved = story.decide("approve", "1", "--reason", "good enough for production")

    assert approved["status"] == "Approved"
    assert approved["champion"] is True
    assert approved["approval_description"] == "good enough for production"
    decisions = story.decisions(story.first.run_id, expected=2)
    assert story.json("champion")["champion"]["version"] == 1
    assert [item["decision"] for item in decisions] == ["PendingManualApproval", "Approved"]
    approval = decisions[-1]
    assert approval["reason"] == "good enough for production"
    assert approval["decided_by"].startswith("arn:aws:")
    assert approval["model_package_arn"] == story.first.record["model_package_arn"]  # type: ignore[index]
    assert approval["previous_decision"] == "PendingManualApproval"

    announced = story.alerts.received(expected=1)
    assert [_attributes(item)["status"] for item in announced] == ["MODEL_APPROVED"]
    assert "good enough for production" in announced[0]["Message"]


def test_a_worse_model_is_rejected_with_both_values_in_its_record_and_notification(story: Story) -> None:
    """Given the champion (version 1), when a re-run trains a worse model (one stump), then the execution
    succeeds, the run is REJECTED and sealed, no package is registered, and the record and the REJECTED
    notification both name the failed comparison with the run's and the champion's values."""
    run = story.rerun(WORSE)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    record = run.record
    assert record is not None
    assert record["status"] == "REJECTED"
    assert_valid_record(record)
    assert record["ledger_sha256"], "a REJECTED record is sealed like every final record"
    assert "model_package_arn" not in record
    assert story.versions() == [1]
    (failed,) = [item for item in record["gate"]["comparisons"] if not item["passed"]]
    champion_value = story.first.record["metrics"]["validation:roc_auc"]  # type: ignore[index]
    worse_value = record["metrics"]["validation:roc_auc"]
    assert failed["kind"] == "champion"
    assert (failed["value"], failed["champion_value"]) == (worse_value, champion_value)
    assert worse_value < champion_value
    assert repr(worse_value) in record["rejection_reason"], record["rejection_reason"]
    assert repr(champion_value) in record["rejection_reason"], record["rejection_reason"]

    (rejected,) = [item for item in story.alerts.received(expected=1) if _attributes(item)["status"] == "REJECTED"]
    assert rejected["Subject"].startswith("[sagepipe dev] REJECTED: run ")
    assert repr(worse_value) in rejected["Message"]
    assert repr(champion_value) in rejected["Message"]
    assert _attributes(rejected)["run_id"] == run.run_id


def test_a_better_model_is_registered_as_the_next_version_pending_approval(story: Story) -> None:
    """Given the champion, when a re-run trains a better model, then it passes the comparison with the champion
    (both values in the record) and is registered as version 2, pending; the champion is still version 1."""
    run = story.rerun(BETTER)

    record = run.record
    assert record is not None
    assert record["status"] == "SUCCEEDED", (run.error, run.cause)
    assert_valid_record(record)
    (champion,) = [item for item in record["gate"]["comparisons"] if item["kind"] == "champion"]
    assert champion["passed"] is True
    assert champion["value"] > champion["champion_value"]
    assert record["gate"]["champion"]["model_package_version"] == 1
    assert record["model_package_version"] == 2
    assert story.package(2)["ModelApprovalStatus"] == "PendingManualApproval"
    assert story.json("champion")["champion"]["version"] == 1

    listed = story.json("list")["versions"]
    assert [(item["version"], item["status"], item["champion"]) for item in listed] == [
        (2, "PendingManualApproval", False),
        (1, "Approved", True),
    ]
    assert listed[0]["run_id"] == run.run_id
    assert listed[0]["metrics"]["validation:roc_auc"] == champion["value"]
    table = story.cli("list")
    assert table.exit_code == 0
    assert "1 *" in table.stdout
    assert "Approved" in table.stdout


def test_a_rejection_is_recorded_on_its_run_and_never_announced_as_an_approval(story: Story) -> None:
    """Given version 2 pending, when `sagepipe models reject 2 --reason R`, then the rejection is recorded on
    version 2's run with who and why, and announced as MODEL_REJECTED only; `models show 2` lists both
    decisions; the champion is unchanged."""
    version_two_run = story.package(2)["CustomerMetadataProperties"]["sagepipe:run-id"]
    story.alerts.received(expected=1)  # the success of version 2's run

    rejected = story.decide("reject", "2", "--reason", "fails the fairness review")

    assert rejected["status"] == "Rejected"
    decisions = story.decisions(version_two_run, expected=2)
    assert [item["decision"] for item in decisions] == ["PendingManualApproval", "Rejected"]
    assert decisions[-1]["reason"] == "fails the fairness review"
    announced = story.alerts.received(expected=1)
    assert [_attributes(item)["status"] for item in announced] == ["MODEL_REJECTED"]
    shown = story.json("show", "2")
    assert [item["decision"] for item in shown["decisions"]] == ["PendingManualApproval", "Rejected"]
    assert story.json("champion")["champion"]["version"] == 1


def test_a_cached_run_of_the_champions_key_passes_as_the_champion_itself_and_registers_nothing(story: Story) -> None:
    """Given the champion (version 1, the first run's model), when a re-run asks for the first run's training again
    (same commit, data and hyperparameters: its key), then it trains nothing and ends CACHED from the first run;
    the gate judges the first run's metrics, finds the champion is that very model (same content digest) instead
    of asking it to beat itself, and passes; the record keeps version 1 (reused) and no version is added."""
    assert story.json("champion")["champion"]["version"] == 1

    run = story.rerun(MODEST)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    record = run.record
    assert record is not None
    assert record["status"] == "CACHED"
    assert record["cached_from"] == story.first.run_id
    assert "training_job_name" not in record
    assert_valid_record(record)
    assert record["metrics"] == story.first.record["metrics"]  # type: ignore[index]
    assert record["gate"]["passed"] is True
    (champion,) = [item for item in record["gate"]["comparisons"] if item["kind"] == "champion"]
    assert champion["same_model"] is True
    assert "the model is the champion itself (version 1" in champion["reason"]
    assert (record["model_package_version"], record["model_package_reused"]) == (1, True)
    assert record["model_package_arn"] == story.first.record["model_package_arn"]  # type: ignore[index]
    assert story.versions() == [1, 2]

    (cached,) = story.alerts.received(expected=1)
    assert _attributes(cached) | {"status": "CACHED", "gate": "passed"} == _attributes(cached)
    assert f"registered by run {story.first.run_id}; nothing new registered" in cached["Message"]


def test_a_cached_run_of_a_rejected_key_is_judged_again_and_stays_cached_when_rejected(story: Story) -> None:
    """Given the worse model's run REJECTED by the champion (version 1), when a re-run asks for the same training,
    then it trains nothing, ends CACHED from that REJECTED run, and the gate rejects the cached model again: the
    record has the gate's verdict (passed false) and no package, the notification says the gate rejected it."""
    run = story.rerun(WORSE)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    record = run.record
    assert record is not None
    assert record["status"] == "CACHED"
    assert story.record_of(record["cached_from"])["status"] == "REJECTED"
    assert_valid_record(record)
    assert record["gate"]["passed"] is False
    (failed,) = [item for item in record["gate"]["comparisons"] if not item["passed"]]
    assert (failed["kind"], failed["value"]) == ("champion", record["metrics"]["validation:roc_auc"])
    assert "model_package_arn" not in record
    assert story.versions() == [1, 2]

    (cached,) = story.alerts.received(expected=1)
    assert _attributes(cached) | {"status": "CACHED", "gate": "rejected"} == _attributes(cached)
    assert cached["Subject"].endswith(" rejected by the quality gate")
    assert "Gate: REJECTED the cached model: " + failed["reason"] in cached["Message"]


def test_once_the_champion_is_gone_a_cached_rejected_model_is_registered_exactly_once(story: Story) -> None:
    """Given version 1 rejected by a person (no approved version is left), when the worse model's training is
    asked for again, then the CACHED run's gate passes (the threshold alone) and it registers the cached model as
    version 3: the REJECTED run's artifact and content digest, this run's id; when it is asked for once more, the
    next CACHED run records version 3 (reused) and registers nothing."""
    story.decide("reject", "1", "--reason", "superseded")
    assert story.json("champion")["champion"] is None

    first = story.rerun(WORSE)
    again = story.rerun(WORSE)

    record = first.record
    assert record is not None
    assert record["status"] == "CACHED", (first.error, first.cause)
    assert_valid_record(record)
    source = story.record_of(record["cached_from"])
    assert source["status"] == "REJECTED"
    assert record["gate"]["passed"] is True
    assert (record["model_package_version"], record["model_package_reused"]) == (3, False)
    package = story.package(3)
    (container,) = package["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == source["artifact_uri"] == record["artifact_uri"]
    assert package["CustomerMetadataProperties"]["sagepipe:run-id"] == first.run_id
    assert package["CustomerMetadataProperties"]["sagepipe:content-sha256"] == source["model_content_sha256"]
    assert f"the model trained by run {source['run_id']}" in package["ModelPackageDescription"]

    assert again.record is not None
    assert again.record["status"] == "CACHED", (again.error, again.cause)
    assert again.record["cached_from"] == source["run_id"]
    assert (again.record["model_package_version"], again.record["model_package_reused"]) == (3, True)
    assert_valid_record(again.record)
    assert story.versions() == [1, 2, 3]


def test_a_version_that_does_not_exist_is_one_line_and_exit_code_2(story: Story) -> None:
    """Given no version 9, when it is approved, then one line on stderr and exit code 2, no traceback."""
    result = story.cli("approve", "9", "--reason", "typo")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: no model package")
    assert result.stderr.count("\n") == 1


def test_a_threshold_on_a_metric_the_run_lacks_fails_the_gate_with_that_reason(
    emulator: Emulator, story: Story, tmp_path: Path, built_images: dict[str, BuiltImage]
) -> None:
    """Given a stack whose threshold names validation:precision, which train.py does not report, then the run is
    REJECTED, not registered, and its reason says the run has no such metric and which metrics it has."""
    wait_for_quiet(emulator)
    emulator.reset()
    thresholds = json.dumps({"validation:precision": {">=": 0.5}})
    pipeline = LocalPipeline(
        emulator,
        provision_for_test(emulator, {"GateThresholds": thresholds}, repository=story.repository),
        story.repository,
        runs_dir=tmp_path / "runs",
    )
    put_image_of_head(pipeline, built_images)
    data = write_breast_cancer_csv(tmp_path / "breast-cancer.csv")

    _, run = run_through_events(pipeline, commit=git(story.repository, "rev-parse", "HEAD"), data=data)

    record = run.record
    assert record is not None
    assert record["status"] == "REJECTED", (run.error, run.cause)
    assert "model_package_arn" not in record
    (failed,) = [item for item in record["gate"]["comparisons"] if not item["passed"]]
    assert failed["metric"] == "validation:precision"
    assert failed["value"] is None
    assert "the run has no metric validation:precision" in record["rejection_reason"]
    assert "validation:roc_auc" in record["rejection_reason"]
    wait_for_quiet(emulator)

"""`sagepipe runs` against the local runtime: real runs through the real event path, read by the CLI in process.

One module-scoped trail of runs serves the read-only tests (a code push that is SKIPPED, two trainings on two
data versions, and a training that FAILED), then a re-run, then the tampering test, which edits a record
last. The CLI reaches the emulator as it would reach AWS: through AWS_ENDPOINT_URL and the stack's
CloudFormation outputs (registered here as a stack of outputs; the local runtime registers none yet).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sagepipe.cli import EXIT_NOT_VERIFIED, main
from sagepipe.local.core.emulator import Emulator
from sagepipe.local.git import git
from sagepipe.local.runner import LocalPipeline, RunResult
from sagepipe.template import PROJECT_ROOT
from tests.local.conftest import (
    assert_valid_record,
    provision_for_test,
    read_s3_uri,
    run_through_events,
    wait_for_quiet,
)

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS = 300.0


def register_stack(pipeline: LocalPipeline) -> str:
    """The local stack's name: the provisioner registers it in the emulator's CloudFormation with its outputs, as
    `sam deploy` leaves one, and `sagepipe runs` finds it there."""
    stacks = pipeline.emulator.client("cloudformation").describe_stacks(StackName=pipeline.stack.name)["Stacks"]
    assert {output["OutputKey"] for output in stacks[0]["Outputs"]} >= {"RunsTableName", "LedgerBucketName"}
    return pipeline.stack.name


@dataclass
class Trail:
    pipeline: LocalPipeline
    repository: Path
    stack: str
    skipped: RunResult
    first: RunResult
    second: RunResult
    failed: RunResult

    def cli(self, *args: str) -> Result:
        """`sagepipe runs ...` in process, pointed at the emulator by boto3's usual environment variables."""
        environment: dict[str, str | None] = dict(self.pipeline.emulator.client_environment())
        return CliRunner(mix_stderr=False).invoke(main, ["runs", *args, "--stack", self.stack], env=environment)

    def json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    def record(self, run: RunResult) -> dict[str, Any]:
        assert run.record is not None
        return run.record


@pytest.fixture(scope="module")
def trail(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    work = tmp_path_factory.mktemp("audit-trail")
    repository = work / "training-code"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(PROJECT_ROOT), str(repository)], check=True, timeout=60)
    emulator.reset()
    pipeline = LocalPipeline(
        emulator, provision_for_test(emulator, repository=repository), repository, runs_dir=work / "runs"
    )
    data = pipeline_data(work)
    skipped, first = run_through_events(pipeline, commit=git(repository, "rev-parse", "HEAD"), data=data["first"])
    (second,) = run_through_events(pipeline, commit=None, data=data["second"])
    (failed,) = run_through_events(pipeline, commit=None, data=data["no-target"])
    yield Trail(pipeline, repository, register_stack(pipeline), skipped, first, second, failed)
    wait_for_quiet(emulator)


def pipeline_data(work: Path) -> dict[str, Path]:
    """Three datasets: the breast cancer data, its first 400 rows (another data version, another model), and a
    copy without the target column (a training that fails)."""
    from sagepipe.local.sample_data import write_breast_cancer_csv

    full = write_breast_cancer_csv(work / "first.csv")
    header, *rows = full.read_text(encoding="utf-8").splitlines()
    second = work / "second.csv"
    second.write_text("\n".join([header, *rows[:400]]) + "\n", encoding="utf-8")
    no_target = work / "no-target.csv"
    no_target.write_text("\n".join([header.removesuffix(",target") + ",label", *rows]) + "\n", encoding="utf-8")
    return {"first": full, "second": second, "no-target": no_target}


def test_the_trail_holds_three_runs_one_failed_all_sealed(trail: Trail) -> None:
    statuses = [trail.record(run)["status"] for run in (trail.skipped, trail.first, trail.second, trail.failed)]
    assert statuses == ["SKIPPED", "SUCCEEDED", "SUCCEEDED", "FAILED"]
    for run in (trail.skipped, trail.first, trail.second, trail.failed):
        assert_valid_record(trail.record(run))
        assert trail.record(run)["ledger_sha256"], "every final record is sealed"


def test_list_shows_every_run_newest_first_and_filters_by_status_and_commit(trail: Trail) -> None:
    """Given the four runs, then `runs list` shows them newest first in one page, `--status FAILED` only the
    failed one, `--commit` (abbreviated, expanded by the repository here) all four, and the table reads."""
    newest_first = [run.run_id for run in (trail.failed, trail.second, trail.first, trail.skipped)]

    listed = trail.json("list")
    failed = trail.json("list", "--status", "failed")
    table = trail.cli("list")

    assert [record["run_id"] for record in listed["runs"]] == newest_first
    assert listed["next"] is None
    assert [record["run_id"] for record in failed["runs"]] == [trail.failed.run_id]
    commit = trail.record(trail.first)["commit_id"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(trail.repository)
        by_commit = trail.json("list", "--commit", commit[:10])
    assert [record["run_id"] for record in by_commit["runs"]] == newest_first
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("RUN ")
    assert [line.split()[0] for line in lines[2:]] == newest_first
    assert [line.split()[3] for line in lines[2:]] == ["FAILED", "SUCCEEDED", "SUCCEEDED", "SKIPPED"]


def test_show_groups_the_record_and_links_the_console(trail: Trail) -> None:
    failed = trail.cli("show", trail.failed.run_id)
    succeeded = trail.json("show", trail.first.run_id)

    assert failed.exit_code == 0, failed.stderr
    for section in ("trigger", "code", "data", "training", "result", "ledger", "links"):
        assert f"\n{section}\n" in failed.stdout, section
    assert any(line.split() == ["failed_stage", "Train"] for line in failed.stdout.splitlines())
    assert "'target' column" in failed.stdout
    assert succeeded["record"] == json.loads(json.dumps(trail.record(trail.first)))
    assert set(succeeded["links"]) == {"execution", "training logs", "build"}
    assert succeeded["links"]["build"].startswith("https://us-east-1.console.aws.amazon.com/codesuite/codebuild/")
    assert succeeded["lacks"] == []


def test_diff_of_the_two_trainings_shows_the_data_version_metrics_and_model(trail: Trail) -> None:
    """Given two trainings of one commit on two data versions, then diff names the data version and size, each
    metric with its delta, and the model digests, and says the training code is the same commit."""
    first, second = trail.record(trail.first), trail.record(trail.second)

    result = trail.json("diff", trail.first.run_id, trail.second.run_id)

    differs = set(result["differs"])
    assert {"data.data_ref", "data.data_version_id", "data.data_size_bytes", "model.model_content_sha256"} <= differs
    assert not any(name.startswith(("code.", "hyperparameters.", "instances.")) for name in differs)
    rows = {f"{row['section']}.{row['field']}": row for row in result["rows"]}
    accuracy = rows["metrics.validation:accuracy"]
    expected_delta = second["metrics"]["validation:accuracy"] - first["metrics"]["validation:accuracy"]
    assert accuracy["delta"] == pytest.approx(expected_delta)
    assert (result["changed_files"], result["changed_files_note"]) == ([], "same commit")


def test_lineage_by_commit_data_version_and_model(trail: Trail, tmp_path: Path) -> None:
    """Given the trail, then lineage by the commit finds every run, by the first data version the first training,
    by its model's content digest and by the model file downloaded from S3 the first training too."""
    first = trail.record(trail.first)
    model = tmp_path / "model.tar.gz"
    model.write_bytes(read_s3_uri(trail.pipeline, first["artifact_uri"]))

    by_commit = trail.json("lineage", "--commit", first["commit_id"])
    by_data = trail.json("lineage", "--data", first["data_ref"])
    by_model = trail.json("lineage", "--model-sha256", first["model_content_sha256"])
    by_file = trail.json("lineage", "--model-file", str(model))

    assert len(by_commit["runs"]) == 4
    assert [record["run_id"] for record in by_data["runs"]] == [trail.first.run_id]
    assert [record["run_id"] for record in by_model["runs"]] == [trail.first.run_id]
    assert by_file["key"] == {"model_content_sha256": first["model_content_sha256"]}
    assert [record["run_id"] for record in by_file["runs"]] == [trail.first.run_id]


def test_a_rerun_reproduces_the_model_and_a_redelivered_request_is_its_duplicate(trail: Trail) -> None:
    """Given the first training, when it is re-run, then a new run trains the same commit, data version and
    configuration, is recorded as a re-run of it, and its model has the same content digest (exit 0); the same
    request delivered again is a DUPLICATE of the re-run, not a second training."""
    original = trail.record(trail.first)

    result = trail.cli("rerun", trail.first.run_id, "--reason", "reproduce", "--force", "--json", "--timeout", "300")

    assert result.exit_code == 0, (result.stdout, result.stderr)
    document = json.loads(result.stdout)
    assert document["comparison"]["identical"] is True
    rerun = document["rerun"]
    assert rerun["rerun_of"] == trail.first.run_id
    assert rerun["run_id"] != trail.first.run_id
    assert rerun["status"] == "SUCCEEDED"
    assert rerun["model_content_sha256"] == original["model_content_sha256"]
    for name in ("commit_id", "data_ref", "hyperparameters", "instance_type", "instance_count", "volume_size_gb"):
        assert rerun[name] == original[name], name
    assert (rerun["trigger_kind"], rerun["trigger_reason"]) == ("manual", "reproduce")
    assert rerun["ledger_sha256"], "the CLI waited for the run to end: its record is sealed"

    marker = trail.pipeline.execution_marker()
    trail.pipeline.put_event(
        "sagepipe.manual",
        "Manual Run Requested",
        {
            "commit": original["commit_id"],
            "data": {
                "bucket": original["data_bucket"],
                "key": original["data_key"],
                "versionId": original["data_version_id"],
            },
            "requestedBy": "redelivery",
            "rerunOf": trail.first.run_id,
            "rerunRequestId": rerun["rerun_request_id"],
            "training": {
                "instanceType": original["instance_type"],
                "instanceCount": original["instance_count"],
                "volumeSizeGb": original["volume_size_gb"],
                "maxRuntimeSeconds": original["max_runtime_seconds"],
                "hyperparameters": original["hyperparameters"],
            },
        },
    )
    (arn,) = trail.pipeline.started_since(marker)
    again = trail.pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS)
    assert again.record is not None
    assert (again.record["status"], again.record["duplicate_of"]) == ("DUPLICATE", rerun["run_id"])


def test_verify_passes_then_fails_once_the_record_is_edited_in_dynamodb(trail: Trail) -> None:
    """Given the second training, then verify passes (model digests and ledger entry); when its metric is edited
    in DynamoDB after the fact, verify exits 4 and names the field."""
    run_id = trail.second.run_id
    verified = trail.cli("verify", run_id)
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith(f"run {run_id}: verified")

    trail.pipeline.emulator.client("dynamodb").update_item(
        TableName=trail.pipeline.stack.outputs["RunsTableName"],
        Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RECORD"}},
        UpdateExpression="SET #metrics.#accuracy = :better",
        ExpressionAttributeNames={"#metrics": "metrics", "#accuracy": "validation:accuracy"},
        ExpressionAttributeValues={":better": {"N": "0.999"}},
    )

    tampered = trail.cli("verify", run_id)
    assert tampered.exit_code == EXIT_NOT_VERIFIED, tampered.stdout
    assert "NOT verified" in tampered.stdout
    assert "differs from what was sealed: metrics" in tampered.stdout

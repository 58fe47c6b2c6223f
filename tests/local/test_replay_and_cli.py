"""Replaying the sample events, and the `sagepipe local run` command, on the local runtime.

Replay tests use the session emulator (tests/local/conftest.py). The CLI starts an emulator of its own, and moto's
backends are process-wide, so the CLI runs as a subprocess (the console script next to this interpreter), with
its state in the test's temporary directory.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sagepipe.cli import EXIT_NO_RULE_MATCHES
from sagepipe.local.core import context
from sagepipe.local.git import git
from sagepipe.local.replay import NoRuleMatches, load_event, replay
from sagepipe.local.runner import LocalPipeline
from sagepipe.template import PROJECT_ROOT
from tests.local.conftest import TrainingRepository

pytestmark = pytest.mark.e2e

EVENTS = PROJECT_ROOT / "events"
RUN_TIMEOUT_SECONDS = 300.0
CLI_TIMEOUT_SECONDS = 420.0


# ----------------------------------------------------------------------------------------------- replay


def explanations(error: NoRuleMatches) -> dict[str, str]:
    """What replay said of each rule that starts the pipeline."""
    return {verdict.rule: verdict.explanation for verdict in error.verdicts if verdict.starts_run}


def test_replaying_the_codecommit_push_sample_builds_and_trains_head(
    pipeline: LocalPipeline, repository: TrainingRepository
) -> None:
    """Given events/codecommit-push.json, whose commit exists only in its example account, when it is replayed
    (adapted), then the commit becomes the local HEAD, training data is seeded first through the data path, and
    the replayed push runs the pipeline on HEAD."""
    replayed = replay(pipeline, load_event(EVENTS / "codecommit-push.json"))

    notes = "\n".join(replayed.notes)
    assert f"commit 3e5b0c1f4f1b is not in the local repository: using HEAD {repository.head[:12]}" in notes
    assert re.search(r"seeded data upload s3://\S+/datasets/\S+\.csv", notes), notes
    assert "put aws.codecommit / CodeCommit Repository State Change on the default bus" in notes

    assert replayed.trigger is not None
    run = pipeline.follow(pipeline.started_by(replayed.trigger), timeout=RUN_TIMEOUT_SECONDS)
    assert run.status == "SUCCEEDED", run.cause
    assert run.record is not None
    assert run.record["status"] == "SUCCEEDED"
    assert run.record["trigger_kind"] == "code"
    assert run.record["commit_id"] == repository.head
    assert run.record["data_key"].startswith("datasets/")


def test_replaying_the_github_push_sample_runs_the_pipeline_through_the_webhook_function(
    pipeline: LocalPipeline, repository: TrainingRepository
) -> None:
    """Given events/github-push.json (a webhook delivery: headers and body), when it is replayed, then it is signed
    with the local stack's secret and POSTed to the webhook function as a new delivery, which answers 202 and
    publishes the 'GitHub Push' event; the GitHubPushed rule starts the run, which builds and trains HEAD and
    records the pusher and the delivery's event."""
    before = pipeline.execution_marker()
    replayed = replay(pipeline, load_event(EVENTS / "github-push.json"))

    notes = "\n".join(replayed.notes)
    assert f"commit 3e5b0c1f4f1b is not in the local repository: using HEAD {repository.head[:12]}" in notes
    assert "delivered to the webhook function, signed with the local secret: 202" in notes
    delivery = re.search(r"delivery id -> ([0-9a-f-]{36}) ", notes)
    assert delivery, notes
    assert replayed.trigger is not None
    arn = pipeline.started_by(replayed.trigger)
    started = context.current().executions_since(before)[-1]
    assert started.execution_arn == arn
    assert started.event["source"] == "sagepipe.github"
    assert started.event["detail"]["delivery"] == delivery.group(1)
    run = pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS)
    assert run.status == "SUCCEEDED", run.cause
    assert run.record is not None
    assert run.record["status"] == "SUCCEEDED"
    assert run.record["trigger_kind"] == "code"
    assert run.record["trigger_source"] == "sagepipe.github"
    assert run.record["triggered_by"] == "monalisa"
    assert run.record["commit_id"] == repository.head
    assert run.record["image_built"] is True


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
def test_replaying_the_s3_sample_creates_its_object_quietly_and_runs_on_it(pipeline: LocalPipeline) -> None:
    """Given events/s3-object-created.json (key URL-encoded, in another account's bucket), when it is replayed, then
    the object is created in the local data bucket with notifications paused, so only the replayed event starts a
    run (besides the seeded code push), and that run trains on the decoded key's version."""
    before = pipeline.execution_marker()

    replayed = replay(pipeline, load_event(EVENTS / "s3-object-created.json"))
    assert replayed.trigger is not None
    arn = pipeline.started_by(replayed.trigger)
    run = pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS)

    key = "datasets/breast-cancer/train 2026-11-24.csv"
    notes = "\n".join(replayed.notes)
    assert f"bucket sagepipe-data-example -> {pipeline.data_bucket}" in notes
    assert f"created s3://{pipeline.data_bucket}/{key} (version " in notes
    # Delivery is synchronous: had the quiet upload been announced, its execution would already be recorded.
    started = context.current().executions_since(before)
    assert [item.event["source"] for item in started] == ["aws.codecommit", "aws.s3"], (
        "expected the seeded push and the replayed event only; the quiet PutObject must not start a run"
    )
    assert started[1].execution_arn == arn
    assert started[1].event["detail"]["object"]["key"] == "datasets/breast-cancer/train+2026-11-24.csv"

    assert run.status == "SUCCEEDED", run.cause
    assert run.record is not None
    assert run.record["status"] == "SUCCEEDED"
    assert run.record["trigger_kind"] == "data"
    assert run.record["data_key"] == key
    versions = pipeline.emulator.client("s3").list_object_versions(Bucket=pipeline.data_bucket, Prefix=key)["Versions"]
    assert [version["VersionId"] for version in versions] == [run.record["data_version_id"]]


def test_replaying_the_s3_sample_as_is_matches_no_rule_and_sends_nothing(pipeline: LocalPipeline) -> None:
    """Given the S3 sample sent unchanged (adapt_event=False), then its bucket is not the local data bucket: replay
    says so for the data rule (and why each other rule does not match), seeds nothing, sends nothing, and no
    execution starts."""
    before = pipeline.execution_marker()

    with pytest.raises(NoRuleMatches) as raised:
        replay(pipeline, load_event(EVENTS / "s3-object-created.json"), adapt_event=False)

    said = explanations(raised.value)
    assert said["PipelineDataUploaded"] == (
        f"detail.bucket.name is 'sagepipe-data-example'; the rule wants '{pipeline.data_bucket}'"
    )
    assert said["PipelineCodeCommitPushed"] == "source is 'aws.s3'; the rule wants 'aws.codecommit'"
    assert raised.value.notes == [], "nothing may be adapted or seeded when the event is sent as is"
    # Delivery is synchronous: an event that had been put would have started its execution already.
    assert context.current().wait_for_executions(before, 1, timeout=1.0) == []


@pytest.mark.parametrize(
    ("sample", "rule", "explanation"),
    [
        (
            "codecommit-tag-created.json",
            "PipelineCodeCommitPushed",
            "detail.referenceType is 'tag'; the rule wants 'branch'",
        ),
        (
            "codecommit-branch-deleted.json",
            "PipelineCodeCommitPushed",
            "detail.event is 'referenceDeleted'; the rule wants one of 'referenceCreated', 'referenceUpdated'",
        ),
        (
            "s3-object-deleted.json",
            "PipelineDataUploaded",
            "detail-type is 'Object Deleted'; the rule wants 'Object Created'",
        ),
    ],
)
def test_aws_samples_that_start_no_run_are_explained_and_not_sent(
    pipeline: LocalPipeline, sample: str, rule: str, explanation: str
) -> None:
    """Given AWS's documented sample of a tag push, a branch deletion or an object deletion (events/), when it is
    replayed (adapted to the local stack: its repository, branch and bucket), then replay refuses it at once: the
    rule it is about is named with the first field where the event differs, every rule that starts the pipeline
    is listed, nothing is seeded or sent, and no execution starts."""
    before = pipeline.execution_marker()

    with pytest.raises(NoRuleMatches) as raised:
        replay(pipeline, load_event(EVENTS / sample))

    said = explanations(raised.value)
    assert said[rule] == explanation
    assert set(said) == {
        "PipelineDataUploaded",
        "PipelineCodeCommitPushed",
        "PipelineGitHubPushed",
        "PipelineManualRunRequested",
    }
    assert "matches" not in said.values()
    assert not any(note.startswith(("seeded", "created")) for note in raised.value.notes), raised.value.notes
    assert context.current().wait_for_executions(before, 1, timeout=1.0) == []


def test_replaying_a_github_ping_with_a_raw_text_body_is_answered_and_starts_nothing(pipeline: LocalPipeline) -> None:
    """Given events/github-ping.json (GitHub's ping delivery, its body the raw JSON text GitHub sent), when it is
    replayed, then those bytes are signed with the local secret and delivered, the webhook answers 200, and there
    is nothing to run (no trigger, no execution)."""
    before = pipeline.execution_marker()
    sample = load_event(EVENTS / "github-ping.json")
    assert isinstance(sample["body"], str), "the sample keeps the body as GitHub's raw text"

    replayed = replay(pipeline, sample)

    assert replayed.trigger is None
    assert any(
        note.startswith("delivered to the webhook function, signed with the local secret: 200")
        for note in replayed.notes
    ), replayed.notes
    assert context.current().wait_for_executions(before, 1, timeout=1.0) == []


# ----------------------------------------------------------------------------------------------- the CLI


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    state_dir: Path

    @property
    def record(self) -> dict[str, object]:
        try:
            parsed = json.loads(self.stdout)
        except json.JSONDecodeError as error:
            message = f"stdout is not one JSON object ({error}):\n{self.stdout}\n--- stderr:\n{self.stderr}"
            raise AssertionError(message) from error
        assert isinstance(parsed, dict), self.stdout
        return parsed

    def run_dirs(self) -> list[Path]:
        return sorted(path for path in (self.state_dir / "runs").iterdir() if path.is_dir())

    def explain(self) -> str:
        return f"exit {self.returncode}\n--- stdout:\n{self.stdout}\n--- stderr:\n{self.stderr}"


def run_cli(work: Path, *arguments: str) -> CliRun:
    """`sagepipe local run --json` in a subprocess, in `work`, with its state there (never the repository's)."""
    script = Path(sys.executable).with_name("sagepipe")
    assert script.is_file(), f"the sagepipe console script is not installed next to {sys.executable}"
    # This process runs the session emulator: nothing of its endpoint may leak into the CLI's.
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("MOTO_", "AWS_", "GIT_"))
    } | {"PYTHONIOENCODING": "utf-8"}
    state_dir = work / "state"
    completed = subprocess.run(
        [str(script), "local", "run", "--json", "--state-dir", str(state_dir), *arguments],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    return CliRun(completed.returncode, completed.stdout, completed.stderr, state_dir)


def test_local_run_prints_a_succeeded_record_and_keeps_the_run_s_files(tmp_path: Path) -> None:
    """`sagepipe local run --json` pushes HEAD, uploads the default data, follows the run: exit 0, the record as
    one JSON object on stdout, progress on stderr, and the run's files in <state dir>/runs/<run id>/."""
    run = run_cli(tmp_path)
    assert run.returncode == 0, run.explain()
    record = run.record
    assert record["status"] == "SUCCEEDED"
    assert record["commit_id"] == git(PROJECT_ROOT, "rev-parse", "HEAD")
    assert re.fullmatch(r"[0-9a-f]{64}", str(record["artifact_sha256"]))
    assert record["trigger_kind"] == "data"
    assert "✓ Train" in run.stderr
    assert "✓ BuildImage" in run.stderr
    assert "emulator   http://localhost:" in run.stderr

    # Both runs are kept (`sagepipe console --local` shows them): the push's, SKIPPED without data, and the upload's.
    (push_dir,) = [path for path in run.run_dirs() if path.name != record["run_id"]]
    assert json.loads((push_dir / "record.json").read_text(encoding="utf-8"))["status"] == "SKIPPED"
    run_dir = run.state_dir / "runs" / str(record["run_id"])
    expected = {
        "record.json",
        "history.json",
        "definition.json",
        "training.log",
        "build.log",
        "model.tar.gz",
        "graph.dot",
    }
    if shutil.which("dot"):
        expected.add("graph.svg")
    present = {path.name for path in run_dir.iterdir()}
    assert expected <= present, f"missing {sorted(expected - present)} in {run_dir}"
    assert json.loads((run_dir / "record.json").read_text(encoding="utf-8")) == record
    assert json.loads((run_dir / "history.json").read_text(encoding="utf-8"))[-1]["type"] == "ExecutionSucceeded"
    assert (run_dir / "model.tar.gz").stat().st_size > 0
    assert "digraph" in (run_dir / "graph.dot").read_text(encoding="utf-8")


def test_local_run_with_data_lacking_the_target_column_fails_at_train(tmp_path: Path, training_data: Path) -> None:
    """`sagepipe local run --data <csv without target>` exits 1; its record is FAILED at Train, saying why."""
    header, _, rows = training_data.read_text(encoding="utf-8").partition("\n")
    assert header.endswith(",target")
    no_target = tmp_path / "no-target.csv"
    no_target.write_text(header.removesuffix(",target") + ",label\n" + rows, encoding="utf-8")

    run = run_cli(tmp_path, "--data", str(no_target))

    assert run.returncode == 1, run.explain()
    record = run.record
    assert record["status"] == "FAILED"
    assert record["failed_stage"] == "Train"
    assert "'target' column" in str(record["failure_reason"])
    assert "States.TaskFailed" in run.stderr, "the Train task's failure is shown as it happens"
    assert "= FAILED" in run.stderr
    run_dir = run.state_dir / "runs" / str(record["run_id"])
    assert "no 'target' column" in (run_dir / "training.log").read_text(encoding="utf-8")


def test_local_replay_of_an_event_no_rule_matches_exits_6_with_each_rule_s_first_mismatch(tmp_path: Path) -> None:
    """Given AWS's tag push sample, when `sagepipe local replay` runs on it, then it exits EXIT_NO_RULE_MATCHES (6)
    without a traceback, saying that nothing was sent and, for the CodeCommit rule, that referenceType is 'tag'."""
    script = Path(sys.executable).with_name("sagepipe")
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("MOTO_", "AWS_", "GIT_"))
    } | {"PYTHONIOENCODING": "utf-8"}

    completed = subprocess.run(
        [
            str(script),
            "local",
            "replay",
            "--state-dir",
            str(tmp_path / "state"),
            str(EVENTS / "codecommit-tag-created.json"),
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )

    explained = f"exit {completed.returncode}\n--- stdout:\n{completed.stdout}\n--- stderr:\n{completed.stderr}"
    assert completed.returncode == EXIT_NO_RULE_MATCHES == 6, explained
    assert "Traceback" not in completed.stderr, explained
    assert "nothing was sent" in completed.stderr, explained
    assert re.search(
        r"PipelineCodeCommitPushed +detail\.referenceType is 'tag'; the rule wants 'branch'", completed.stderr
    ), explained

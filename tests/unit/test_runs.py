"""`sagepipe runs` on moto in process: queries (never a Scan), diff, verify, rerun requests, and bad input.

The table is template.yaml's RunsTable (sagepipe.template.runs_table_request), the stack is a CloudFormation
stack with the outputs the commands read, records are sealed by the pipeline's own SealRecord code, and model
artifacts are digested by its own audit_digests: the commands are checked against what the pipeline writes.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from moto import mock_aws
from seal_record.seal import seal_record

from common.audit_digests import digest_archive
from common.dynamodb import to_attributes
from sagepipe.cli import EXIT_MODEL_DIFFERS, EXIT_NOT_VERIFIED, EXIT_USAGE, main
from sagepipe.runs.diff import diff_runs
from sagepipe.runs.errors import RunsError
from sagepipe.runs.queries import (
    INDEX_BY_COMMIT,
    INDEX_BY_DATA,
    INDEX_BY_MODEL,
    INDEX_BY_STATUS,
    INDEX_BY_TIME,
    RunsTable,
    parse_since,
)
from sagepipe.runs.rerun import compare_models, request_rerun, wait_for_rerun
from sagepipe.runs.stack import Stack, default_stack_name
from sagepipe.template import runs_table_request

REGION = "us-east-1"
STACK = "sagepipe-test"
TABLE = "sagepipe-test-runs"
ARTIFACTS = "sagepipe-test-artifacts"
LEDGER = "sagepipe-test-ledger"
DATA = "sagepipe-test-data"
COMMIT_A = "a" * 40
COMMIT_B = "b" * 40
EXECUTION = f"arn:aws:states:{REGION}:123456789012:execution:sagepipe-test-Pipeline"


class RecordingClient:
    """A boto3 client that records the operations made through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.operations: list[str] = []
        client.meta.events.register("before-call.dynamodb", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def model_archive(weights: bytes, mtime: int = 0) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size, info.mtime = len(weights), mtime
        tar.addfile(info, io.BytesIO(weights))
    return gzip.compress(raw.getvalue(), mtime=mtime)


@dataclass
class Account:
    """A moto account holding one deployed stack's audit trail."""

    dynamodb: Any
    s3: Any
    events: Any
    counter: int = 0
    run_ids: list[str] = field(default_factory=list)

    @property
    def stack(self) -> Stack:
        return Stack(STACK, REGION, TABLE, ARTIFACTS, LEDGER, DATA, None, {"TrainingVolumeSizeGb": "30"})

    def table(self, recording: bool = False) -> RunsTable:
        return RunsTable(RecordingClient(self.dynamodb) if recording else self.dynamodb, TABLE)

    def put_run(
        self,
        status: str = "SUCCEEDED",
        *,
        commit: str = COMMIT_A,
        data_version: str = "v1",
        weights: bytes = b"model weights",
        accuracy: str = "0.95614",
        hyperparameters: dict[str, str] | None = None,
        seal: bool = True,
        schema: int = 2,
        **extra: Any,
    ) -> str:
        """A run record as the pipeline writes it (with its model in the artifacts bucket), sealed."""
        self.counter += 1
        run_id = f"run-{self.counter:04d}"
        record: dict[str, Any] = {
            "pk": f"RUN#{run_id}",
            "sk": "RECORD",
            "schema_version": schema,
            "run_id": run_id,
            "execution_arn": f"{EXECUTION}:{run_id}",
            "environment": "dev",
            "status": status,
            "started_at": f"2026-11-{self.counter:02d}T10:00:00.000Z",
            "finished_at": f"2026-11-{self.counter:02d}T10:03:07.500Z",
            "updated_at": f"2026-11-{self.counter:02d}T10:03:07.500Z",
            "trigger_kind": "data",
            "trigger_source": "aws.s3",
            "trigger_event_id": f"event-{run_id}",
            "triggered_at": f"2026-11-{self.counter:02d}T09:59:59Z",
            "triggered_by": "arn:aws:iam::123456789012:user/ana",
            "instance_type": "ml.m5.large",
            "max_runtime_seconds": 3600,
            "hyperparameters": hyperparameters or {"n_estimators": "200", "max_depth": "3"},
            "commit_id": commit,
            "commit_repository": "sagepipe-training",
            "commit_branch": "main",
            "data_ref": f"s3://{DATA}/datasets/train set.csv?versionId={data_version}",
            "data_bucket": DATA,
            "data_key": "datasets/train set.csv",
            "data_version_id": data_version,
            "data_size_bytes": 121744,
        }
        if schema >= 2:
            record |= {"instance_count": 1, "volume_size_gb": 30}
        if status == "SUCCEEDED":
            body = model_archive(weights, mtime=1_700_000_000 + self.counter)
            key = f"runs/{run_id}/output/job/output/model.tar.gz"
            version = self.s3.put_object(Bucket=ARTIFACTS, Key=key, Body=body)["VersionId"]
            digest = digest_archive(io.BytesIO(body))
            record |= {
                "image_uri": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/repo@sha256:{'c' * 64}",
                "image_digest": f"sha256:{'c' * 64}",
                "image_built": False,
                "training_job_name": f"sagepipe-{run_id}-r0a0",
                "training_job_arn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/sagepipe-{run_id}-r0a0",
                "training_job_status": "Completed",
                "metrics": {"validation:accuracy": Decimal(accuracy), "train:accuracy": Decimal("1")},
                "artifact_uri": f"s3://{ARTIFACTS}/{key}",
                "artifact_sha256": digest.sha256,
                "artifact_size_bytes": digest.size_bytes,
                "timings": {"total_seconds": Decimal("187.5"), "training_seconds": Decimal("120.25")},
            }
            if schema >= 2:
                record |= {"model_content_sha256": digest.content_sha256, "artifact_version_id": version}
        elif status == "FAILED":
            record |= {
                "failed_stage": "Train",
                "error": "States.TaskFailed",
                "cause": "{}",
                "failure_reason": "ValueError: no target",
            }
        record |= extra
        self.dynamodb.put_item(TableName=TABLE, Item=to_attributes(record))
        if seal and schema >= 2:
            seal_record(self.dynamodb, self.s3, table=TABLE, bucket=LEDGER, run_id=run_id)
        self.run_ids.append(run_id)
        return run_id

    def put_other_items(self) -> None:
        """What else the table holds: a claim, the latest pointer, a webhook idempotency record."""
        items: list[dict[str, Any]] = [
            {
                "pk": f"CLAIM#{COMMIT_A}#s3://{DATA}/x?versionId=v1",
                "sk": "CLAIM",
                "run_id": "run-0001",
                "commit_id": COMMIT_A,
                "data_ref": f"s3://{DATA}/x?versionId=v1",
                "claimed_at": "2026-11-30T00:00:00Z",
            },
            {
                "pk": "POINTER",
                "sk": "LATEST",
                "latest_commit": {"commit_id": COMMIT_A},
                "updated_at": "2026-11-30T00:00:00Z",
            },
            {"pk": "idempotency#github-webhook", "sk": "abc", "status": "COMPLETED", "expiration": 1},
        ]
        for item in items:
            self.dynamodb.put_item(TableName=TABLE, Item=to_attributes(item))

    def edit(self, run_id: str, expression: str, values: dict[str, Any], names: dict[str, str] | None = None) -> None:
        request: dict[str, Any] = {
            "TableName": TABLE,
            "Key": {"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RECORD"}},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        self.dynamodb.update_item(**request)


@pytest.fixture(scope="module")
def runs_table_schema() -> dict[str, Any]:
    """The CreateTable request for template.yaml's RunsTable: read from the template once for the module."""
    return runs_table_request(TABLE)


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch, runs_table_schema: dict[str, Any]) -> Iterator[Account]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        dynamodb.create_table(**copy.deepcopy(runs_table_schema))
        for bucket in (ARTIFACTS, DATA):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket=LEDGER, ObjectLockEnabledForBucket=True)
        s3.put_object_lock_configuration(
            Bucket=LEDGER,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
            },
        )
        outputs = {
            "RunsTableName": TABLE,
            "ArtifactsBucketName": ARTIFACTS,
            "LedgerBucketName": LEDGER,
            "DataBucketName": DATA,
        }
        template = {
            "Parameters": {"TrainingVolumeSizeGb": {"Type": "String", "Default": "30"}},
            "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {name: {"Value": value} for name, value in outputs.items()},
        }
        with pytest.warns(UserWarning, match="WaitConditionHandle"):
            boto3.client("cloudformation", region_name=REGION).create_stack(
                StackName=STACK, TemplateBody=json.dumps(template)
            )
        yield Account(dynamodb, s3, boto3.client("events", region_name=REGION))


def cli(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """The CLI in process, as a user runs it."""
    return CliRunner(mix_stderr=False).invoke(main, ["runs", *args, "--stack", STACK], env=env or {})


def assert_one_line_usage_error(result: Result, complaint: str) -> None:
    """Bad input: exit code 2, one line on stderr that says what is wrong, no traceback."""
    assert result.exit_code == EXIT_USAGE, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert complaint in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# ------------------------------------------------------------------------------------------------------ queries
def test_list_is_newest_first_paginated_and_only_run_records(account: Account) -> None:
    """Given five runs and the table's claim, pointer and idempotency items, when listed two at a time, then the
    pages are newest first, the other items never appear, and each page is one Query on runs-by-time."""
    account.put_other_items()
    for _ in range(5):
        account.put_run()
    table = account.table(recording=True)

    pages, token = [], None
    while True:
        page = table.list(limit=2, token=token)
        pages.append([record["run_id"] for record in page.records])
        assert page.index == INDEX_BY_TIME
        token = page.next_token
        if token is None:
            break

    listed = [run for run_ids in pages for run in run_ids]
    assert listed == list(reversed(account.run_ids))
    assert all(len(run_ids) <= 2 for run_ids in pages)
    assert set(table.dynamodb.operations) == {"Query"}
    assert len(table.dynamodb.operations) == len(pages)


def test_each_filter_uses_its_index_and_one_query(account: Account) -> None:
    """Given runs of two commits, two statuses and two dates, then each filter is one Query on its index."""
    old = account.put_run(commit=COMMIT_A)
    failed = account.put_run("FAILED", commit=COMMIT_B)
    recent = account.put_run(commit=COMMIT_B)
    table = account.table(recording=True)

    by_status = table.list(status="FAILED")
    by_commit = table.list(commit=COMMIT_B)
    since = table.list(since=parse_since("2026-11-02"))
    both = table.list(commit=COMMIT_B, status="SUCCEEDED")

    assert [r["run_id"] for r in by_status.records] == [failed]
    assert by_status.index == INDEX_BY_STATUS
    assert [r["run_id"] for r in by_commit.records] == [recent, failed]
    assert by_commit.index == INDEX_BY_COMMIT
    assert [r["run_id"] for r in since.records] == [recent, failed]
    assert old not in [r["run_id"] for r in since.records]
    assert [r["run_id"] for r in both.records] == [recent]
    assert table.dynamodb.operations == ["Query"] * 4


def test_the_trigger_filter_keeps_only_runs_of_that_trigger_kind(account: Account) -> None:
    """Given data, code and manual runs, when listed by trigger (alone, and with a status), then only that kind's
    runs come back, newest first, through the index the other filters choose; the CLI's --trigger does the same."""
    data = account.put_run()
    code = account.put_run(trigger_kind="code", trigger_source="aws.codecommit")
    failed_code = account.put_run("FAILED", trigger_kind="code", trigger_source="aws.codecommit")
    account.put_run(trigger_kind="manual", trigger_source="sagepipe.manual")
    table = account.table(recording=True)

    by_code = table.list(trigger="code")
    failed_by_code = table.list(trigger="code", status="FAILED")
    result = cli("list", "--trigger", "DATA", "--json")

    assert [r["run_id"] for r in by_code.records] == [failed_code, code]
    assert by_code.index == INDEX_BY_TIME
    assert [r["run_id"] for r in failed_by_code.records] == [failed_code]
    assert failed_by_code.index == INDEX_BY_STATUS
    assert result.exit_code == 0, result.stderr
    assert [r["run_id"] for r in json.loads(result.stdout)["runs"]] == [data]


def test_lineage_by_each_key_is_one_query_and_a_repacked_model_is_the_same_model(account: Account) -> None:
    """Given two runs that produced the same model (packed at other times: other tarball sha256s) on two data
    versions, then lineage by the content digest finds both, by commit and by data version the right ones."""
    first = account.put_run(weights=b"same weights", data_version="v1")
    second = account.put_run(weights=b"same weights", data_version="v2")
    other = account.put_run(weights=b"other weights", commit=COMMIT_B, data_version="v2")
    table = account.table(recording=True)
    records = {run: table.get(run) for run in (first, second, other)}
    assert records[first]["artifact_sha256"] != records[second]["artifact_sha256"]

    by_model = table.lineage(model_content_sha256=records[first]["model_content_sha256"])
    by_commit = table.lineage(commit=COMMIT_B)
    by_data = table.lineage(data_ref=f"s3://{DATA}/datasets/train set.csv?versionId=v2")

    assert [r["run_id"] for r in by_model.records] == [second, first]
    assert by_model.index == INDEX_BY_MODEL
    assert [r["run_id"] for r in by_commit.records] == [other]
    assert [r["run_id"] for r in by_data.records] == [other, second]
    assert by_data.index == INDEX_BY_DATA
    assert table.dynamodb.operations == ["GetItem"] * 3 + ["Query"] * 3


def test_lineage_cli_takes_a_model_file_and_an_encoded_data_uri(account: Account, tmp_path: Path) -> None:
    """Given a model.tar.gz repacked at another time, then --model-file finds the run that produced its model;
    and --data accepts the key URL-encoded, as the S3 console copies it."""
    run = account.put_run(weights=b"deployed weights")
    deployed = tmp_path / "model.tar.gz"
    deployed.write_bytes(model_archive(b"deployed weights", mtime=1_234))

    by_file = cli("lineage", "--model-file", str(deployed), "--json")
    by_data = cli("lineage", "--data", f"s3://{DATA}/datasets/train%20set.csv?versionId=v1", "--json")

    assert by_file.exit_code == 0, by_file.stderr
    assert [r["run_id"] for r in json.loads(by_file.stdout)["runs"]] == [run]
    assert json.loads(by_data.stdout)["key"] == {"data_ref": f"s3://{DATA}/datasets/train set.csv?versionId=v1"}
    assert [r["run_id"] for r in json.loads(by_data.stdout)["runs"]] == [run]


# ------------------------------------------------------------------------------------------------------ list/show
def test_list_and_show_read_as_tables_and_sections(account: Account) -> None:
    """Given a run, then `list` is a table with its headline metric and duration, and `show` groups the record
    with console links; --json gives the same record as numbers and strings."""
    run = account.put_run(accuracy="0.95614")

    listed = cli("list")
    shown = cli("show", run)
    as_json = cli("show", run, "--json")

    assert listed.exit_code == 0, listed.stderr
    header, rule, row = listed.stdout.splitlines()[:3]
    assert header.split() == [
        "RUN",
        "STARTED",
        "STATUS",
        "TRIGGER",
        "WHO",
        "COMMIT",
        "DATA",
        "VERSION",
        "VALIDATION:ACCURACY",
        "DURATION",
    ]
    assert set(rule.replace(" ", "")) == {"─"}
    assert row.split()[:2] == [run, "2026-11-01"]
    for shown_value in ("SUCCEEDED", "user/ana", "0.95614", "3m08s"):
        assert shown_value in row, shown_value
    assert shown.exit_code == 0, shown.stderr
    for section in ("trigger", "code", "data", "image", "training", "result", "ledger", "links"):
        assert f"\n{section}\n" in shown.stdout, section
    assert "states/home?region=us-east-1#/v2/executions/details/" in shown.stdout
    assert "logStreamNameFilter$3Dsagepipe-run-0001-r0a0" in shown.stdout
    assert "lacks" not in shown.stdout
    document = json.loads(as_json.stdout)
    assert document["record"]["metrics"]["validation:accuracy"] == 0.95614
    assert document["lacks"] == []


def test_a_record_from_before_schema_2_is_shown_with_what_it_lacks(account: Account) -> None:
    """Given a schema 1 record (no content digest, no ledger entry), then it is listed and shown, with what it
    lacks and why, not refused; and verify says it cannot be verified (exit 4), listing why."""
    run = account.put_run(schema=1)

    listed = cli("list", "--json")
    shown = cli("show", run)
    verified = cli("verify", run)

    assert [r["run_id"] for r in json.loads(listed.stdout)["runs"]] == [run]
    assert shown.exit_code == 0, shown.stderr
    assert "lacks  instance_count, volume_size_gb, model_content_sha256, ledger entry" in shown.stdout
    assert "written with schema 1" in shown.stdout
    assert verified.exit_code == EXIT_NOT_VERIFIED
    assert "✓ model sha256" in verified.stdout
    assert "? model content" in verified.stdout
    assert "? ledger" in verified.stdout


# ------------------------------------------------------------------------------------------------------ diff
def git_repository(path: Path) -> tuple[str, str]:
    """A repository with two commits: the second changes container/train.py and a README."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()

    (path / "container").mkdir(parents=True)
    (path / "container" / "train.py").write_text("v1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "one")
    first = git("rev-parse", "HEAD")
    (path / "container" / "train.py").write_text("v2\n")
    (path / "README.md").write_text("docs\n")
    git("add", ".")
    git("commit", "-qm", "two")
    return first, git("rev-parse", "HEAD")


def test_diff_shows_what_changed_with_metric_deltas_and_the_training_codes_files(
    account: Account, tmp_path: Path
) -> None:
    """Given two runs of two commits, data versions and hyperparameters, then diff lists each difference, each
    metric's delta, and the files changed under container/ (not the README) between the commits."""
    first_commit, second_commit = git_repository(tmp_path / "repo")
    a = account.put_run(commit=first_commit, data_version="v1", accuracy="0.90", weights=b"a")
    b = account.put_run(
        commit=second_commit,
        data_version="v2",
        accuracy="0.95",
        weights=b"b",
        hyperparameters={"n_estimators": "300", "max_depth": "3"},
    )

    result = diff_runs(account.table().get(a), account.table().get(b), tmp_path / "repo")
    shown = cli("diff", a, b, "--repo", str(tmp_path / "repo"))

    differs = {f"{row.section}.{row.field}" for row in result.differences}
    assert {
        "code.commit_id",
        "data.data_version_id",
        "hyperparameters.n_estimators",
        "metrics.validation:accuracy",
        "model.model_content_sha256",
        "model.artifact_sha256",
    } <= differs
    assert "hyperparameters.max_depth" not in differs
    assert "instances.instance_type" not in differs
    (accuracy,) = [row for row in result.rows if row.field == "validation:accuracy"]
    assert accuracy.delta == pytest.approx(0.05)
    assert result.changed_files == ["container/train.py"]
    assert shown.exit_code == 0, shown.stderr
    assert "+0.05" in shown.stdout
    assert "container/train.py" in shown.stdout
    assert "README.md" not in shown.stdout


def test_diff_without_the_repository_says_how_to_list_the_files(account: Account, tmp_path: Path) -> None:
    a, b = account.put_run(commit=COMMIT_A), account.put_run(commit=COMMIT_B)
    result = diff_runs(account.table().get(a), account.table().get(b), None)
    assert result.changed_files is None
    assert "--repo PATH" in str(result.files_note)


# ------------------------------------------------------------------------------------------------------ verify
def test_verify_passes_on_a_sealed_record_and_its_stored_model(account: Account) -> None:
    run = account.put_run()
    result = cli("verify", run)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"run {run}: verified")
    for check in ("model sha256", "model content", "ledger sha256", "ledger lock", "record"):
        assert f"✓ {check}" in result.stdout, check


@pytest.mark.parametrize(
    ("tamper", "complaint"),
    [
        (
            lambda account, run: account.edit(
                run, "SET #metrics.#m = :v", {":v": {"N": "0.99"}}, {"#metrics": "metrics", "#m": "validation:accuracy"}
            ),
            "differs from what was sealed: metrics",
        ),
        (
            lambda account, run: account.edit(run, "SET triggered_by = :v", {":v": {"S": "someone else"}}),
            "differs from what was sealed: triggered_by",
        ),
        (
            lambda account, run: account.edit(run, "SET ledger_sha256 = :v", {":v": {"S": "0" * 64}}),
            "the record says 0000000000",
        ),
        (
            lambda account, run: account.s3.put_object(
                Bucket=ARTIFACTS,
                Key=f"runs/{run}/output/job/output/model.tar.gz",
                Body=model_archive(b"retrained weights"),
            ),
            "the stored model's files digest to",
        ),
        (
            lambda account, run: account.edit(
                run, "SET ledger_uri = :v", {":v": {"S": "s3://elsewhere/ledger/x.json"}}
            ),
            "is not in the stack's ledger bucket",
        ),
    ],
    ids=["edited-metric", "edited-field", "edited-seal", "overwritten-model", "moved-ledger"],
)
def test_verify_fails_with_exit_4_on_each_kind_of_tampering(account: Account, tamper: Any, complaint: str) -> None:
    """Given a sealed run, when its record, seal or model is changed after the fact, then verify exits 4 and names
    what no longer matches."""
    run = account.put_run()
    tamper(account, run)

    result = cli("verify", run)

    assert result.exit_code == EXIT_NOT_VERIFIED, result.stdout
    assert "NOT verified" in result.stdout
    assert complaint in result.stdout
    assert json.loads(cli("verify", run, "--json").stdout)["verified"] is False


def test_verify_detects_a_rewritten_ledger_that_the_record_points_at(account: Account) -> None:
    """Given a record edited, and a second ledger version written with the edited record's canonical JSON and the
    record pointed at it, then verify still fails: the first version of the ledger object holds other bytes."""
    from seal_record.seal import read_record

    from common.audit_digests import ledger_body, ledger_key, sha256_hex

    run = account.put_run()
    account.edit(
        run, "SET #metrics.#m = :v", {":v": {"N": "0.99"}}, {"#metrics": "metrics", "#m": "validation:accuracy"}
    )
    forged = ledger_body(read_record(account.dynamodb, TABLE, run) or {})
    version = account.s3.put_object(Bucket=LEDGER, Key=ledger_key(run), Body=forged, ChecksumAlgorithm="SHA256")
    account.edit(
        run,
        "SET ledger_version_id = :v, ledger_sha256 = :s",
        {":v": {"S": version["VersionId"]}, ":s": {"S": sha256_hex(forged)}},
    )

    result = cli("verify", run)

    assert result.exit_code == EXIT_NOT_VERIFIED
    assert "✓ record" in result.stdout
    assert "✗ ledger history" in result.stdout


# ------------------------------------------------------------------------------------------------------ rerun
@dataclass
class FakeClock:
    """Time that passes only when the code under test sleeps."""

    time: float = 0.0
    slept: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += seconds


def test_a_rerun_request_carries_the_originals_configuration_and_is_found_when_it_ends(account: Account) -> None:
    """Given a run, when a re-run is requested, then one manual event carries the commit, data version, training
    configuration and rerunOf (what the ManualRunRequested rule delivers); and once a record of that request is
    final (not its DUPLICATE), the wait returns it and the models are compared by content digest."""
    account.s3.put_object(Bucket=DATA, Key="datasets/train set.csv", Body=b"a,target\n1,0\n")
    version = account.s3.list_object_versions(Bucket=DATA)["Versions"][0]["VersionId"]
    original = account.put_run(data_version=version, weights=b"w", hyperparameters={"seed": "7"})
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="manual")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    account.events.put_rule(Name="manual", EventPattern=json.dumps({"source": ["sagepipe.manual"]}))
    account.events.put_targets(Rule="manual", Targets=[{"Id": "q", "Arn": queue_arn}])
    table = account.table()

    request = request_rerun(
        account.events,
        boto3.client("sts", region_name=REGION),
        account.s3,
        table.get(original),
        account.stack,
        reason="reproduce",
    )

    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    detail = json.loads(message["Body"])["detail"]
    assert detail["rerunOf"] == original
    assert detail["rerunRequestId"] == request.request_id
    assert detail["training"] == {
        "instanceType": "ml.m5.large",
        "instanceCount": 1,
        "volumeSizeGb": 30,
        "maxRuntimeSeconds": 3600,
        "hyperparameters": {"seed": "7"},
    }
    assert (detail["commit"], detail["data"]["versionId"], detail["reason"]) == (COMMIT_A, version, "reproduce")

    # The pipeline's records of that request: its duplicate (a redelivery), then the re-run itself.
    account.put_run(
        "DUPLICATE",
        data_version=version,
        rerun_of=original,
        rerun_request_id=request.request_id,
        duplicate_of="elsewhere",
        started_at="2026-12-30T10:00:00.000Z",
    )
    clock = FakeClock()
    assert wait_for_rerun(table, request, timeout=5, poll_seconds=1, sleep=clock.sleep, clock=clock.now) is None
    assert clock.slept == [1, 2, 2], "backs off, and never waits past the timeout"
    rerun = account.put_run(
        data_version=version,
        weights=b"w",
        rerun_of=original,
        rerun_request_id=request.request_id,
        started_at="2026-12-31T10:00:00.000Z",
    )

    found = wait_for_rerun(table, request, timeout=5, poll_seconds=1, sleep=clock.sleep, clock=clock.now)

    assert found is not None
    assert found["run_id"] == rerun
    assert compare_models(table.get(original), found).identical is True


def test_rerun_cli_reports_a_different_model_with_exit_3(account: Account) -> None:
    """Given a re-run whose model differs from the original's, then `rerun --wait` says so and exits 3."""
    account.s3.put_object(Bucket=DATA, Key="datasets/train set.csv", Body=b"a,target\n1,0\n")
    version = account.s3.list_object_versions(Bucket=DATA)["Versions"][0]["VersionId"]
    original = account.put_run(data_version=version, weights=b"first")
    # The re-run's record is there before the request: a started_at in the future stands for "after it".
    account.put_run(data_version=version, weights=b"second", rerun_of=original, started_at="2099-01-01T00:00:00Z")

    import sagepipe.runs.rerun as rerun_module

    original_request = rerun_module.request_rerun

    def request_with_known_id(*args: Any, **kwargs: Any) -> Any:
        request = original_request(*args, **kwargs)
        account.edit(account.run_ids[-1], "SET rerun_request_id = :r", {":r": {"S": request.request_id}})
        return request

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rerun_module, "request_rerun", request_with_known_id)
        result = cli("rerun", original, "--timeout", "5")

    assert result.exit_code == EXIT_MODEL_DIFFERS, result.stdout + result.stderr
    assert "different model" in result.stdout


def test_a_run_without_a_commit_and_data_cannot_be_rerun(account: Account) -> None:
    skipped = account.put_run("SKIPPED", commit_id=None, data_ref=None, data_bucket=None, data_version_id=None)
    assert_one_line_usage_error(cli("rerun", skipped, "--no-wait"), "nothing to re-run")


# ------------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("show", "no-such-run"), f"no run no-such-run in table {TABLE}"),
        (("show", "has space"), "is not a run id"),
        (("verify", "no-such-run"), "no run no-such-run"),
        (("diff", "no-such-run", "other"), "no run no-such-run"),
        (("lineage", "--data", "s3:/bucket-only"), "--data must look like s3://bucket/key?versionId="),
        (("lineage", "--data", f"s3://{DATA}/datasets/x.csv"), "--data needs ?versionId="),
        (("lineage", "--model-sha256", "abc"), "is not a sha256"),
        (("lineage", "--commit", COMMIT_A, "--model-sha256", "a" * 64), "exactly one of"),
        (("lineage",), "exactly one of"),
        (("list", "--since", "last tuesday"), "--since 'last tuesday'"),
        (("list", "--limit", "0"), "--limit must be between 1 and 1000"),
        (("list", "--next", "not-a-token"), "--next is not a token"),
        (("list", "--commit", "zzz"), "--commit 'zzz' is not a full 40-character SHA"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, tuple) else None,
)
def test_bad_input_is_one_line_and_exit_2(account: Account, args: tuple[str, ...], complaint: str) -> None:
    assert_one_line_usage_error(cli(*args), complaint)


def test_a_next_token_of_another_query_is_refused(account: Account) -> None:
    for _ in range(3):
        account.put_run()
    token = json.loads(cli("list", "--limit", "1", "--json").stdout)["next"]
    assert_one_line_usage_error(cli("list", "--status", "FAILED", "--next", token), "continues another query")


def test_a_stack_that_does_not_exist_is_one_line_and_exit_2(account: Account) -> None:
    result = CliRunner(mix_stderr=False).invoke(main, ["runs", "list", "--stack", "no-such-stack"])
    assert_one_line_usage_error(result, "no stack named 'no-such-stack' in us-east-1")


def test_missing_credentials_and_region_are_one_line_and_exit_2(account: Account, tmp_path: Path) -> None:
    nothing = str(tmp_path / "none")
    no_credentials: dict[str, str | None] = {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_SECURITY_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_SHARED_CREDENTIALS_FILE": nothing,
        "AWS_CONFIG_FILE": nothing,
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
        "AWS_WEB_IDENTITY_TOKEN_FILE": None,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    assert_one_line_usage_error(cli("list", env=no_credentials), "no AWS credentials")
    no_region = no_credentials | {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    no_region |= {"AWS_DEFAULT_REGION": None, "AWS_REGION": None}
    assert_one_line_usage_error(cli("list", env=no_region), "no AWS region")


def test_the_stack_name_defaults_to_samconfig(tmp_path: Path) -> None:
    """stack_name from [default.deploy.parameters], else [default.global.parameters] (the project's own file
    has it there); no file, no default; a broken file is one clear error."""
    config = tmp_path / "samconfig.toml"
    assert default_stack_name(config) is None
    config.write_text('version = 0.1\n[default.global.parameters]\nstack_name = "from-global"\n')
    assert default_stack_name(config) == "from-global"
    config.write_text(config.read_text() + '[default.deploy.parameters]\nstack_name = "from-deploy"\n')
    assert default_stack_name(config) == "from-deploy"
    config.write_text("[default")
    with pytest.raises(RunsError, match="is not valid TOML"):
        default_stack_name(config)


class RetentionAnswers:
    """An S3 client whose GetObjectRetention answers with an error code: what verify sees from AWS when the lock
    headers are not in the GetObject response."""

    def __init__(self, code: str) -> None:
        self.code = code

    def get_object_retention(self, **_: Any) -> Any:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": self.code, "Message": "..."}}, "GetObjectRetention")


@pytest.mark.parametrize(
    ("code", "outcome", "detail"),
    [
        ("NoSuchObjectLockConfiguration", "mismatch", "is not under Object Lock retention"),
        ("AccessDenied", "missing", "needs s3:GetObjectRetention"),
    ],
)
def test_a_version_without_lock_headers_is_asked_for_its_retention(code: str, outcome: str, detail: str) -> None:
    """GetObject returns the lock headers only to a caller allowed s3:GetObjectRetention; without them, verify asks
    GetObjectRetention: no lock configuration is a mismatch, no permission is a check it could not make."""
    from sagepipe.runs.verify import Verification, _check_lock

    result = Verification("run-1")
    _check_lock(RetentionAnswers(code), {}, bucket=LEDGER, key="ledger/run-1.json", version="v1", result=result)
    (check,) = result.checks
    assert (check.name, check.outcome) == ("ledger lock", outcome)
    assert detail in check.detail
    assert not result.verified


def test_diff_shows_the_cache_keys_parts_and_which_one_differs() -> None:
    """Given two runs whose training cache keys differ only in their data's sha256, when diffed, then the cache
    section and every key part are listed, and the only differing part is data_sha256 (why they did not share a
    model)."""
    parts = {
        "cache_version": "1",
        "image": "tree-" + "a" * 40,
        "data_sha256": "1" * 64,
        "hyperparameters": {"n_estimators": "200"},
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "template_parameters": {"volume_size_gb": 30, "max_runtime_seconds": 3600},
    }
    a = {"run_id": "a", "cache_key": "k1", "cache_decision": "miss", "forced": False, "cache_key_parts": parts}
    b = a | {"run_id": "b", "cache_key": "k2", "cache_key_parts": parts | {"data_sha256": "2" * 64}}

    result = diff_runs(a, b, None)

    rows = {(row.section, row.field): row for row in result.rows}
    assert {field for section, field in rows if section == "cache key parts"} == set(parts)
    differing = [(row.section, row.field) for row in result.differences]
    assert ("cache key parts", "data_sha256") in differing
    assert ("cache", "cache_key") in differing
    assert not [item for item in differing if item[0] == "cache key parts" and item[1] != "data_sha256"]


# ----------------------------------------------------------------------------------------------- cached runs
@pytest.mark.parametrize(
    ("record", "good"),
    [
        ({"status": "SUCCEEDED"}, True),
        ({"status": "CACHED", "gate": {"passed": True}}, True),
        ({"status": "CACHED"}, True),
        ({"status": "CACHED", "gate": {"passed": False}}, False),
        ({"status": "REJECTED", "gate": {"passed": False}}, False),
        ({"status": "FAILED"}, False),
    ],
    ids=["succeeded", "cached-passed", "cached-before-the-gate", "cached-rejected", "rejected", "failed"],
)
def test_a_local_run_ends_well_only_with_a_model_the_gate_let_through(record: dict[str, Any], good: bool) -> None:
    """Given a run's record, then `sagepipe local run` exits 0 only for a SUCCEEDED run or a CACHED one whose gate
    passed (or that predates the gate on cached runs): a cached model the gate rejects is no better than a
    REJECTED one."""
    from sagepipe.cli import run_has_a_good_model

    assert run_has_a_good_model(record) is good


def test_a_cached_rerun_report_says_what_the_gate_made_of_the_cached_model(capsys: pytest.CaptureFixture[str]) -> None:
    """Given a re-run that ended CACHED and whose gate rejected the cached model, then the report names the source,
    the gate's verdict with its summary, and how to train again."""
    from sagepipe.cli import _report_cached_rerun

    record = {"run_id": "r-2", "cached_from": "r-1", "gate": {"passed": False, "summary": "m 0.8 is worse"}}

    _report_cached_rerun({}, record, as_json=False)

    assert capsys.readouterr().out.splitlines() == [
        "run r-2 CACHED from run r-1: no training job ran",
        "the quality gate REJECTED the cached model: m 0.8 is worse",
        "its training cache key matches; to train again and compare the models, re-run with --force",
    ]

"""What each `sagepipe runs` command reads from the runs table, against 1,000 synthetic run records.

    .venv/bin/python bench/runs_queries.py [--records 1000]

moto, in this process, holds template.yaml's runs table (its five indexes included), 1,000 run records of
every status beside their claims, the latest pointer and webhook idempotency records, and the CloudFormation
outputs the commands read. Each command runs as a user runs it (the CLI, in process); every DynamoDB call it
makes is recorded with ReturnConsumedCapacity=TOTAL. Prints one line per command: its calls (operation and
index), the items they returned, the capacity the emulator reported (moto's figure: it does not size items, so
it is not what AWS would bill), and the read units DynamoDB's documented rule gives for the items returned
(eventually consistent Query: 0.5 unit per 4 KB of the items read, summed and rounded up; strongly consistent
GetItem: 1 unit per 4 KB of the item; a filtered Query is billed for what it reads before the filter, so its
estimate is a floor). Then it asserts that no command scanned.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import math
import os
import random
import tarfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
import botocore.session
from click.testing import CliRunner
from moto import mock_aws

from sagepipe.cli import main
from sagepipe.runs.audit_digests import digest_archive, ledger_body, ledger_key, sha256_hex
from sagepipe.template import runs_table_request

REGION = "us-east-1"
STACK = "sagepipe-bench"
TABLE = "sagepipe-bench-runs"
ARTIFACTS = "sagepipe-bench-artifacts"
LEDGER = "sagepipe-bench-ledger"
DATA = "sagepipe-bench-data"
FOUR_KB = 4096


@dataclass
class Call:
    operation: str
    index: str | None
    items: int = 0
    item_bytes: list[int] = field(default_factory=list)
    reported: float | None = None
    consistent: bool = False

    @property
    def documented_units(self) -> float:
        """DynamoDB's read-unit rule for what this call read (developer guide, "Read and write operations")."""
        if self.operation == "GetItem":
            return math.ceil(max(sum(self.item_bytes), 1) / FOUR_KB) * (1.0 if self.consistent else 0.5)
        if self.operation == "Query":
            return math.ceil(max(sum(self.item_bytes), 1) / FOUR_KB) * 0.5
        return float("nan")


def attribute_size(value: dict[str, Any]) -> int:
    """An attribute value's size by DynamoDB's rule (developer guide, "Item sizes and formats"): strings and
    binary by their bytes, numbers about one byte per two digits plus one, maps and lists 3 bytes plus their
    elements (and a map's names)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return len(inner.lstrip("-").replace(".", "")) // 2 + 1
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "M":
        return 3 + sum(len(name.encode()) + attribute_size(item) for name, item in inner.items())
    if kind == "L":
        return 3 + sum(1 + attribute_size(item) for item in inner)
    return len(json.dumps(inner))


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


@contextmanager
def recorded_dynamodb_calls(calls: list[Call]) -> Iterator[None]:
    """Every DynamoDB client created meanwhile asks for its consumed capacity and records its calls."""
    original = botocore.session.Session.create_client

    def before(params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params["ReturnConsumedCapacity"] = "TOTAL"
        calls.append(Call(model.name, params.get("IndexName"), consistent=bool(params.get("ConsistentRead"))))

    def after(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        call = calls[-1]
        items = parsed.get("Items") or ([parsed["Item"]] if "Item" in parsed else [])
        call.items = len(items)
        call.item_bytes = [item_size(item) for item in items]
        capacity = parsed.get("ConsumedCapacity")
        call.reported = capacity.get("CapacityUnits") if isinstance(capacity, dict) else None

    def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = original(self, service_name, *args, **kwargs)
        if service_name == "dynamodb":
            client.meta.events.register("before-parameter-build.dynamodb", before)
            client.meta.events.register("after-call.dynamodb", after)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------------------- the account
def model_archive(weights: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(weights)
        tar.addfile(info, io.BytesIO(weights))
    return gzip.compress(raw.getvalue(), mtime=0)


def serialise(values: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in values.items() if value is not None}


@dataclass
class Synthetic:
    run_ids: list[str]
    commits: list[str]
    data_refs: list[str]
    models: list[str]
    sealed_run: str


def synthetic_records(count: int, dynamodb: Any, s3: Any) -> Synthetic:
    """`count` run records: 60% SUCCEEDED, 15% FAILED (each with a 2 KB cause), 10% SKIPPED, 10% DUPLICATE, 5%
    STOPPED; over 40 commits, 200 data versions, a model reproduced now and then; with their claims, the pointer
    and 50 idempotency records. One SUCCEEDED run is sealed with its model stored, for `verify`."""
    chance = random.Random(7)  # noqa: S311 - reproducible synthetic data, not a secret
    commits = [hashlib.sha1(f"commit {n}".encode()).hexdigest() for n in range(40)]  # noqa: S324 - a fake SHA
    data_refs = [f"s3://{DATA}/datasets/part-{n:03d}.csv?versionId=v{n:04d}" for n in range(200)]
    models = [hashlib.sha256(f"model {n}".encode()).hexdigest() for n in range(450)]
    statuses = ["SUCCEEDED"] * 60 + ["FAILED"] * 15 + ["SKIPPED"] * 10 + ["DUPLICATE"] * 10 + ["STOPPED"] * 5
    run_ids = []
    requests = []
    for number in range(count):
        run_id = f"{number:08d}-0000-4000-8000-{chance.getrandbits(48):012x}"
        run_ids.append(run_id)
        status = chance.choice(statuses)
        commit = chance.choice(commits)
        data_ref = chance.choice(data_refs)
        key, _, version = data_ref.removeprefix(f"s3://{DATA}/").partition("?versionId=")
        started = (
            f"2026-{1 + number * 11 // count:02d}-{1 + number % 28:02d}T{number % 24:02d}:00:{number % 60:02d}.000Z"
        )
        record: dict[str, Any] = {
            "pk": f"RUN#{run_id}",
            "sk": "RECORD",
            "schema_version": 2,
            "run_id": run_id,
            "execution_arn": f"arn:aws:states:{REGION}:123456789012:execution:sagepipe-bench-Pipeline:{run_id}",
            "environment": "prod",
            "status": status,
            "started_at": started,
            "finished_at": started,
            "updated_at": started,
            "trigger_kind": chance.choice(["data", "code", "manual"]),
            "trigger_source": "aws.s3",
            "trigger_event_id": f"event-{number}",
            "triggered_at": started,
            "triggered_by": "arn:aws:iam::123456789012:user/ml-engineer",
            "instance_type": "ml.m5.large",
            "instance_count": 1,
            "volume_size_gb": 30,
            "max_runtime_seconds": 3600,
            "hyperparameters": {"n_estimators": "200", "max_depth": "3", "learning_rate": "0.1"},
            "commit_id": commit,
            "commit_repository": "sagepipe-training",
            "commit_branch": "main",
            "data_ref": data_ref,
            "data_bucket": DATA,
            "data_key": key,
            "data_version_id": version,
            "data_size_bytes": 121744,
            "ledger_uri": f"s3://{LEDGER}/ledger/{run_id}.json",
            "ledger_version_id": f"version-{number}",
            "ledger_sha256": hashlib.sha256(run_id.encode()).hexdigest(),
        }
        if status == "SUCCEEDED":
            record |= {
                "image_uri": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/sagepipe@sha256:{'c' * 64}",
                "image_digest": f"sha256:{'c' * 64}",
                "image_built": False,
                "training_job_name": f"sagepipe-{run_id[:40]}-r0a0",
                "training_job_arn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/sagepipe-{run_id[:40]}-r0a0",
                "training_job_status": "Completed",
                "metrics": {
                    "train:accuracy": Decimal("1"),
                    "validation:accuracy": Decimal(f"0.9{chance.randrange(100000):05d}"),
                    "validation:f1": Decimal(f"0.9{chance.randrange(100000):05d}"),
                    "validation:roc_auc": Decimal(f"0.9{chance.randrange(100000):05d}"),
                },
                "artifact_uri": f"s3://{ARTIFACTS}/runs/{run_id}/output/model.tar.gz",
                "artifact_version_id": f"artifact-{number}",
                "artifact_sha256": hashlib.sha256(f"tarball {number}".encode()).hexdigest(),
                "artifact_size_bytes": 67536,
                "model_content_sha256": chance.choice(models),
                "timings": {"total_seconds": Decimal("187.5"), "training_seconds": Decimal("120.25")},
            }
        elif status in {"FAILED", "STOPPED"}:
            record |= {
                "failed_stage": "Train",
                "error": "States.TaskFailed",
                "cause": "x" * 2000,
                "failure_reason": "ValueError: the train channel has no 'target' column",
            }
        elif status == "DUPLICATE":
            record["duplicate_of"] = run_ids[max(0, number - 1)]
        else:
            record["skip_reason"] = "no training data has been uploaded yet"
        requests.append({"PutRequest": {"Item": serialise(record)}})
        if status != "DUPLICATE":
            claim = {
                "pk": f"CLAIM#{commit}#{data_ref}",
                "sk": "CLAIM",
                "run_id": run_id,
                "commit_id": commit,
                "data_ref": data_ref,
                "claimed_at": started,
            }
            requests.append({"PutRequest": {"Item": serialise(claim)}})
    requests.append({"PutRequest": {"Item": serialise({"pk": "POINTER", "sk": "LATEST", "updated_at": "x"})}})
    requests += [
        {"PutRequest": {"Item": serialise({"pk": "idempotency#github-webhook", "sk": f"d{n}", "status": "COMPLETED"})}}
        for n in range(50)
    ]
    for start in range(0, len(requests), 25):
        dynamodb.batch_write_item(RequestItems={TABLE: requests[start : start + 25]})
    sealed = seal_one(dynamodb, s3, run_ids[-1])
    return Synthetic(run_ids, commits, data_refs, models, sealed)


def seal_one(dynamodb: Any, s3: Any, run_id: str) -> str:
    """Make one run a real sealed SUCCEEDED run: its model stored, its ledger object written."""
    from boto3.dynamodb.types import TypeDeserializer

    body = model_archive(b"the model")
    key = f"runs/{run_id}/output/model.tar.gz"
    version = s3.put_object(Bucket=ARTIFACTS, Key=key, Body=body)["VersionId"]
    digest = digest_archive(io.BytesIO(body))
    table_key = {"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RECORD"}}
    item = dynamodb.get_item(TableName=TABLE, Key=table_key)["Item"]
    record = {name: TypeDeserializer().deserialize(value) for name, value in item.items()}
    record |= {
        "status": "SUCCEEDED",
        "artifact_uri": f"s3://{ARTIFACTS}/{key}",
        "artifact_version_id": version,
        "artifact_sha256": digest.sha256,
        "artifact_size_bytes": digest.size_bytes,
        "model_content_sha256": digest.content_sha256,
    }
    sealed = ledger_body(record)
    ledger_version = s3.put_object(Bucket=LEDGER, Key=ledger_key(run_id), Body=sealed, ChecksumAlgorithm="SHA256")
    record |= {
        "ledger_uri": f"s3://{LEDGER}/{ledger_key(run_id)}",
        "ledger_version_id": ledger_version["VersionId"],
        "ledger_sha256": sha256_hex(sealed),
    }
    dynamodb.put_item(TableName=TABLE, Item=serialise(record))
    return run_id


def account(records: int) -> Synthetic:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    dynamodb.create_table(**runs_table_request(TABLE))
    s3.create_bucket(Bucket=ARTIFACTS)
    s3.put_bucket_versioning(Bucket=ARTIFACTS, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=LEDGER, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=LEDGER,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    outputs = {"RunsTableName": TABLE, "ArtifactsBucketName": ARTIFACTS, "LedgerBucketName": LEDGER}
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # moto does not model WaitConditionHandle; it is a placeholder
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK, TemplateBody=json.dumps(template)
        )
    return synthetic_records(records, dynamodb, s3)


# ------------------------------------------------------------------------------------------------- the commands
def commands(synthetic: Synthetic) -> list[tuple[str, list[str]]]:
    succeeded_model = synthetic.models[3]
    return [
        ("list (a page of 20)", ["list"]),
        ("list --limit 100", ["list", "--limit", "100"]),
        ("list --status FAILED", ["list", "--status", "FAILED"]),
        ("list --since 2026-11-01", ["list", "--since", "2026-11-01"]),
        ("list --commit C", ["list", "--commit", synthetic.commits[0]]),
        ("list --commit C --status SUCCEEDED", ["list", "--commit", synthetic.commits[0], "--status", "SUCCEEDED"]),
        ("show RUN", ["show", synthetic.run_ids[500]]),
        ("diff RUN_A RUN_B", ["diff", synthetic.run_ids[10], synthetic.run_ids[20]]),
        ("lineage --commit C", ["lineage", "--commit", synthetic.commits[1]]),
        ("lineage --data s3://…?versionId=V", ["lineage", "--data", synthetic.data_refs[2]]),
        ("lineage --model-sha256 X", ["lineage", "--model-sha256", succeeded_model]),
        ("verify RUN", ["verify", synthetic.sealed_run]),
    ]


def run_command(args: list[str]) -> list[Call]:
    calls: list[Call] = []
    with recorded_dynamodb_calls(calls):
        result = CliRunner(mix_stderr=False).invoke(main, ["runs", *args, "--stack", STACK, "--json"])
    if result.exit_code not in {0}:
        raise SystemExit(f"`sagepipe runs {' '.join(args)}` failed ({result.exit_code}): {result.stderr}")
    return calls


def page_through(limit: int) -> tuple[int, int]:
    """`runs list --limit N`, following --next to the end: (pages, records)."""
    pages, records, token = 0, 0, None
    calls: list[Call] = []
    with recorded_dynamodb_calls(calls):
        while True:
            args = ["runs", "list", "--limit", str(limit), "--stack", STACK, "--json"] + (
                ["--next", token] if token else []
            )
            document = json.loads(CliRunner(mix_stderr=False).invoke(main, args).stdout)
            pages += 1
            records += len(document["runs"])
            token = document["next"]
            if token is None:
                break
    assert {call.operation for call in calls} == {"Query"}, calls
    return pages, records


def describe(calls: list[Call]) -> str:
    return ", ".join(f"{call.operation}" + (f" {call.index}" if call.index else "") for call in calls)


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    options = parser.parse_args()
    os.environ.update({"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        synthetic = account(options.records)
        print(f"{options.records} run records (and their claims, the pointer, 50 idempotency records) in {TABLE}")
        print()
        header = f"{'command':<36} {'calls':<58} {'items':>5} {'moto CU':>8} {'documented RCU':>14}"
        print(header)
        print("─" * len(header))
        everything: list[Call] = []
        most = 0
        for name, args in commands(synthetic):
            calls = run_command(args)
            everything += calls
            most = max(most, len(calls))
            reported = sum(call.reported or 0 for call in calls)
            documented = sum(call.documented_units for call in calls)
            items = sum(call.items for call in calls)
            print(f"{name:<36} {describe(calls):<58} {items:>5} {reported:>8.1f} {documented:>14.1f}")
        pages, records = page_through(100)
        print()
        print(f"every run, 100 at a time with --next: {pages} Query calls for {records} records")
        operations = sorted({call.operation for call in everything})
        scans = [call for call in everything if call.operation == "Scan"]
        assert not scans, f"a command scanned: {scans}"
        assert records == options.records
        print(
            f"no command scanned: {len(everything)} DynamoDB calls, all {' or '.join(operations)}; "
            f"at most {most} per command"
        )


if __name__ == "__main__":
    main_bench()

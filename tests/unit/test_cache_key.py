"""The training cache's key and decision (functions/cache_key): property-style checks of what hits and what misses.

Never skip what changed: changing any single part of the key gives another key. Never re-run what did not: what
is outside the key (a docs-only commit, whose image tree is the same; identical bytes under a new VersionId)
gives the same key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cache_key import app
from cache_key.key import DataDigest, cache_key, data_digest, full_object_sha256, key_parts
from moto import mock_aws

from tests.unit.conftest import create_runs_table

SHA = hashlib.sha256(b"data").hexdigest()
TREE = "7ca02721ebd24647fee9ce3b630225bde0072403"


def _parts(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "cache_version": "1",
        "image": f"tree-{TREE}",
        "data": DataDigest(SHA, "streamed", 4),
        "hyperparameters": {"n_estimators": "200", "max_depth": "3"},
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "volume_size_gb": 30,
        "max_runtime_seconds": 3600,
    }
    return key_parts(**(values | changes))


CHANGES: dict[str, dict[str, Any]] = {
    "cache version bumped": {"cache_version": "2"},
    "image tree": {"image": "tree-" + "0" * 40},
    "image known by digest only": {"image": "sha256:" + "1" * 64},
    "data bytes": {"data": DataDigest(hashlib.sha256(b"other").hexdigest(), "streamed", 5)},
    "a hyperparameter's value": {"hyperparameters": {"n_estimators": "201", "max_depth": "3"}},
    "a hyperparameter added": {"hyperparameters": {"n_estimators": "200", "max_depth": "3", "seed": "1"}},
    "a hyperparameter removed": {"hyperparameters": {"n_estimators": "200"}},
    "instance type": {"instance_type": "ml.c5.xlarge"},
    "instance count": {"instance_count": 2},
    "volume size": {"volume_size_gb": 31},
    "max runtime": {"max_runtime_seconds": 3601},
}


@pytest.mark.parametrize("change", CHANGES, ids=str)
def test_changing_any_single_part_misses(change: str) -> None:
    """Given the key of a run, when exactly one part changes, then the key differs."""
    assert cache_key(_parts(**CHANGES[change])) != cache_key(_parts())


def test_every_part_is_covered_by_a_change() -> None:
    """The changes above touch every part of the key (a part added later without a test fails here)."""
    touched = {
        name for change in CHANGES.values() for name in _parts(**change) if _parts(**change)[name] != _parts()[name]
    }
    assert touched == set(_parts())


def test_what_is_outside_the_key_hits() -> None:
    """Given the same parts in another order, or data hashed another way (S3's checksum instead of streaming), then
    the key is the same: the order of hyperparameters and the hashing route are not the data."""
    reordered = _parts(hyperparameters={"max_depth": "3", "n_estimators": "200"})
    assert cache_key(reordered) == cache_key(_parts())
    assert cache_key(_parts(data=DataDigest(SHA, "s3-checksum", 4))) == cache_key(_parts())


def test_a_marker_dataset_is_keyed_by_its_marker_version() -> None:
    parts = _parts(data=DataDigest("s3://b/d/_SUCCESS?versionId=v1", "marker-ref", None))
    assert "data_sha256" not in parts
    assert parts["data_ref"] == "s3://b/d/_SUCCESS?versionId=v1"


# ----------------------------------------------------------------------------------------------- the data's sha256


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        yield


def _bucket() -> Any:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="data")
    s3.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
    return s3


def test_identical_bytes_under_a_new_version_have_the_same_sha256(aws: None) -> None:
    """Given the same bytes uploaded twice (two VersionIds), then both versions hash alike, streamed."""
    s3 = _bucket()
    first = s3.put_object(Bucket="data", Key="d.csv", Body=b"a,b\n1,2\n")["VersionId"]
    second = s3.put_object(Bucket="data", Key="d.csv", Body=b"a,b\n1,2\n")["VersionId"]
    assert first != second
    one, two = data_digest(s3, "data", "d.csv", first), data_digest(s3, "data", "d.csv", second)
    assert one == two == DataDigest(hashlib.sha256(b"a,b\n1,2\n").hexdigest(), "streamed", 8)


def test_an_objects_full_object_sha256_checksum_is_used_when_it_has_one(aws: None) -> None:
    """Given an upload with a SHA256 checksum, then S3's checksum is the data's sha256, and says so."""
    s3 = _bucket()
    body = b"x" * 1000
    version = s3.put_object(Bucket="data", Key="d.csv", Body=body, ChecksumAlgorithm="SHA256")["VersionId"]
    digest = data_digest(s3, "data", "d.csv", version)
    assert digest == DataDigest(hashlib.sha256(body).hexdigest(), "s3-checksum", 1000)


def test_a_composite_checksum_is_not_the_objects_sha256() -> None:
    """A multipart upload's SHA256 checksum is of its parts' checksums (`<base64>-<parts>`), or says COMPOSITE."""
    checksum = base64.b64encode(hashlib.sha256(b"p").digest()).decode()
    assert full_object_sha256({"ChecksumSHA256": checksum}) == hashlib.sha256(b"p").hexdigest()
    assert full_object_sha256({"ChecksumSHA256": checksum + "-3"}) is None
    assert full_object_sha256({"ChecksumSHA256": checksum, "ChecksumType": "COMPOSITE"}) is None
    assert full_object_sha256({}) is None


# ----------------------------------------------------------------------------------------------- the decision


@pytest.fixture
def table(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    create_runs_table(dynamodb)
    for name, value in {"DATA_BUCKET_NAME": "data", "RUNS_TABLE_NAME": "runs", "CACHE_VERSION": "1"}.items():
        monkeypatch.setenv(name, value)
    for cached in (app.settings, app.dynamodb_client, app.s3_client):
        cached.cache_clear()
    yield dynamodb
    for cached in (app.settings, app.dynamodb_client, app.s3_client):
        cached.cache_clear()


def _record(dynamodb: Any, run_id: str, status: str, **extra: dict[str, Any]) -> None:
    dynamodb.put_item(
        TableName="runs",
        Item={
            "pk": {"S": f"RUN#{run_id}"},
            "sk": {"S": "RECORD"},
            "status": {"S": status},
            "metrics": {"M": {"validation:accuracy": {"N": "0.95"}, "train:accuracy": {"N": "1"}}},
            "artifact_uri": {"S": f"s3://a/runs/{run_id}/model.tar.gz"},
            "artifact_sha256": {"S": "0" * 64},
            "artifact_size_bytes": {"N": "10"},
            **extra,
        },
    )


def test_a_first_run_misses_and_takes_the_key_then_its_success_is_hit(table: Any) -> None:
    """Given no run with the key, when run A asks, then it misses and becomes the key's entry; while A runs, B
    misses too (and leaves A's entry); once A SUCCEEDED, C hits A, with A's model."""
    _record(table, "A", "RUNNING")
    assert app.decide("k", "A", force=False).decision == "miss"
    _record(table, "B", "RUNNING")
    during = app.decide("k", "B", force=False)
    assert (during.decision, "run A has this key and has not finished training" in during.reason) == ("miss", True)
    _record(table, "A", "SUCCEEDED")
    hit = app.decide("k", "C", force=False)
    assert hit.decision == "hit"
    assert hit.hit is not None
    assert hit.hit["runId"] == "A"
    assert hit.hit["record"]["artifact_uri"] == {"S": "s3://a/runs/A/model.tar.gz"}
    assert hit.reason == "hit: run A SUCCEEDED with this key"


def test_a_forced_run_bypasses_a_hit_and_an_entry_whose_run_failed_is_replaced(table: Any) -> None:
    """Given A SUCCEEDED with the key, when D is forced, then D is told forced, naming A, and A stays the entry;
    given the entry's run failed, then the next run misses and takes the entry."""
    _record(table, "A", "RUNNING")
    app.decide("k", "A", force=False)
    _record(table, "A", "SUCCEEDED")
    forced = app.decide("k", "D", force=True)
    assert (forced.decision, "run A" in forced.reason) == ("forced", True)
    assert app.decide("k", "E", force=False).hit == app.decide("k", "F", force=False).hit

    _record(table, "G", "RUNNING")
    app.decide("other", "G", force=False)
    _record(table, "G", "FAILED")
    retry = app.decide("other", "H", force=False)
    assert (retry.decision, "ended FAILED" in retry.reason) == ("miss", True)
    _record(table, "H", "SUCCEEDED")
    hit_on_h = app.decide("other", "I", force=False).hit
    assert hit_on_h is not None
    assert (hit_on_h["runId"], hit_on_h["status"]) == ("H", "SUCCEEDED")
    assert hit_on_h == app.decide("other", "J", force=False).hit


CONTENT = "c" * 64


def _entry(dynamodb: Any, key: str) -> dict[str, Any]:
    item = dynamodb.get_item(TableName="runs", Key={"pk": {"S": f"CACHE#{key}"}, "sk": {"S": "CACHE"}})["Item"]
    return dict(item)


def test_a_rejected_run_trained_and_is_a_hit_with_plain_metrics_and_its_artifact(table: Any) -> None:
    """Given A REJECTED by the gate with the key (it trained; only the gate said no), when B asks, then B hits A:
    the answer has A's metrics as plain numbers and its artifact (with the content digest) for the gate, the
    record's attributes as DynamoDB has them for B's record, and no model package (A has none). B does not take
    the entry: a CACHED run is never a source."""
    _record(table, "A", "RUNNING")
    app.decide("k", "A", force=False)
    _record(table, "A", "REJECTED", model_content_sha256={"S": CONTENT}, artifact_version_id={"S": "v1"})

    decision = app.decide("k", "B", force=False)

    assert (decision.decision, decision.reason) == ("hit", "hit: run A REJECTED with this key")
    assert decision.hit is not None
    assert decision.hit["status"] == "REJECTED"
    assert decision.hit["metrics"] == {"validation:accuracy": 0.95, "train:accuracy": 1.0}
    assert all(isinstance(value, float) for value in decision.hit["metrics"].values())
    assert decision.hit["artifact"] == {
        "uri": "s3://a/runs/A/model.tar.gz",
        "sha256": "0" * 64,
        "sizeBytes": 10,
        "contentSha256": CONTENT,
        "versionId": "v1",
    }
    assert decision.hit["record"]["model_content_sha256"] == {"S": CONTENT}
    assert decision.hit["record"]["metrics"]["M"]["validation:accuracy"] == {"N": "0.95"}
    assert "modelPackage" not in decision.hit
    assert _entry(table, "k")["run_id"] == {"S": "A"}
    json.dumps(decision.hit)  # the Lambda's answer is JSON: no Decimal left


def test_a_hit_names_the_model_package_its_model_already_has(table: Any) -> None:
    """Given A SUCCEEDED and registered as version 4, then a hit on A carries version 4 registered by A; given R
    REJECTED whose model a CACHED run C registered later as version 5 (written on the key's entry, since R's
    sealed record never changes), then a hit on R carries version 5 registered by C."""
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/"
    _record(table, "A", "RUNNING")
    app.decide("k", "A", force=False)
    _record(table, "A", "SUCCEEDED", model_package_arn={"S": arn + "4"}, model_package_version={"N": "4"})
    _record(table, "R", "RUNNING")
    app.decide("other", "R", force=False)
    _record(table, "R", "REJECTED")
    table.update_item(
        TableName="runs",
        Key={"pk": {"S": "CACHE#other"}, "sk": {"S": "CACHE"}},
        UpdateExpression="SET model_package_arn = :arn, model_package_version = :version, model_package_run_id = :c",
        ExpressionAttributeValues={":arn": {"S": arn + "5"}, ":version": {"N": "5"}, ":c": {"S": "C"}},
    )

    on_a = app.decide("k", "B", force=False).hit
    on_r = app.decide("other", "D", force=False).hit

    assert on_a is not None
    assert on_r is not None
    assert on_a["modelPackage"] == {"arn": arn + "4", "version": 4, "registeredBy": "A"}
    assert on_r["modelPackage"] == {"arn": arn + "5", "version": 5, "registeredBy": "C"}


@pytest.mark.parametrize("status", ["FAILED", "STOPPED"])
def test_a_run_that_did_not_train_is_never_a_source(table: Any, status: str) -> None:
    """Given the entry's run ended without a model (FAILED or STOPPED), then the next run misses and takes the
    entry; a forced run of a REJECTED source bypasses it and leaves it."""
    _record(table, "A", "RUNNING")
    app.decide("k", "A", force=False)
    _record(table, "A", status)

    decision = app.decide("k", "B", force=False)

    assert (decision.decision, decision.reason) == ("miss", f"miss: run A had this key and ended {status}")
    assert _entry(table, "k")["run_id"] == {"S": "B"}
    _record(table, "B", "REJECTED")
    forced = app.decide("k", "C", force=True)
    assert (forced.decision, forced.reason) == (
        "forced",
        "forced: run B REJECTED with this key, and the request bypasses it",
    )
    assert _entry(table, "k")["run_id"] == {"S": "B"}

"""What the training cache key leaves out on purpose: settings that change a job's cost or place, not its model.

A redeploy of the stack, turning Spot training or a warm pool on, or the same bytes arriving under another key,
VersionId or bucket, keep the key: none of them can change what training produces (a Spot job resumed from its
checkpoint writes the uninterrupted model: container/tests/test_train_checkpoints.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from cache_key import app
from moto import mock_aws

from common.observability import metrics
from tests.unit.conftest import create_runs_table

DATA = b"mean radius,target\n1.0,0\n2.0,1\n"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(metrics, "namespace", "sagepipe")
    with mock_aws():
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_runs_table(dynamodb)
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("data-of-stack-a", "data-of-stack-b"):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        for name, value in {
            "DATA_BUCKET_NAME": "data-of-stack-a",
            "RUNS_TABLE_NAME": "runs",
            "CACHE_VERSION": "1",
        }.items():
            monkeypatch.setenv(name, value)
        for cached in (app.settings, app.dynamodb_client, app.s3_client):
            cached.cache_clear()
        yield s3
        for cached in (app.settings, app.dynamodb_client, app.s3_client):
            cached.cache_clear()


def _key(s3: Any, *, bucket: str, key: str, run_id: str, **training: Any) -> str:
    # Each stack's function reads only its own data bucket (the fixture's monkeypatch restores the variable).
    os.environ["DATA_BUCKET_NAME"] = bucket
    app.settings.cache_clear()
    version = s3.put_object(Bucket=bucket, Key=key, Body=DATA)["VersionId"]
    event = {
        "runId": run_id,
        "image": {"tree": "7ca02721ebd24647fee9ce3b630225bde0072403", "digest": "sha256:" + "1" * 64},
        "data": {"bucket": bucket, "key": key, "versionId": version, "ref": f"s3://{bucket}/{key}?versionId={version}"},
        "training": {
            "instanceType": "ml.m5.large",
            "instanceCount": 1,
            "volumeSizeGb": 30,
            "maxRuntimeSeconds": 3600,
            "hyperparameters": {"n_estimators": "200"},
            "managedSpot": False,
            "maxWaitSeconds": 7200,
            "keepAliveSeconds": 0,
            "volumeEncryptedWithPipelineKey": True,
        }
        | training,
    }
    context = type(
        "Context",
        (),
        {
            "function_name": "cache-key",
            "memory_limit_in_mb": 512,
            "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:cache-key",
            "aws_request_id": run_id,
        },
    )()
    return str(app.lambda_handler(event, cast(Any, context))["key"])


def test_cost_settings_and_where_the_bytes_live_are_outside_the_key(aws: Any) -> None:
    """Given a run's key;
    When the same bytes come to another stack's bucket under another key, with Spot, a longer wait, a warm pool
    and an instance type that takes no volume key (another stack, redeployed with other cost settings);
    Then the key is the same: a redeploy or a cost setting never invalidates the cache."""
    first = _key(aws, bucket="data-of-stack-a", key="datasets/a.csv", run_id="run-a")

    again = _key(
        aws,
        bucket="data-of-stack-b",
        key="datasets/renamed.csv",
        run_id="run-b",
        managedSpot=True,
        maxWaitSeconds=86400,
        keepAliveSeconds=1800,
        volumeEncryptedWithPipelineKey=False,
    )

    assert again == first


def test_a_setting_inside_the_key_still_misses(aws: Any) -> None:
    """Given the same request with one hyperparameter changed, then the key differs (the test above is not blind)."""
    first = _key(aws, bucket="data-of-stack-a", key="datasets/a.csv", run_id="run-a")
    other = _key(
        aws, bucket="data-of-stack-a", key="datasets/a.csv", run_id="run-b", hyperparameters={"n_estimators": "201"}
    )
    assert other != first

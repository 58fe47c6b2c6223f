"""The artifact digest: the sha256 recorded for a model is the sha256 of the bytes in S3."""

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from digest_artifact.artifact import ArtifactError, digest_s3_object
from moto import mock_aws

BUCKET = "sagepipe-artifacts-test"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_the_digest_is_the_sha256_and_size_of_the_stored_bytes(s3: Any) -> None:
    """Given a 3 MiB model (more than one read chunk), then sha256, size and version are those of the object."""
    body = os.urandom(3 * 1024 * 1024 + 17)
    version = s3.put_object(Bucket=BUCKET, Key="runs/r1/output/job/output/model.tar.gz", Body=body)["VersionId"]
    digest = digest_s3_object(s3, f"s3://{BUCKET}/runs/r1/output/job/output/model.tar.gz", BUCKET)
    assert digest.sha256 == hashlib.sha256(body).hexdigest()
    assert digest.size_bytes == len(body)
    assert digest.version_id == version
    assert digest.as_payload()["sizeBytes"] == len(body)


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("s3://other-bucket/runs/r1/output/model.tar.gz", "not the artifacts bucket"),
        ("https://example.com/model.tar.gz", "not an s3://bucket/key URI"),
        (f"s3://{BUCKET}/", "not an s3://bucket/key URI"),
    ],
)
def test_only_the_artifacts_bucket_is_read(s3: Any, uri: str, problem: str) -> None:
    with pytest.raises(ArtifactError, match=problem):
        digest_s3_object(s3, uri, BUCKET)

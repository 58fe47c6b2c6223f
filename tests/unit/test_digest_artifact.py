"""The artifact digest: the sha256 recorded for a model is the sha256 of the bytes in S3, and its content digest
is that of the files inside."""

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from digest_artifact.artifact import ArtifactError, digest_s3_object
from moto import mock_aws

from common.audit_digests import content_lines

BUCKET = "sagepipe-artifacts-test"
KEY = "runs/r1/output/job/output/model.tar.gz"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def model_archive(weights: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(weights)
        tar.addfile(info, io.BytesIO(weights))
    return gzip.compress(raw.getvalue())


def test_the_digest_is_the_sha256_and_size_of_the_stored_bytes_and_the_content_of_the_model(s3: Any) -> None:
    """Given a model archive of more than one read chunk, then sha256, size and version are those of the object,
    and the content digest is that of the one file inside, as docs/audit-record.md defines it."""
    weights = os.urandom(3 * 1024 * 1024 + 17)
    body = model_archive(weights)
    version = s3.put_object(Bucket=BUCKET, Key=KEY, Body=body)["VersionId"]

    digest = digest_s3_object(s3, f"s3://{BUCKET}/{KEY}", BUCKET)

    assert digest.sha256 == hashlib.sha256(body).hexdigest()
    assert digest.size_bytes == len(body)
    assert digest.version_id == version
    expected = hashlib.sha256(content_lines({"model.joblib": hashlib.sha256(weights).hexdigest()})).hexdigest()
    assert digest.content_sha256 == expected
    assert digest.as_payload()["sizeBytes"] == len(body)
    assert digest.as_payload()["contentSha256"] == expected
    assert digest.as_payload()["files"] == 1


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


@pytest.mark.parametrize(
    "body",
    [b"not an archive at all", gzip.compress(b"a gzip of no tar" * 100, mtime=0)[:40]],
    ids=["not-an-archive", "truncated-gzip"],  # gzip's header holds a time: the id must not (pytest-xdist compares ids)
)
def test_an_object_that_is_not_a_model_archive_fails_with_its_uri(s3: Any, body: bytes) -> None:
    """Given an artifact that is not a (complete) tar archive, then the digest fails saying so, not with a
    traceback from the tar reader."""
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=body)
    with pytest.raises(ArtifactError, match="is not a tar archive"):
        digest_s3_object(s3, f"s3://{BUCKET}/{KEY}", BUCKET)

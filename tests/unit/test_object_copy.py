"""Staging one object version whatever its size: CopyObject up to S3's 5 GiB copy limit, UploadPartCopy above it.

moto in process does not enforce the copy limit (the local runtime's s3_copy_limit adapter does), so these tests
lower the limit the code is given and record which S3 operations the client sends.
"""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError
from stage_dataset.app import DatasetRequest, ObjectRequest, StageRequest
from stage_dataset.object_copy import (
    COPY_OBJECT_MAX_BYTES,
    ObjectVersion,
    StagingError,
    copy_version,
    stage_object,
)

MIB = 1024**2
SMALL_PART = 5 * MIB
"""S3's minimum part size (but for the last part); a test uses it to get several parts from a small object."""


class Operations:
    """The S3 operations a client sent, in order (s3transfer's worker threads included)."""

    def __init__(self, client: Any) -> None:
        self.names: list[str] = []
        client.meta.events.register("before-call.s3", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)

    def count(self, name: str) -> int:
        return self.names.count(name)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in ("data-bucket", "artifacts-bucket"):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield client


def _put(s3: Any, key: str, body: bytes) -> ObjectVersion:
    version = s3.put_object(Bucket="data-bucket", Key=key, Body=body, Tagging="team=data")["VersionId"]
    return ObjectVersion("data-bucket", key, version)


def _read(s3: Any, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket="artifacts-bucket", Key=key)["Body"].read()
    return body


def test_the_limit_is_s3_s_5_gib() -> None:
    """S3 answers "larger than the maximum allowable size for a copy source: 5368709120" above it."""
    assert COPY_OBJECT_MAX_BYTES == 5_368_709_120


def test_a_version_within_the_limit_is_copied_in_one_copy_object_request(s3: Any) -> None:
    """Given a version exactly at the copy limit, when it is copied, then one CopyObject request copies it."""
    body = b"x,target\n1,0\n"
    source = _put(s3, "datasets/a.csv", body)
    sent = Operations(s3)

    method = copy_version(
        s3, source, "artifacts-bucket", "runs/r1/input/train/a.csv", size=len(body), copy_object_max_bytes=len(body)
    )

    assert method == "CopyObject"
    assert sent.names == ["CopyObject"]
    assert _read(s3, "runs/r1/input/train/a.csv") == body


def test_a_version_over_the_limit_is_copied_in_parts_exactly_and_without_its_tags(s3: Any) -> None:
    """Given an older version one byte over the (lowered) copy limit and a newer one at the same key, when the
    older version is copied, then no CopyObject is sent: it is copied with UploadPartCopy in parts of the given
    size, byte for byte that version, and the source's tags are not copied (as TaggingDirective=REPLACE)."""
    body = bytes(range(256)) * (6 * MIB // 256) + b"tail"
    source = _put(s3, "datasets/big.csv", body)
    _put(s3, "datasets/big.csv", b"a later upload that must not be staged")
    sent = Operations(s3)

    method = copy_version(
        s3,
        source,
        "artifacts-bucket",
        "runs/r1/input/train/big.csv",
        size=len(body),
        copy_object_max_bytes=len(body) - 1,
        part_bytes=SMALL_PART,
    )

    assert method == "UploadPartCopy"
    assert "CopyObject" not in sent.names
    assert sent.count("UploadPartCopy") == 2
    assert sent.count("CompleteMultipartUpload") == 1
    assert _read(s3, "runs/r1/input/train/big.csv") == body
    tags = s3.get_object_tagging(Bucket="artifacts-bucket", Key="runs/r1/input/train/big.csv")["TagSet"]
    assert tags == []


def test_staging_one_object_always_copies_in_parts(s3: Any) -> None:
    """Given a small version (the workflow sends one of unknown size here: a manual run), when it is staged, then it
    is copied with UploadPartCopy (one part: the last part has no minimum size), never CopyObject, whatever
    CopyObject's limit is; the payload says what was copied."""
    body = b"x,target\n1,0\n2,1\n"
    source = _put(s3, "datasets/manual.csv", body)
    sent = Operations(s3)

    staged = stage_object(s3, source, "artifacts-bucket", "runs/r2/input/train/manual.csv")

    assert "CopyObject" not in sent.names
    assert sent.count("UploadPartCopy") == 1
    assert _read(s3, "runs/r2/input/train/manual.csv") == body
    assert staged.as_payload() == {
        "objectCount": 1,
        "bytes": len(body),
        "stagedUri": "s3://artifacts-bucket/runs/r2/input/train/manual.csv",
        "copyMethod": "UploadPartCopy",
    }


def test_a_version_that_is_gone_fails_with_one_clear_line(s3: Any) -> None:
    source = _put(s3, "datasets/gone.csv", b"x\n")
    s3.delete_object(Bucket="data-bucket", Key=source.key, VersionId=source.version_id)

    with pytest.raises(StagingError, match=r"the data version s3://data-bucket/datasets/gone.csv\?versionId=.* cannot"):
        stage_object(s3, source, "artifacts-bucket", "runs/r3/input/train/gone.csv")


def test_the_request_is_a_dataset_or_one_object_in_the_run_s_channel() -> None:
    """The handler tells the two requests apart by their fields, and refuses a destination outside the run's train
    channel (the workflow computes it; the function still writes nowhere else)."""
    dataset = StageRequest.validate_python(
        {"runId": "r1", "datasetPrefix": "d/", "markerKey": "d/_SUCCESS", "markerVersionId": "v1"}
    )
    assert isinstance(dataset, DatasetRequest)
    one = StageRequest.validate_python(
        {"runId": "r1", "sourceKey": "d/a.csv", "sourceVersionId": "v1", "destinationKey": "runs/r1/input/train/a.csv"}
    )
    assert isinstance(one, ObjectRequest)
    for destination in ("runs/r2/input/train/a.csv", "runs/r1/input/train/", "runs/r1/input/train/x/a.csv", "a.csv"):
        with pytest.raises(ValidationError):
            StageRequest.validate_python(
                {"runId": "r1", "sourceKey": "d/a.csv", "sourceVersionId": "v1", "destinationKey": destination}
            )

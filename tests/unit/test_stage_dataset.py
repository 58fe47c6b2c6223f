"""Marker-mode staging: a run trains on the dataset exactly as it was when its marker arrived."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from stage_dataset.dataset import DatasetError, stage_dataset, versions_as_of

MARKER_TIME = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)


class _Pages:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    def paginate(self, **_: Any) -> Iterator[dict[str, Any]]:
        yield from self.pages


class _Listing:
    """Just enough of an S3 client to list versions: the cutoff logic is tested on exact timestamps."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self._pages = pages

    def get_paginator(self, name: str) -> _Pages:
        assert name == "list_object_versions"
        return _Pages(self._pages)


def _version(key: str, seconds: int, version: str, size: int = 10) -> dict[str, Any]:
    return {
        "Key": key,
        "VersionId": version,
        "ETag": f'"{version}"',
        "Size": size,
        "LastModified": MARKER_TIME + timedelta(seconds=seconds),
    }


def _delete_marker(key: str, seconds: int) -> dict[str, Any]:
    return {"Key": key, "VersionId": f"dm-{key}", "LastModified": MARKER_TIME + timedelta(seconds=seconds)}


def test_each_key_takes_its_newest_version_not_after_the_marker() -> None:
    """Given versions before, at and after the marker, then each key keeps the newest version not after it; keys
    created after the marker, the marker itself and folder markers are left out."""
    listing = _Listing(
        [
            {
                "Versions": [
                    _version("d/part-1.csv", -30, "p1-old"),
                    _version("d/part-1.csv", -5, "p1-new"),
                    _version("d/part-1.csv", 60, "p1-too-late"),
                    _version("d/part-2.csv", 0, "p2-same-second"),
                    _version("d/part-3.csv", 5, "p3-after"),
                    _version("d/_SUCCESS", 0, "marker", size=0),
                    _version("d/sub/", -40, "folder", size=0),
                ]
            },
        ]
    )
    objects = versions_as_of(listing, "bucket", "d/", "d/_SUCCESS", MARKER_TIME)
    assert [(item.key, item.version_id) for item in objects] == [
        ("d/part-1.csv", "p1-new"),
        ("d/part-2.csv", "p2-same-second"),
    ]


def test_times_are_compared_to_the_second_as_s3_reports_them() -> None:
    """Given the marker's time as HeadObject reports it (to the second) and listings with milliseconds, then a
    part written earlier in the marker's second is in the dataset, and one written in the next second is not."""
    second_of_the_marker = MARKER_TIME
    listing = _Listing(
        [
            {
                "Versions": [
                    _version("d/part-1.csv", 0, "written-0.4-s-into-the-marker-s-second")
                    | {"LastModified": MARKER_TIME + timedelta(milliseconds=400)},
                    _version("d/part-2.csv", 0, "written-1.2-s-later")
                    | {"LastModified": MARKER_TIME + timedelta(milliseconds=1200)},
                ]
            }
        ]
    )
    objects = versions_as_of(listing, "bucket", "d/", "d/_SUCCESS", second_of_the_marker)
    assert [item.version_id for item in objects] == ["written-0.4-s-into-the-marker-s-second"]


def test_a_key_deleted_before_the_marker_is_not_part_of_the_dataset() -> None:
    """Given a key whose newest entry before the marker is a delete marker, then it is left out; a key deleted
    only after the marker is still in."""
    listing = _Listing(
        [
            {
                "Versions": [_version("d/gone.csv", -20, "g1"), _version("d/kept.csv", -20, "k1")],
                "DeleteMarkers": [_delete_marker("d/gone.csv", -10), _delete_marker("d/kept.csv", 10)],
            },
        ]
    )
    objects = versions_as_of(listing, "bucket", "d/", "d/_SUCCESS", MARKER_TIME)
    assert [item.key for item in objects] == ["d/kept.csv"]


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in ("data-bucket", "artifacts-bucket"):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_the_dataset_is_copied_into_the_channel_with_a_manifest(s3: Any) -> None:
    """Given two parts and a marker, then both parts land under the run's train channel (keeping their relative
    paths), and the manifest lists each part's exact version; its sha256 is returned for the audit record."""
    versions = {
        key: s3.put_object(Bucket="data-bucket", Key=key, Body=body)["VersionId"]
        for key, body in {
            "sets/a/part-1.csv": b"x,target\n1,0\n",
            "sets/a/nested/part-2.csv": b"x,target\n2,1\n",
        }.items()
    }
    marker = s3.put_object(Bucket="data-bucket", Key="sets/a/_SUCCESS", Body=b"")["VersionId"]

    staged = stage_dataset(
        s3,
        data_bucket="data-bucket",
        dataset_prefix="sets/a/",
        marker_key="sets/a/_SUCCESS",
        marker_version_id=marker,
        artifacts_bucket="artifacts-bucket",
        input_prefix="runs/r1/input/",
    )

    keys = {item["Key"] for item in s3.list_objects_v2(Bucket="artifacts-bucket")["Contents"]}
    assert keys == {
        "runs/r1/input/train/part-1.csv",
        "runs/r1/input/train/nested/part-2.csv",
        "runs/r1/input/manifest.json",
    }
    manifest_bytes = s3.get_object(Bucket="artifacts-bucket", Key="runs/r1/input/manifest.json")["Body"].read()
    manifest = json.loads(manifest_bytes)
    assert {entry["key"]: entry["versionId"] for entry in manifest["objects"]} == versions
    assert manifest["marker"] == {"key": "sets/a/_SUCCESS", "versionId": marker}
    payload = staged.as_payload()
    assert payload["objectCount"] == 2
    assert payload["bytes"] == 26
    import hashlib

    assert payload["manifestSha256"] == hashlib.sha256(manifest_bytes).hexdigest()


def test_an_empty_dataset_or_a_missing_marker_fails_clearly(s3: Any) -> None:
    marker = s3.put_object(Bucket="data-bucket", Key="sets/empty/_SUCCESS", Body=b"")["VersionId"]
    arguments: dict[str, Any] = {
        "data_bucket": "data-bucket",
        "dataset_prefix": "sets/empty/",
        "marker_key": "sets/empty/_SUCCESS",
        "artifacts_bucket": "artifacts-bucket",
        "input_prefix": "runs/r2/input/",
    }
    with pytest.raises(DatasetError, match="has no objects"):
        stage_dataset(s3, marker_version_id=marker, **arguments)
    with pytest.raises(DatasetError, match="is gone"):
        stage_dataset(s3, marker_version_id="no-such-version", **arguments)


def test_a_part_over_the_copy_limit_is_copied_in_parts(s3: Any) -> None:
    """Given a dataset with one part over CopyObject's limit (lowered here: a test cannot write 5 GiB) and one
    within it, when it is staged, then the large part is copied with UploadPartCopy and the small one with one
    CopyObject, both byte for byte, and the manifest lists both."""
    large, small = b"y" * (6 * 1024**2), b"x,target\n1,0\n"
    for key, body in {"sets/b/large.csv": large, "sets/b/small.csv": small}.items():
        s3.put_object(Bucket="data-bucket", Key=key, Body=body)
    marker = s3.put_object(Bucket="data-bucket", Key="sets/b/_SUCCESS", Body=b"")["VersionId"]
    sent: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **_: sent.append(model.name))

    staged = stage_dataset(
        s3,
        data_bucket="data-bucket",
        dataset_prefix="sets/b/",
        marker_key="sets/b/_SUCCESS",
        marker_version_id=marker,
        artifacts_bucket="artifacts-bucket",
        input_prefix="runs/r3/input/",
        copy_object_max_bytes=1024,
        part_bytes=5 * 1024**2,
    )

    assert sent.count("CopyObject") == 1
    assert sent.count("UploadPartCopy") == 2
    for name, body in {"large.csv": large, "small.csv": small}.items():
        assert s3.get_object(Bucket="artifacts-bucket", Key=f"runs/r3/input/train/{name}")["Body"].read() == body
    assert staged.as_payload()["objectCount"] == 2

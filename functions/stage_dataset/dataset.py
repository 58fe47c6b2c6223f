"""Stage a multi-object dataset exactly as it was when its marker arrived.

In marker mode a dataset is a prefix, and only its marker object (for example `_SUCCESS`) starts a run. The
run trains on every object under the prefix as of the marker: for each key, the latest version written no
later than the marker, unless that version is a delete marker. Objects written after the marker belong to
the next dataset version, not this run. The chosen versions are copied into the run's input prefix (in parts
when one is over CopyObject's 5 GiB limit: object_copy.py), and a manifest of (key, version, etag, size) is
written beside it; its sha256 goes into the audit record.

S3 reports times to the second (HeadObject's Last-Modified is an HTTP date), so times are compared to the
second: an object written in the same second as its marker counts as written before it. A writer that adds
objects after the marker should wait a second, or write a new marker.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stage_dataset.object_copy import COPY_OBJECT_MAX_BYTES, PART_BYTES, ObjectVersion, copy_version

MANIFEST_NAME = "manifest.json"


class DatasetError(ValueError):
    """The dataset cannot be staged (empty, or the marker is gone)."""


@dataclass(frozen=True)
class DatasetObject:
    key: str
    version_id: str
    etag: str
    size: int
    last_modified: datetime

    def as_manifest_entry(self, prefix: str) -> dict[str, Any]:
        return {
            "key": self.key,
            "relativeKey": self.key.removeprefix(prefix),
            "versionId": self.version_id,
            "etag": self.etag,
            "size": self.size,
        }


@dataclass(frozen=True)
class StagedDataset:
    objects: list[DatasetObject]
    manifest_uri: str
    manifest_sha256: str

    def as_payload(self) -> dict[str, Any]:
        return {
            "objectCount": len(self.objects),
            "bytes": sum(item.size for item in self.objects),
            "manifestUri": self.manifest_uri,
            "manifestSha256": self.manifest_sha256,
        }


def _to_the_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def versions_as_of(s3: Any, bucket: str, prefix: str, marker_key: str, cutoff: datetime) -> list[DatasetObject]:
    """The dataset's objects as of `cutoff`: per key, the newest version not after it, if not a delete marker."""
    cutoff = _to_the_second(cutoff)
    latest: dict[str, tuple[datetime, dict[str, Any] | None]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        entries = [(item, False) for item in page.get("Versions", [])]
        entries += [(item, True) for item in page.get("DeleteMarkers", [])]
        for item, is_delete_marker in entries:
            key, modified = item["Key"], item["LastModified"]
            if key == marker_key or key.endswith("/") or _to_the_second(modified) > cutoff:
                continue
            if key not in latest or modified > latest[key][0]:
                latest[key] = (modified, None if is_delete_marker else item)
    objects = [
        DatasetObject(
            key=item["Key"],
            version_id=item["VersionId"],
            etag=str(item.get("ETag", "")).strip('"'),
            size=int(item.get("Size", 0)),
            last_modified=item["LastModified"],
        )
        for _, item in latest.values()
        if item is not None
    ]
    return sorted(objects, key=lambda item: item.key)


def stage_dataset(
    s3: Any,
    *,
    data_bucket: str,
    dataset_prefix: str,
    marker_key: str,
    marker_version_id: str,
    artifacts_bucket: str,
    input_prefix: str,
    copy_object_max_bytes: int = COPY_OBJECT_MAX_BYTES,
    part_bytes: int = PART_BYTES,
) -> StagedDataset:
    """Copy the dataset as of its marker into `input_prefix` (a channel) and write its manifest beside it.

    Each object is copied in one CopyObject request, or in parts when it is over CopyObject's limit.
    """
    try:
        marker = s3.head_object(Bucket=data_bucket, Key=marker_key, VersionId=marker_version_id)
    except s3.exceptions.ClientError as error:
        raise DatasetError(
            f"the marker s3://{data_bucket}/{marker_key}?versionId={marker_version_id} is gone"
        ) from error
    objects = versions_as_of(s3, data_bucket, dataset_prefix, marker_key, marker["LastModified"])
    if not objects:
        raise DatasetError(f"the dataset s3://{data_bucket}/{dataset_prefix} has no objects as of its marker")
    channel = input_prefix.rstrip("/") + "/train/"
    for item in objects:
        copy_version(
            s3,
            ObjectVersion(data_bucket, item.key, item.version_id),
            artifacts_bucket,
            channel + item.key.removeprefix(dataset_prefix),
            size=item.size,
            copy_object_max_bytes=copy_object_max_bytes,
            part_bytes=part_bytes,
        )
    manifest = json.dumps(
        {
            "bucket": data_bucket,
            "prefix": dataset_prefix,
            "marker": {"key": marker_key, "versionId": marker_version_id},
            "objects": [item.as_manifest_entry(dataset_prefix) for item in objects],
        },
        indent=2,
        sort_keys=True,
    ).encode()
    manifest_key = input_prefix.rstrip("/") + "/" + MANIFEST_NAME
    s3.put_object(Bucket=artifacts_bucket, Key=manifest_key, Body=manifest, ContentType="application/json")
    return StagedDataset(objects, f"s3://{artifacts_bucket}/{manifest_key}", hashlib.sha256(manifest).hexdigest())

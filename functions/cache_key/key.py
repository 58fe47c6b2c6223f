"""The training cache's key: what a training job's result depends on, and nothing else.

The key is the sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of its parts:

- `cache_version`: the stack's TrainingCacheVersion, for the user to bump (a new key for everything);
- `image`: the image's tree (`tree-<git tree id>`, functions/common/image_tree.py), or its digest when the tree
  is unknown (an image found by its commit tag);
- `data_sha256`: the sha256 of the data object's bytes, not its VersionId: identical bytes uploaded again are the
  same data. In marker mode the dataset is the marker's folder as of the marker, which only staging reads, so
  the part is `data_ref` instead, the marker's exact version (a new marker is a new dataset, a re-run of the
  same marker hits);
- `hyperparameters`, `instance_type`, `instance_count`;
- `template_parameters`: the other training settings of the stack, `volume_size_gb` and `max_runtime_seconds`
  (they can change whether a job finishes; kept in the key on the side of never skipping what changed).

The data's sha256 is S3's own full-object SHA256 checksum when the object has one (HeadObject with
ChecksumMode ENABLED, ChecksumType FULL_OBJECT; S3 User Guide, "Checking object integrity"), and otherwise
computed here by streaming the object version once, with no size limit but the function's 15 minutes. The
record says which (`data_sha256_source`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final, Literal

CHUNK_BYTES: Final = 8 * 1024 * 1024

DataSource = Literal["s3-checksum", "streamed", "marker-ref"]


@dataclass(frozen=True)
class DataDigest:
    sha256: str
    """The hex sha256 of the bytes; for `marker-ref`, the marker's data_ref instead."""
    source: DataSource
    size_bytes: int | None


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(parts: dict[str, Any]) -> str:
    """The sha256 (hex) of the parts' canonical JSON."""
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()


def key_parts(
    *,
    cache_version: str,
    image: str,
    data: DataDigest,
    hyperparameters: dict[str, str],
    instance_type: str,
    instance_count: int,
    volume_size_gb: int,
    max_runtime_seconds: int,
) -> dict[str, Any]:
    return {
        "cache_version": cache_version,
        "image": image,
        "data_ref" if data.source == "marker-ref" else "data_sha256": data.sha256,
        "hyperparameters": dict(hyperparameters),
        "instance_type": instance_type,
        "instance_count": instance_count,
        "template_parameters": {"volume_size_gb": volume_size_gb, "max_runtime_seconds": max_runtime_seconds},
    }


def full_object_sha256(head: dict[str, Any]) -> str | None:
    """S3's full-object SHA256 checksum of a HeadObject answer, in hex; None when the object has none, or only a
    composite one (a multipart upload's checksum of part checksums, `<base64>-<parts>`)."""
    checksum = head.get("ChecksumSHA256")
    if not checksum or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT" or "-" in checksum:
        return None
    return base64.b64decode(checksum).hex()


def data_digest(s3: Any, bucket: str, key: str, version_id: str) -> DataDigest:
    """The sha256 of one object version: S3's checksum when it has a full-object one, else streamed."""
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id, ChecksumMode="ENABLED")
    size = int(head["ContentLength"]) if "ContentLength" in head else None
    from_s3 = full_object_sha256(head)
    if from_s3 is not None:
        return DataDigest(from_s3, "s3-checksum", size)
    body = s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"]
    digest, read = hashlib.sha256(), 0
    for chunk in iter(lambda: body.read(CHUNK_BYTES), b""):
        digest.update(chunk)
        read += len(chunk)
    return DataDigest(digest.hexdigest(), "streamed", read)

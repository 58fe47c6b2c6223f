"""Copy one exact object version within S3, whatever its size.

S3's CopyObject copies an object of up to 5 GB in one atomic request; a larger one must be copied in parts
with UploadPartCopy (Amazon S3 API Reference, CopyObject: "You create a copy of your object up to 5 GB in size
in a single atomic action using this API. However, to copy an object greater than 5 GB, you must use the
multipart upload Upload Part - Copy (UploadPartCopy) API"; the same text is in botocore's S3 service model; S3
User Guide, "Copying an object using multipart upload"). Over the limit S3 answers `InvalidRequest`, "The
specified copy source is larger than the maximum allowable size for a copy source: 5368709120" (S3's answer as
recorded in rclone/rclone#2375), so the limit is 5 GiB exactly, and a source of exactly 5 GiB still copies in
one request.

Parts are 5 MiB to 5 GiB, the last one may be smaller, and an upload has at most 10,000 parts (S3 User Guide,
"Amazon S3 multipart upload limits"). boto3's managed copy (s3transfer) does the multipart copy: it reads the
source's size and ETag (HeadObject), starts the upload, copies the parts concurrently (each one conditional on
the ETag), completes it, and aborts it on failure.
"""

from dataclasses import dataclass
from typing import Any, Final, Literal

COPY_OBJECT_MAX_BYTES: Final = 5 * 1024**3
"""5,368,709,120 bytes: the largest source CopyObject accepts (see the module docstring)."""

PART_BYTES: Final = 512 * 1024**2
"""Part size of a multipart copy. Large parts mean few requests: 10,000 parts of 512 MiB hold 5,000 GiB, and
s3transfer doubles the part size itself for a larger object, to stay within 10,000 parts."""

PART_CONCURRENCY: Final = 10
"""Parts copied at once (s3transfer's default). S3 copies the bytes server side, so the function only waits."""

CopyMethod = Literal["CopyObject", "UploadPartCopy"]


@dataclass(frozen=True)
class ObjectVersion:
    bucket: str
    key: str
    version_id: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}?versionId={self.version_id}"

    def as_copy_source(self) -> dict[str, str]:
        return {"Bucket": self.bucket, "Key": self.key, "VersionId": self.version_id}


def copy_in_parts(s3: Any, source: ObjectVersion, bucket: str, key: str, *, part_bytes: int = PART_BYTES) -> None:
    """Copy `source` to bucket/key with UploadPartCopy, whatever its size (a single part may be under 5 MiB).

    Tags are not copied (a multipart copy starts a new object), as with TaggingDirective=REPLACE; the destination
    bucket's default encryption applies, as it does to CopyObject.
    """
    # Imported here: only copies over CopyObject's limit need s3transfer's managed copy, and importing it costs
    # every cold start of the function (bench/lambda_init.py).
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=1,  # every object in parts but an empty one (no part to copy), which gets CopyObject
        multipart_chunksize=part_bytes,
        max_concurrency=PART_CONCURRENCY,
    )
    s3.copy(CopySource=source.as_copy_source(), Bucket=bucket, Key=key, Config=config)


def copy_version(
    s3: Any,
    source: ObjectVersion,
    bucket: str,
    key: str,
    *,
    size: int,
    copy_object_max_bytes: int = COPY_OBJECT_MAX_BYTES,
    part_bytes: int = PART_BYTES,
) -> CopyMethod:
    """Copy `source` (of `size` bytes) to bucket/key: in one CopyObject request when S3 allows it, else in parts."""
    if size <= copy_object_max_bytes:
        s3.copy_object(Bucket=bucket, Key=key, CopySource=source.as_copy_source(), TaggingDirective="REPLACE")
        return "CopyObject"
    copy_in_parts(s3, source, bucket, key, part_bytes=part_bytes)
    return "UploadPartCopy"


class StagingError(ValueError):
    """The object version cannot be staged (it is gone, or cannot be read)."""


@dataclass(frozen=True)
class StagedObject:
    uri: str
    size: int
    method: CopyMethod

    def as_payload(self) -> dict[str, Any]:
        return {"objectCount": 1, "bytes": self.size, "stagedUri": self.uri, "copyMethod": self.method}


def stage_object(
    s3: Any, source: ObjectVersion, bucket: str, key: str, *, part_bytes: int = PART_BYTES
) -> StagedObject:
    """Copy one object version into a run's input in parts.

    The workflow sends a version here when it is over CopyObject's limit or its size is unknown (a manual run
    names no size); copying in parts works at every size, so there is no second size rule to keep in step.
    """
    try:
        head = s3.head_object(Bucket=source.bucket, Key=source.key, VersionId=source.version_id)
    except s3.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise StagingError(f"the data version {source.uri} cannot be read ({code})") from error
    copy_in_parts(s3, source, bucket, key, part_bytes=part_bytes)
    size = int(head["ContentLength"])
    return StagedObject(f"s3://{bucket}/{key}", size, "UploadPartCopy" if size else "CopyObject")

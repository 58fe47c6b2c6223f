"""S3 CopyObject refuses a source over its size limit, as S3 does.

The gap
    S3 copies an object of up to 5 GB in one CopyObject request; a larger one must be copied in parts with
    UploadPartCopy (Amazon S3 API Reference, CopyObject; the same text is in botocore's S3 service model). Over
    the limit S3 answers HTTP 400 `InvalidRequest`, "The specified copy source is larger than the maximum
    allowable size for a copy source: 5368709120", as recorded from S3 in rclone/rclone#2375 (the raw HTTP
    response), hashicorp/terraform-provider-aws#38102 and uktrade/data-workspace-frontend#2101 (boto3).
    moto's `S3Backend.copy_object` copies a source of any size, so a pipeline that stages large data with
    CopyObject would pass locally and fail on AWS.

What this adapter does
    Wraps `S3Backend.copy_object`, which serves every CopyObject request (the aws-sdk:s3:copyObject task
    and any client's), and refuses a source larger than the runtime's `copy_object_max_bytes` with S3's error
    code and message. The limit is kept in the runtime context (`settings()`), AWS's 5 GiB by default: tests
    lower it (to 1 KiB, say) to prove the large-object path with small files, since a test cannot write 5 GiB.
    UploadPartCopy (`S3Backend.upload_part_copy`) is left as moto has it.

How it differs from AWS
    The message always names the configured limit (AWS's 5368709120 unless a test lowered it). The part
    limits of a multipart copy (5 MiB to 5 GiB a part, 10,000 parts) are not enforced, except moto's own
    minimum part size when the upload completes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "s3_copy_limit"

S3_COPY_OBJECT_MAX_BYTES: Final = 5 * 1024**3
"""5,368,709,120 bytes: the largest source S3's CopyObject copies in one request (Amazon S3 API Reference,
CopyObject); a larger one fails with InvalidRequest."""


@dataclass
class S3Settings:
    """The S3 limits of one local runtime (a reset restores AWS's)."""

    copy_object_max_bytes: int = S3_COPY_OBJECT_MAX_BYTES
    """The largest source CopyObject accepts here (AWS's limit; tests lower it to stand for a 5 GiB object)."""


def settings(runtime: context.RuntimeContext | None = None) -> S3Settings:
    return (runtime or context.current()).state(S3Settings)


def copy_object_max_bytes() -> int:
    """The running runtime's CopyObject limit; AWS's when none runs (moto in process, after an emulator stopped)."""
    runtime = context.current_or_none()
    return settings(runtime).copy_object_max_bytes if runtime is not None else S3_COPY_OBJECT_MAX_BYTES


MOTO_INTERNALS: Final = (
    Internal(
        "moto.s3.models:S3Backend.copy_object",
        parameters=("self", "src_key", "dest_bucket_name", "dest_key_name"),
        why="serves every CopyObject request with the source's FakeKey; it copies a source of any size",
    ),
    Internal("moto.s3.models:FakeKey.size", why="the source's size in bytes, which the adapter checks"),
    Internal(
        "moto.s3.exceptions:S3ClientError",
        why="moto's server answers it with its code and message (HTTP 400), as S3 answers InvalidRequest",
    ),
)


def copy_source_too_large(size: int, limit: int) -> Exception | None:
    """S3's error for a CopyObject whose source has `size` bytes, or None when it is within `limit`."""
    from moto.s3.exceptions import S3ClientError

    if size <= limit:
        return None
    return S3ClientError(
        "InvalidRequest",
        f"The specified copy source is larger than the maximum allowable size for a copy source: {limit}",
    )


def copy_object(self: Any, src_key: Any, dest_bucket_name: str, dest_key_name: str, *args: Any, **kwargs: Any) -> Any:
    """moto's copy_object, after S3's check of the source's size against the runtime's limit."""
    from moto.s3.models import S3Backend

    error = copy_source_too_large(int(src_key.size), copy_object_max_bytes())
    if error is not None:
        raise error
    return original_attribute(S3Backend, "copy_object")(self, src_key, dest_bucket_name, dest_key_name, *args, **kwargs)


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto.s3.models import S3Backend

    replace_attribute(S3Backend, "copy_object", copy_object)

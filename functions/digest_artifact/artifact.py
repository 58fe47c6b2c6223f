"""Fingerprint a model artifact, so the audit record can prove which bytes a run produced, and which model.

Two digests, read in one pass: the sha256 of model.tar.gz as stored, and the content digest of the files in
it (common.audit_digests, defined in docs/audit-record.md), which stays the same when SageMaker packs the
same model again with other timestamps or in another order.
"""

import tarfile
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from common.audit_digests import ContentDigestError, digest_archive


class ArtifactError(ValueError):
    """The artifact URI is not one this function may read, or the artifact is not a model archive."""


@dataclass(frozen=True)
class ArtifactDigest:
    uri: str
    sha256: str
    size_bytes: int
    content_sha256: str
    files: int
    version_id: str | None
    etag: str | None

    def as_payload(self) -> dict[str, Any]:
        """What the state machine gets; an unknown version or ETag is left out, so `$exists()` tells."""
        payload: dict[str, Any] = {
            "uri": self.uri,
            "sha256": self.sha256,
            "sizeBytes": self.size_bytes,
            "contentSha256": self.content_sha256,
            "files": self.files,
            "versionId": self.version_id,
            "etag": self.etag,
        }
        return {name: value for name, value in payload.items() if value is not None}


def parse_s3_uri(uri: str, allowed_bucket: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not parsed.netloc or not key:
        raise ArtifactError(f"not an s3://bucket/key URI: {uri!r}")
    if parsed.netloc != allowed_bucket:
        raise ArtifactError(f"artifact is in bucket {parsed.netloc!r}, not the artifacts bucket")
    return parsed.netloc, key


def digest_s3_object(s3: Any, uri: str, allowed_bucket: str) -> ArtifactDigest:
    """Stream the object once and compute both digests. Memory use stays at one chunk whatever the model size."""
    bucket, key = parse_s3_uri(uri, allowed_bucket)
    response = s3.get_object(Bucket=bucket, Key=key)
    try:
        digest = digest_archive(response["Body"])
    except ContentDigestError as error:
        raise ArtifactError(f"{uri}: {error}") from error
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:  # not a tar, bad gzip, truncated
        raise ArtifactError(f"{uri} is not a tar archive: {error}") from error
    return ArtifactDigest(
        uri=uri,
        sha256=digest.sha256,
        size_bytes=digest.size_bytes,
        content_sha256=digest.content_sha256,
        files=digest.files,
        version_id=response.get("VersionId"),
        etag=str(response.get("ETag", "")).strip('"') or None,
    )

"""Fingerprint a model artifact, so the audit record can prove which bytes a run produced."""

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

_CHUNK_BYTES = 1024 * 1024


class ArtifactError(ValueError):
    """The artifact URI is not one this function may read."""


@dataclass(frozen=True)
class ArtifactDigest:
    uri: str
    sha256: str
    size_bytes: int
    version_id: str | None
    etag: str | None

    def as_payload(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "sha256": self.sha256,
            "sizeBytes": self.size_bytes,
            "versionId": self.version_id,
            "etag": self.etag,
        }


def parse_s3_uri(uri: str, allowed_bucket: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not parsed.netloc or not key:
        raise ArtifactError(f"not an s3://bucket/key URI: {uri!r}")
    if parsed.netloc != allowed_bucket:
        raise ArtifactError(f"artifact is in bucket {parsed.netloc!r}, not the artifacts bucket")
    return parsed.netloc, key


def digest_s3_object(s3: Any, uri: str, allowed_bucket: str) -> ArtifactDigest:
    """Stream the object once and hash it. Memory use stays at one chunk whatever the model size."""
    bucket, key = parse_s3_uri(uri, allowed_bucket)
    response = s3.get_object(Bucket=bucket, Key=key)
    sha256 = hashlib.sha256()
    size = 0
    body = response["Body"]
    for chunk in iter(lambda: body.read(_CHUNK_BYTES), b""):
        sha256.update(chunk)
        size += len(chunk)
    return ArtifactDigest(
        uri=uri,
        sha256=sha256.hexdigest(),
        size_bytes=size,
        version_id=response.get("VersionId"),
        etag=str(response.get("ETag", "")).strip('"') or None,
    )

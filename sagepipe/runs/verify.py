"""`sagepipe runs verify`: is the stored model the recorded one, and is the record the one that was sealed?

Two families of checks, each listed with its outcome:

- the model: the artifact at `artifact_uri` is read once; its sha256 and content digest (audit_digests) must
  be the record's, and, when the record names the artifact's version, that version must still be current;
- the ledger: the record's ledger object must be in the stack's ledger bucket, exist at the recorded version,
  hash to the recorded sha256, be under Object Lock, equal the canonical JSON of the record without its ledger
  fields, and be the first version of its key (a later version could only point the record at other bytes).

A check that cannot run because the record predates it (schema 1) is `missing`, not passed: verification
proves nothing about such a record, and says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from sagepipe.runs.audit_digests import (
    LEDGER_FIELDS,
    CanonicalJsonError,
    ContentDigestError,
    canonical_json,
    digest_archive,
    ledger_body,
    sha256_hex,
)
from sagepipe.runs.records import why_it_lacks
from sagepipe.runs.stack import Stack

Outcome = Literal["ok", "mismatch", "missing"]


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"check": self.name, "outcome": self.outcome, "detail": self.detail}


@dataclass
class Verification:
    run_id: str
    checks: list[Check] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return bool(self.checks) and all(check.outcome == "ok" for check in self.checks)

    def add(self, name: str, outcome: Outcome, detail: str) -> None:
        self.checks.append(Check(name, outcome, detail))

    def as_json(self) -> dict[str, Any]:
        return {"run": self.run_id, "verified": self.verified, "checks": [check.as_json() for check in self.checks]}


def _s3_location(uri: str) -> tuple[str, str] | None:
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    return (parsed.netloc, key) if parsed.scheme == "s3" and parsed.netloc and key else None


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# --------------------------------------------------------------------------------------------------------- model
def verify_model(record: Mapping[str, Any], s3: Any, stack: Stack, result: Verification) -> None:
    uri = record.get("artifact_uri")
    if not uri:
        if record.get("status") == "SUCCEEDED":
            result.add("model", "mismatch", "the record of a SUCCEEDED run names no model artifact")
        return
    location = _s3_location(str(uri))
    if location is None:
        result.add("model", "mismatch", f"artifact_uri {uri!r} is not an s3://bucket/key URI")
        return
    bucket, key = location
    if stack.artifacts_bucket and bucket != stack.artifacts_bucket:
        result.add(
            "model location", "mismatch", f"{uri} is not in the stack's artifacts bucket {stack.artifacts_bucket}"
        )
        return
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        result.add("model", "mismatch", f"cannot read {uri}: {_error_code(error)}")
        return
    try:
        digest = digest_archive(response["Body"])
    except (ContentDigestError, OSError, EOFError, ValueError) as error:
        result.add("model", "mismatch", f"{uri} is not a model archive the content digest defines: {error}")
        return
    recorded_sha = record.get("artifact_sha256")
    if digest.sha256 == recorded_sha:
        result.add("model sha256", "ok", f"{digest.sha256} ({digest.size_bytes} bytes)")
    else:
        result.add(
            "model sha256", "mismatch", f"the stored tarball hashes to {digest.sha256}, the record says {recorded_sha}"
        )
    recorded_content = record.get("model_content_sha256")
    if recorded_content is None:
        result.add(
            "model content",
            "missing",
            f"the record has no content digest ({why_it_lacks(record)}); the stored model's is {digest.content_sha256}",
        )
    elif digest.content_sha256 == recorded_content:
        result.add("model content", "ok", f"{digest.content_sha256} ({digest.files} files)")
    else:
        result.add(
            "model content",
            "mismatch",
            f"the stored model's files digest to {digest.content_sha256}, the record says {recorded_content}",
        )
    recorded_version = record.get("artifact_version_id")
    current_version = response.get("VersionId")
    if recorded_version and current_version and recorded_version != current_version:
        result.add(
            "model version",
            "mismatch",
            f"{uri} was overwritten: the current version is {current_version}, the run wrote {recorded_version}",
        )


# --------------------------------------------------------------------------------------------------------- ledger
def _field_differences(record: Mapping[str, Any], sealed: bytes) -> list[str]:
    """Which fields differ between the record and the sealed bytes, for the message."""
    try:
        ledger = json.loads(sealed, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return ["the ledger object is not JSON"]
    if not isinstance(ledger, dict):
        return ["the ledger object is not a JSON object"]
    current = {name: value for name, value in record.items() if name not in LEDGER_FIELDS}
    differences = []
    for name in sorted(set(current) | set(ledger)):
        if name not in ledger:
            differences.append(f"{name} (added since sealing)")
        elif name not in current:
            differences.append(f"{name} (removed since sealing)")
        else:
            try:
                if canonical_json(current[name]) != canonical_json(ledger[name]):
                    differences.append(name)
            except CanonicalJsonError:
                differences.append(f"{name} (no canonical form)")
    return differences


def _first_version(s3: Any, bucket: str, key: str) -> str | None:
    """The oldest version of `key`: S3 lists a key's versions newest first (ListObjectVersions)."""
    versions: list[str] = []
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": key}
    for _ in range(100):  # a sealed record has a handful of versions at most
        page = s3.list_object_versions(**request)
        versions += [item["VersionId"] for item in page.get("Versions", []) if item.get("Key") == key]
        if not page.get("IsTruncated"):
            break
        request |= {"KeyMarker": page.get("NextKeyMarker"), "VersionIdMarker": page.get("NextVersionIdMarker")}
    return versions[-1] if versions else None


def verify_ledger(record: Mapping[str, Any], s3: Any, stack: Stack, result: Verification) -> None:
    if not all(name in record for name in LEDGER_FIELDS):
        result.add("ledger", "missing", f"the record is not sealed in the ledger: {why_it_lacks(record)}")
        return
    uri, version, recorded_sha = (str(record[name]) for name in LEDGER_FIELDS)
    location = _s3_location(uri)
    if location is None:
        result.add("ledger", "mismatch", f"ledger_uri {uri!r} is not an s3://bucket/key URI")
        return
    bucket, key = location
    if stack.ledger_bucket is None:
        result.add("ledger location", "missing", f"stack {stack.name} has no LedgerBucketName output to check {uri}")
    elif bucket != stack.ledger_bucket:
        result.add("ledger location", "mismatch", f"{uri} is not in the stack's ledger bucket {stack.ledger_bucket}")
        return
    try:
        sealed = s3.get_object(Bucket=bucket, Key=key, VersionId=version)
    except ClientError as error:
        result.add("ledger version", "mismatch", f"{uri} version {version} cannot be read: {_error_code(error)}")
        return
    body = sealed["Body"].read()
    _check_sealed_object(body, version, recorded_sha, result)
    _check_lock(s3, sealed, bucket=bucket, key=key, version=version, result=result)
    _check_record(record, body, result)
    _check_history(s3, bucket, key, version=version, body=body, result=result)


def _check_sealed_object(body: bytes, version: str, recorded: str, result: Verification) -> None:
    actual = sha256_hex(body)
    if actual == recorded:
        result.add("ledger sha256", "ok", f"version {version} hashes to the recorded {recorded}")
    else:
        result.add("ledger sha256", "mismatch", f"version {version} hashes to {actual}, the record says {recorded}")


def _check_lock(
    s3: Any, sealed: Mapping[str, Any], *, bucket: str, key: str, version: str, result: Verification
) -> None:
    mode, until = sealed.get("ObjectLockMode"), sealed.get("ObjectLockRetainUntilDate")
    if not (mode and until):
        # GetObject returns the lock headers only to a caller allowed s3:GetObjectRetention (S3 API reference,
        # HeadObject's ObjectLockMode); without them, ask for the retention itself.
        try:
            retention = s3.get_object_retention(Bucket=bucket, Key=key, VersionId=version).get("Retention", {})
            mode, until = retention.get("Mode"), retention.get("RetainUntilDate")
        except ClientError as error:
            code = _error_code(error)
            if code != "NoSuchObjectLockConfiguration":
                detail = "needs s3:GetObjectRetention" if code in {"AccessDenied", "403"} else code
                result.add("ledger lock", "missing", f"cannot read version {version}'s retention ({detail})")
                return
    if not (mode and until):
        result.add("ledger lock", "mismatch", f"version {version} is not under Object Lock retention")
        return
    shown = f"{until:%Y-%m-%d}" if hasattr(until, "strftime") else str(until)
    ended = hasattr(until, "timestamp") and until.timestamp() < datetime.now(UTC).timestamp()
    result.add("ledger lock", "ok", f"{mode} until {shown}" + (" (ended: no longer protected)" if ended else ""))


def _check_record(record: Mapping[str, Any], body: bytes, result: Verification) -> None:
    try:
        expected = ledger_body(record)
    except CanonicalJsonError as error:
        result.add("record", "mismatch", f"the record holds a value the ledger format cannot hold: {error}")
        return
    if expected == body:
        result.add("record", "ok", "equals its sealed canonical JSON")
    else:
        changed = ", ".join(_field_differences(record, body)) or "(formatting)"
        result.add("record", "mismatch", f"differs from what was sealed: {changed}")


def _check_history(s3: Any, bucket: str, key: str, *, version: str, body: bytes, result: Verification) -> None:
    """Object Lock keeps every version, so the first one is what was sealed first: a later version may only
    repeat it (a retried seal), never replace it."""
    first = _first_version(s3, bucket, key)
    if first is None or first == version:
        return
    original = s3.get_object(Bucket=bucket, Key=key, VersionId=first)["Body"].read()
    if original != body:
        result.add(
            "ledger history",
            "mismatch",
            f"the first version of s3://{bucket}/{key} ({first}) holds other bytes than the recorded version {version}",
        )


def verify(record: Mapping[str, Any], s3: Any, stack: Stack) -> Verification:
    """Every check of the module docstring, for one record."""
    result = Verification(str(record.get("run_id")))
    verify_model(record, s3, stack, result)
    verify_ledger(record, s3, stack, result)
    return result

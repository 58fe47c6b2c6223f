"""Seal a final run record: write its canonical JSON to the ledger bucket (S3 Object Lock), and record where.

The ledger object is `ledger/<run id>.json` in the ledger bucket, whose default retention (governance or
compliance mode, set by the stack) keeps every version from being deleted or overwritten until it expires.
The record then points at the exact version and its sha256 (ledger_uri, ledger_version_id, ledger_sha256),
so `sagepipe runs verify` can show that the record in DynamoDB is still the one that was sealed. The format
is common.audit_digests.ledger_body, defined in docs/audit-record.md.

Sealing is idempotent: a record that is already sealed is returned as it is, and an attempt whose
DynamoDB write was lost finds the same bytes sealed and agrees. A new ledger version of identical bytes
may remain from such an attempt; `runs verify` accepts that and checks the first version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from common.audit_digests import ledger_body, ledger_key, sha256_hex

FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "SKIPPED", "DUPLICATE", "REJECTED", "CACHED"})
"""Statuses no writer changes again (docs/audit-record.md, "Life of a record"): only these are sealed."""


class SealError(RuntimeError):
    """The record cannot be sealed; the message says why."""


class RecordNotFound(SealError):
    pass


class RecordNotFinal(SealError):
    pass


class SealConflict(SealError):
    """The record was sealed with other bytes, or changed, between this function's read and its write."""


@dataclass(frozen=True)
class Seal:
    uri: str
    version_id: str
    sha256: str
    sealed_now: bool

    def as_payload(self) -> dict[str, Any]:
        return {"uri": self.uri, "versionId": self.version_id, "sha256": self.sha256, "sealedNow": self.sealed_now}


def _key(run_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RECORD"}}


def read_record(dynamodb: Any, table: str, run_id: str) -> dict[str, Any] | None:
    """The record as a document client reads it (numbers as Decimal), with a consistent read."""
    item = dynamodb.get_item(TableName=table, Key=_key(run_id), ConsistentRead=True).get("Item")
    if item is None:
        return None
    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in item.items()}


def _existing(record: dict[str, Any]) -> Seal:
    return Seal(
        uri=str(record["ledger_uri"]),
        version_id=str(record["ledger_version_id"]),
        sha256=str(record["ledger_sha256"]),
        sealed_now=False,
    )


def seal_record(dynamodb: Any, s3: Any, *, table: str, bucket: str, run_id: str) -> Seal:
    """Write the final record of `run_id` to the ledger and point the record at it. See the module docstring."""
    record = read_record(dynamodb, table, run_id)
    if record is None:
        raise RecordNotFound(f"run {run_id} has no record in {table}")
    status = record.get("status")
    if status not in FINAL_STATUSES:
        raise RecordNotFinal(f"run {run_id} is {status}: only a final record is sealed")
    if "ledger_sha256" in record:
        return _existing(record)

    body = ledger_body(record)
    sha256 = sha256_hex(body)
    key = ledger_key(run_id)
    # A checksum header is required on any upload to a bucket with an Object Lock retention period (botocore's
    # S3 model, PutObjectRequest.ContentMD5); SHA256 also lets S3 check the bytes it stores.
    response = s3.put_object(
        Bucket=bucket, Key=key, Body=body, ContentType="application/json", ChecksumAlgorithm="SHA256"
    )
    version_id = response.get("VersionId")
    if not version_id:
        raise SealError(f"the ledger bucket {bucket} returned no version id: it must have versioning and Object Lock")
    uri = f"s3://{bucket}/{key}"
    try:
        dynamodb.update_item(
            TableName=table,
            Key=_key(run_id),
            UpdateExpression="SET ledger_uri = :uri, ledger_version_id = :version, ledger_sha256 = :sha256",
            # Only the record that was read: final, not sealed yet, with the status it was sealed with.
            ConditionExpression="attribute_not_exists(ledger_sha256) AND #status = :status",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":uri": {"S": uri},
                ":version": {"S": str(version_id)},
                ":sha256": {"S": sha256},
                ":status": {"S": str(status)},
            },
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        current = read_record(dynamodb, table, run_id) or {}
        if current.get("ledger_sha256") == sha256:
            return _existing(current)
        raise SealConflict(
            f"run {run_id} changed while it was sealed (status {current.get('status')}, ledger sha256 "
            f"{current.get('ledger_sha256')}); ledger version {version_id} holds the record as it was read"
        ) from error
    return Seal(uri=uri, version_id=str(version_id), sha256=sha256, sealed_now=True)

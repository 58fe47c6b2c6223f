"""Lambda handler: the training cache's key for a run, and the earlier trained run with the same key, if any.

Logic lives in key.py; this file reads the request, the data, the cache entry and the cached run's record.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings

from cache_key.key import DataDigest, cache_key, data_digest, key_parts
from common.dynamodb import from_attributes, to_attributes
from common.observability import MetricUnit, logger, metrics, tracer


class Settings(BaseSettings):
    data_bucket_name: str = Field(min_length=3)
    runs_table_name: str = Field(min_length=3)
    cache_version: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class ImageRef(_Model):
    tree: str | None = None
    digest: str = Field(min_length=1)


class DataRef(_Model):
    bucket: str
    key: str
    version_id: str = Field(alias="versionId")
    ref: str
    dataset_prefix: str | None = Field(default=None, alias="datasetPrefix")


class Training(_Model):
    instance_type: str = Field(alias="instanceType")
    instance_count: int = Field(alias="instanceCount")
    volume_size_gb: int = Field(alias="volumeSizeGb")
    max_runtime_seconds: int = Field(alias="maxRuntimeSeconds")
    hyperparameters: dict[str, str]


class CacheRequest(_Model):
    run_id: str = Field(alias="runId", min_length=1)
    force: bool = False
    image: ImageRef
    data: DataRef
    training: Training


@dataclass(frozen=True)
class Decision:
    decision: Literal["hit", "miss", "forced"]
    reason: str
    hit: dict[str, Any] | None = None


@cache
def settings() -> Settings:
    return Settings()  # type: ignore[call-arg]


@cache
def s3_client() -> Any:
    return boto3.client("s3")


@cache
def dynamodb_client() -> Any:
    return boto3.client("dynamodb")


def _data(request: CacheRequest) -> DataDigest:
    if request.data.dataset_prefix is not None:
        return DataDigest(request.data.ref, "marker-ref", None)
    if request.data.bucket != settings().data_bucket_name:
        raise ValueError(f"data is in bucket {request.data.bucket!r}, not the data bucket")
    return data_digest(s3_client(), request.data.bucket, request.data.key, request.data.version_id)


SOURCE_STATUSES = frozenset({"SUCCEEDED", "REJECTED"})
"""The outcomes of a run that can stand for a later one: its training completed and its model was digested. A
REJECTED run trained fine (only the gate said no, and the champion or thresholds may have changed since), so a
hit on it goes through the gate again. A CACHED run is never an entry: only a run that trains takes one."""


def hit_of(run_id: str, record: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """What a CACHED run takes from its source: plain metrics and artifact for the gate and the registration,
    the DynamoDB attributes its record copies as they are (`record`), and the model package the source's model
    already has, if any: the source's own, else the one an earlier CACHED run of it registered (on the entry)."""
    # SUCCEEDED and REJECTED records always have these (docs/audit-record.schema.json).
    copied = ("metrics", "artifact_uri", "artifact_sha256", "artifact_size_bytes")
    optional = ("model_content_sha256", "artifact_version_id")
    attributes = {name: record[name] for name in copied} | {name: record[name] for name in optional if name in record}
    plain = from_attributes(attributes)
    artifact = {
        "uri": plain["artifact_uri"],
        "sha256": plain["artifact_sha256"],
        "sizeBytes": plain["artifact_size_bytes"],
    }
    if "model_content_sha256" in plain:
        artifact["contentSha256"] = plain["model_content_sha256"]
    if "artifact_version_id" in plain:
        artifact["versionId"] = plain["artifact_version_id"]
    hit: dict[str, Any] = {
        "runId": run_id,
        "status": record["status"]["S"],
        "metrics": {name: float(value) for name, value in plain["metrics"].items()},
        "artifact": artifact,
        "record": attributes,
    }
    for holder, registered_by in ((record, run_id), (entry, entry.get("model_package_run_id", {}).get("S"))):
        if "model_package_arn" in holder:
            package = from_attributes({name: holder[name] for name in ("model_package_arn", "model_package_version")})
            hit["modelPackage"] = {
                "arn": package["model_package_arn"],
                "version": int(package["model_package_version"]),
                "registeredBy": registered_by,
            }
            break
    return hit


def decide(key: str, run_id: str, *, force: bool) -> Decision:
    """Look the key up: its entry names the run that last took it; that run's record says whether it trained.

    A miss makes this run the key's entry (a conditional write of what was read, so two racing runs do not
    overwrite each other): once it has trained (SUCCEEDED, or REJECTED by the gate), later runs with this key hit
    it. An entry whose run did not train (it failed, or still runs) is a miss; it is replaced only when its run
    ended without training.
    """
    table, client = settings().runs_table_name, dynamodb_client()
    entry_key = {"pk": {"S": f"CACHE#{key}"}, "sk": {"S": "CACHE"}}
    entry = client.get_item(TableName=table, Key=entry_key, ConsistentRead=True).get("Item")
    previous = entry["run_id"]["S"] if entry else None
    status = None
    record: dict[str, Any] = {}
    if previous is not None:
        record = client.get_item(
            TableName=table, Key={"pk": {"S": f"RUN#{previous}"}, "sk": {"S": "RECORD"}}, ConsistentRead=True
        ).get("Item", {})
        status = record.get("status", {}).get("S")
    if status in SOURCE_STATUSES and previous is not None and entry is not None:
        if force:
            return Decision("forced", f"forced: run {previous} {status} with this key, and the request bypasses it")
        return Decision("hit", f"hit: run {previous} {status} with this key", hit_of(previous, record, entry))
    if previous is None:
        reason = "miss: no earlier run has this key"
    elif status in {"RUNNING", None}:
        reason = f"miss: run {previous} has this key and has not finished training (yet)"
    else:
        reason = f"miss: run {previous} had this key and ended {status}"
    if previous is None or status not in {"RUNNING", None}:
        _take_entry(table, entry_key, run_id, previous)
    return Decision("forced" if force else "miss", f"forced ({reason})" if force else reason)


def _take_entry(table: str, entry_key: dict[str, Any], run_id: str, previous: str | None) -> None:
    condition = "attribute_not_exists(pk)" if previous is None else "run_id = :previous"
    values = {} if previous is None else {":previous": {"S": previous}}
    try:
        dynamodb_client().put_item(
            TableName=table,
            Item={**entry_key, "run_id": {"S": run_id}},
            ConditionExpression=condition,
            **({"ExpressionAttributeValues": values} if values else {}),
        )
    except dynamodb_client().exceptions.ConditionalCheckFailedException:
        logger.info("cache entry taken by another run meanwhile", extra={"entry": entry_key["pk"]["S"]})


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = CacheRequest.model_validate(event)
    data = _data(request)
    image = f"tree-{request.image.tree}" if request.image.tree else request.image.digest
    parts = key_parts(
        cache_version=settings().cache_version,
        image=image,
        data=data,
        hyperparameters=request.training.hyperparameters,
        instance_type=request.training.instance_type,
        instance_count=request.training.instance_count,
        volume_size_gb=request.training.volume_size_gb,
        max_runtime_seconds=request.training.max_runtime_seconds,
    )
    key = cache_key(parts)
    decision = decide(key, request.run_id, force=request.force)
    logger.info("cache decision", extra={"key": key, "reason": decision.reason, "data_source": data.source})
    metrics.add_metric(name=f"Cache{decision.decision.title()}", unit=MetricUnit.Count, value=1)
    result: dict[str, Any] = {
        "key": key,
        "decision": decision.decision,
        "reason": decision.reason,
        "parts": parts,
        "attributes": to_attributes(parts),
        "dataSha256Source": data.source,
    }
    if data.source != "marker-ref":
        result["dataSha256"] = data.sha256
    if decision.hit is not None:
        result["hit"] = decision.hit
    return result

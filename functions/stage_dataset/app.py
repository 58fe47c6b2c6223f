"""Lambda handler: stage a run's training data. Logic lives in dataset.py and object_copy.py.

Two requests: a marker-mode dataset (every object of a folder as of its marker), or one object version that the
workflow cannot stage with a single CopyObject (over S3's 5 GiB copy limit, or of unknown size).
"""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from pydantic_settings import BaseSettings

from common.observability import MetricUnit, logger, metrics, tracer
from stage_dataset.dataset import stage_dataset
from stage_dataset.object_copy import ObjectVersion, stage_object


class Settings(BaseSettings):
    data_bucket_name: str = Field(min_length=3)
    artifacts_bucket_name: str = Field(min_length=3)


class DatasetRequest(BaseModel):
    """Marker mode: the dataset folder the marker completes."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    run_id: str = Field(alias="runId", min_length=1)
    dataset_prefix: str = Field(alias="datasetPrefix")
    marker_key: str = Field(alias="markerKey", min_length=1)
    marker_version_id: str = Field(alias="markerVersionId", min_length=1)


class ObjectRequest(BaseModel):
    """Object mode: one version of the data bucket, copied to `destinationKey` in this run's train channel."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    run_id: str = Field(alias="runId", min_length=1)
    source_key: str = Field(alias="sourceKey", min_length=1)
    source_version_id: str = Field(alias="sourceVersionId", min_length=1)
    destination_key: str = Field(alias="destinationKey", min_length=1)

    @model_validator(mode="after")
    def _destination_in_the_run_s_channel(self) -> "ObjectRequest":
        channel = f"runs/{self.run_id}/input/train/"
        name = self.destination_key.removeprefix(channel)
        if name == self.destination_key or not name or "/" in name:
            raise ValueError(f"destinationKey must name a file directly under {channel}")
        return self


StageRequest: TypeAdapter[DatasetRequest | ObjectRequest] = TypeAdapter(DatasetRequest | ObjectRequest)


@cache
def settings() -> Settings:
    return Settings()  # type: ignore[call-arg]


@cache
def s3_client() -> Any:
    return boto3.client("s3")


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = StageRequest.validate_python(event)
    logger.append_keys(run_id=request.run_id)
    if isinstance(request, ObjectRequest):
        staged_object = stage_object(
            s3_client(),
            ObjectVersion(settings().data_bucket_name, request.source_key, request.source_version_id),
            settings().artifacts_bucket_name,
            request.destination_key,
        )
        payload = staged_object.as_payload()
        logger.info("object staged", extra=payload)
        metrics.add_metric(name="BytesStagedInParts", unit=MetricUnit.Bytes, value=payload["bytes"])
        return payload
    staged = stage_dataset(
        s3_client(),
        data_bucket=settings().data_bucket_name,
        dataset_prefix=request.dataset_prefix,
        marker_key=request.marker_key,
        marker_version_id=request.marker_version_id,
        artifacts_bucket=settings().artifacts_bucket_name,
        input_prefix=f"runs/{request.run_id}/input/",
    )
    payload = staged.as_payload()
    logger.info("dataset staged", extra=payload)
    metrics.add_metric(name="DatasetObjectsStaged", unit=MetricUnit.Count, value=payload["objectCount"])
    return payload

"""Lambda handler: stage a marker-mode dataset for one run. Logic lives in dataset.py."""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings

from common.observability import MetricUnit, logger, metrics, tracer
from stage_dataset.dataset import stage_dataset


class Settings(BaseSettings):
    data_bucket_name: str = Field(min_length=3)
    artifacts_bucket_name: str = Field(min_length=3)


class StageRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    run_id: str = Field(alias="runId", min_length=1)
    dataset_prefix: str = Field(alias="datasetPrefix")
    marker_key: str = Field(alias="markerKey", min_length=1)
    marker_version_id: str = Field(alias="markerVersionId", min_length=1)


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
    request = StageRequest.model_validate(event)
    logger.append_keys(run_id=request.run_id)
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

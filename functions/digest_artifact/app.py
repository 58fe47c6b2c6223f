"""Lambda handler: the sha256, size and content digest of a finished training job's model.tar.gz."""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings

from common.observability import MetricUnit, logger, metrics, tracer
from digest_artifact.artifact import digest_s3_object


class Settings(BaseSettings):
    artifacts_bucket_name: str = Field(min_length=3)


class DigestRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    artifact_uri: str = Field(alias="artifactUri", min_length=6)


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
    request = DigestRequest.model_validate(event)
    digest = digest_s3_object(s3_client(), request.artifact_uri, settings().artifacts_bucket_name)
    logger.info(
        "artifact digested",
        extra={"sha256": digest.sha256, "content_sha256": digest.content_sha256, "size_bytes": digest.size_bytes},
    )
    metrics.add_metric(name="ArtifactBytes", unit=MetricUnit.Bytes, value=digest.size_bytes)
    return digest.as_payload()

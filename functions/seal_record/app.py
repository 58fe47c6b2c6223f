"""Lambda handler: seal a run's final record in the ledger bucket. Logic lives in seal.py."""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings

from common.observability import MetricUnit, logger, metrics, tracer
from seal_record.seal import seal_record


class Settings(BaseSettings):
    runs_table_name: str = Field(min_length=3)
    ledger_bucket_name: str = Field(min_length=3)


class SealRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    run_id: str = Field(alias="runId", min_length=1, max_length=80)


@cache
def settings() -> Settings:
    return Settings()  # type: ignore[call-arg]


@cache
def clients() -> tuple[Any, Any]:
    return boto3.client("dynamodb"), boto3.client("s3")


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = SealRequest.model_validate(event)
    logger.append_keys(run_id=request.run_id)
    dynamodb, s3 = clients()
    configured = settings()
    seal = seal_record(
        dynamodb, s3, table=configured.runs_table_name, bucket=configured.ledger_bucket_name, run_id=request.run_id
    )
    logger.info(
        "record sealed" if seal.sealed_now else "record was already sealed",
        extra={"ledger_uri": seal.uri, "version_id": seal.version_id, "sha256": seal.sha256},
    )
    metrics.add_metric(name="RecordsSealed", unit=MetricUnit.Count, value=1 if seal.sealed_now else 0)
    return seal.as_payload()

"""Lambda handler: the quality gate of a trained model. Logic lives in gate.py."""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings

from common.dynamodb import to_attributes
from common.gate_settings import GateSettings
from common.model_registry import description_text, registration_properties
from common.observability import MetricUnit, logger, metrics, tracer
from evaluate_gate.gate import evaluate, find_champion


class Settings(BaseSettings):
    model_package_group_name: str = Field(min_length=1)


class RunIdentity(BaseModel):
    """What the package will say about the run that made the model."""

    model_config = ConfigDict(populate_by_name=True)

    commit_id: str | None = Field(default=None, alias="commitId")
    commit_repository: str | None = Field(default=None, alias="commitRepository")
    data_ref: str | None = Field(default=None, alias="dataRef")
    data_version_id: str | None = Field(default=None, alias="dataVersionId")
    content_sha256: str | None = Field(default=None, alias="contentSha256")


class GateRequest(BaseModel):
    """A run's metrics, its identity, and the gate's settings from the run input (NormaliseTrigger's). A CACHED
    run sends its source's metrics and model digest, and names the source (`cachedFrom`)."""

    model_config = ConfigDict(populate_by_name=True)

    run_id: str = Field(alias="runId", min_length=1, max_length=80)
    metrics: dict[str, float] = Field(default_factory=dict)
    settings: dict[str, Any]
    identity: RunIdentity = Field(default_factory=RunIdentity)
    cached_from: str | None = Field(default=None, alias="cachedFrom", min_length=1, max_length=80)


@cache
def settings() -> Settings:
    return Settings()  # type: ignore[call-arg]


@cache
def sagemaker_client() -> Any:
    return boto3.client("sagemaker")


def registration(request: GateRequest) -> dict[str, Any]:
    """What RegisterModelPackage passes on a pass: the description and the CustomerMetadataProperties."""
    identity = request.identity
    properties, left_out = registration_properties(
        run_id=request.run_id,
        commit=identity.commit_id,
        data_version_id=identity.data_version_id,
        content_sha256=identity.content_sha256,
        metrics=request.metrics,
    )
    where = f" ({identity.commit_repository})" if identity.commit_repository else ""
    description = f"sagepipe run {request.run_id}: commit {identity.commit_id or 'unknown'}{where}"
    if identity.data_ref:
        description += f" on {identity.data_ref}"
    if request.cached_from:
        description += f"; the model trained by run {request.cached_from} (training cache)"
    return {
        "description": description_text(description),
        "customerMetadataProperties": properties,
        "leftOut": left_out,
    }


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = GateRequest.model_validate(event)
    logger.append_keys(run_id=request.run_id)
    gate_settings = GateSettings.from_payload(request.settings)
    champion = find_champion(sagemaker_client(), settings().model_package_group_name)
    result = evaluate(request.metrics, gate_settings, champion, request.identity.content_sha256)
    logger.info(
        "gate passed" if result.passed else "gate failed",
        extra={"summary": result.summary, "champion": champion.model_package_arn if champion else None},
    )
    metrics.add_metric(name="GatePassed" if result.passed else "GateFailed", unit=MetricUnit.Count, value=1)
    record = result.as_record()
    return {
        "passed": result.passed,
        "summary": result.summary,
        "failures": list(result.failures),
        "comparisons": record["comparisons"],
        "champion": record.get("champion"),
        "record": to_attributes({"gate": record})["gate"],
        "registration": registration(request),
    }

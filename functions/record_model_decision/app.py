"""Lambda handler: a decision on one of the stack's model packages, recorded on its run and announced. Logic lives
in decision.py."""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field
from pydantic_settings import BaseSettings

from common.observability import MetricUnit, logger, metrics, tracer
from record_model_decision.decision import (
    ModelPackageStateChange,
    announcement,
    decision_of,
    message,
    previous_status,
    record,
)


class Settings(BaseSettings):
    environment: str = Field(min_length=1)
    runs_table_name: str = Field(min_length=3)
    notifications_topic_arn: str = Field(min_length=1)
    model_package_group_name: str = Field(min_length=1)


@cache
def settings() -> Settings:
    return Settings()  # type: ignore[call-arg]


@cache
def clients() -> tuple[Any, Any, Any]:
    return boto3.client("sagemaker"), boto3.client("dynamodb"), boto3.client("sns")


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = ModelPackageStateChange.model_validate(event)
    configured = settings()
    if change.detail.model_package_group_name != configured.model_package_group_name:
        # The rule matches this group only; an event of another group came by hand, or through an edited rule.
        logger.warning("not this stack's model package group", extra={"group": change.detail.model_package_group_name})
        return {"recorded": False, "announced": None}
    sagemaker, dynamodb, sns = clients()
    description = sagemaker.describe_model_package(ModelPackageName=change.detail.model_package_arn)
    decision = decision_of(change, description)
    logger.append_keys(run_id=decision.run_id, model_package_version=decision.version)
    previous: str | None = None
    if decision.run_id is None:
        logger.warning("the package names no sagepipe run: not recorded", extra={"arn": decision.model_package_arn})
        recorded = False
    else:
        previous = previous_status(dynamodb, configured.runs_table_name, decision)
        recorded = record(dynamodb, configured.runs_table_name, decision, previous)
        if not recorded:
            logger.info("decision already recorded", extra={"status": decision.status})
            return {"recorded": False, "announced": None}
    status = announcement(decision, previous)
    if status is not None:
        request = message(decision, status, configured.environment, previous)
        sns.publish(TopicArn=configured.notifications_topic_arn, **request)
    logger.info(
        "model package decision",
        extra={"status": decision.status, "previous": previous, "decided_by": decision.decided_by, "announced": status},
    )
    metrics.add_metric(name="ModelDecisionsRecorded", unit=MetricUnit.Count, value=1 if recorded else 0)
    return {"recorded": recorded, "announced": status}

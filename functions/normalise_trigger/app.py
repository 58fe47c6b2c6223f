"""Lambda handler: the first step of every pipeline execution. Logic lives in trigger.py."""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from common.image_tree import image_tree_from_folder
from common.observability import MetricUnit, logger, metrics, tracer
from normalise_trigger.models import NormaliseRequest, Settings
from normalise_trigger.trigger import normalise


class SettingsError(ValueError):
    """The stack's configuration (the function's environment) is not valid: every run fails here, at its first
    state, with this one-line message, before anything is claimed, built or trained."""


@cache
def settings() -> Settings:
    # Read once per execution environment; a bad setting fails every invocation loudly, not just the first.
    try:
        return Settings()  # type: ignore[call-arg]
    except ValidationError as error:
        first = error.errors()[0]
        problem = str(first["msg"]).removeprefix("Value error, ")
        # The gate's messages name their template parameter; others are named by their environment variable.
        where = "" if problem.startswith("Gate") else ".".join(str(part) for part in first["loc"]).upper() + ": "
        raise SettingsError(f"invalid stack configuration: {where}{problem}") from None


@cache
def codecommit() -> Any:
    # Standard retry mode: throttling and 5xx retried with backoff (botocore/retries/standard.py).
    return boto3.client("codecommit", config=Config(retries={"mode": "standard", "max_attempts": 4}))


def image_tree(repository: str, commit: str) -> str | None:
    """The commit's image tree from CodeCommit GetFolder of its root. A failure leaves it unknown, and the
    build derives it instead: a lost lookup costs a short build, never a wrong image."""
    try:
        folder = codecommit().get_folder(repositoryName=repository, commitSpecifier=commit, folderPath="/")
    except (ClientError, BotoCoreError) as error:
        logger.warning("image tree unknown: CodeCommit GetFolder failed", extra={"commit": commit, "error": str(error)})
        return None
    return image_tree_from_folder(folder)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = NormaliseRequest.model_validate(event)
    logger.append_keys(run_id=request.run_id)
    decision = normalise(request, settings(), image_tree)
    if decision.decision == "ignore":
        logger.warning(
            "trigger ignored",
            extra={
                "reason": decision.reason,
                "source": request.event.get("source"),
                "detail_type": request.event.get("detail-type"),
                "event_id": request.event.get("id"),
            },
        )
        metrics.add_metric(name="TriggersIgnored", unit=MetricUnit.Count, value=1)
    else:
        logger.info("trigger accepted", extra={"kind": decision.payload["kind"]})
        metrics.add_metric(name="TriggersAccepted", unit=MetricUnit.Count, value=1)
    return decision.payload

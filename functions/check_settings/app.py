"""Lambda handler: the TrainingSettingsCheck custom resource. Logic lives in check.py."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from check_settings.check import decide, response_document, send
from common.observability import logger


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    # Never raise before answering: CloudFormation would wait for a response until the ServiceTimeout.
    answer = decide(str(event.get("RequestType")), dict(event.get("ResourceProperties") or {}))
    logger.info("training settings checked", extra={"status": answer.status, "reason": answer.reason})
    status = send(event["ResponseURL"], response_document(event, answer))
    logger.info("response sent", extra={"httpStatus": status})

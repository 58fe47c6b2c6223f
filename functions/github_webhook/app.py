"""Lambda handler behind the GitHub webhook's Function URL. Logic lives in webhook.py."""

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import LambdaFunctionUrlEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from common.observability import logger, metrics, tracer
from github_webhook.models import Settings
from github_webhook.webhook import Request, handle


@cache
def settings() -> Settings:
    # Read once per execution environment; a bad setting fails every invocation loudly, not just the first.
    return Settings()  # type: ignore[call-arg]


# log_event stays off: the event holds the signature and the whole payload. clear_state drops the previous
# invocation's delivery and github_event keys in a warm execution environment.
@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    url_event = LambdaFunctionUrlEvent(event)
    request = Request(
        method=url_event.request_context.http.method,
        headers=url_event.headers,
        body=url_event.body,
        is_base64_encoded=bool(url_event.is_base64_encoded),
    )
    outcome = handle(request, settings(), context)
    return {
        "statusCode": outcome.status_code,
        "headers": {"content-type": "application/json", **outcome.headers},
        "body": json.dumps(outcome.body),
    }

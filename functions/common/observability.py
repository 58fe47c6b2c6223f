"""Powertools Logger, Tracer and Metrics for every sagepipe function, configured in one place.

Service name, log level and metrics namespace come from the POWERTOOLS_* environment variables that
template.yaml sets in Globals, so every function logs, traces and measures the same way.

The functions call AWS through boto3 only, so the Tracer patches botocore alone ("Patching boto3 and botocore are
equivalent since boto3 depends on botocore": AWS X-Ray SDK for Python, "Third Party Library Support",
https://docs.aws.amazon.com/xray-sdk-for-python/latest/reference/thirdparty.html). By default it would patch every
library of the X-Ray SDK's list that imports (requests, sqlite3, httpx, ...), importing each one at every cold
start for calls no function makes (bench/lambda_init.py). A function that starts using one of them adds it here.
"""

from typing import Final

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

TRACED_MODULES: Final = ("botocore",)
"""What the Tracer patches (Powertools' `patch_modules`, the X-Ray SDK's `patch`): every AWS SDK call."""

logger = Logger()
tracer = Tracer(patch_modules=TRACED_MODULES)
metrics = Metrics()

__all__ = ["TRACED_MODULES", "MetricUnit", "logger", "metrics", "tracer"]

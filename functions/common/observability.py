"""Powertools Logger, Tracer and Metrics for every sagepipe function, configured in one place.

Service name, log level and metrics namespace come from the POWERTOOLS_* environment variables that
template.yaml sets in Globals, so every function logs, traces and measures the same way.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
tracer = Tracer()
metrics = Metrics()

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]

"""Account-level settings of the local emulator that AWS has and moto 5.2.5 lacks.

An AWS account has quotas (Service Quotas), a Lambda concurrency limit (GetAccountSettings) and CodeConnections
connections with a status; moto has none of these, so `sagepipe doctor` could not be run, or tested, locally.
These are the values the emulator answers with (adapters lambda_account_settings, service_quotas,
code_connections); tests change them to make a check fail, as a fresh account would. Each emulator keeps one
`LocalAccount` in its runtime context, reset with the emulator.

The defaults are those of an account that can run the pipeline, not necessarily a new account's: see
DEFAULT_QUOTAS for where each value comes from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Final

import botocore.session

from sagepipe.local.core import context

LAMBDA_CONCURRENT_EXECUTIONS: Final = 1000
"""Lambda's default "Concurrent executions" quota (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html)."""


@dataclass(frozen=True)
class LocalQuota:
    """One Service Quotas quota: its AWS default, and the account's applied value when it has one."""

    service_code: str
    quota_code: str
    name: str
    default: float
    applied: float | None = None
    unit: str = "None"


@dataclass
class TrainingInstanceTypes:
    """The runtime's memo of the training instance types botocore's SageMaker model lists (loading the model
    costs a fifth of a second, and every reset of the account would pay it again)."""

    _types: tuple[str, ...] | None = None

    def types(self) -> tuple[str, ...]:
        if self._types is None:
            model = botocore.session.get_session().get_service_model("sagemaker")
            self._types = tuple(getattr(model.shape_for("TrainingInstanceType"), "enum", []))
        return self._types


def _training_quotas() -> list[LocalQuota]:
    """SageMaker's "<type> for training job usage" quota for every training instance type botocore knows.

    AWS gives each its own code (L-3F53BF0F is ml.g4dn.xlarge's); locally the codes are derived from the name,
    stable but not AWS's, which is why sagepipe doctor finds quotas by name. The local default is 1 instance:
    AWS's defaults vary by type and account (new accounts often have 0 for GPU types).
    """
    runtime = context.current_or_none()
    memo = runtime.memo(TrainingInstanceTypes) if runtime is not None else TrainingInstanceTypes()
    quotas = []
    for instance_type in memo.types():
        name = f"{instance_type} for training job usage"
        code = "L-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()
        quotas.append(LocalQuota("sagemaker", code, name, 1, unit="None"))
    return quotas


def default_quotas() -> dict[tuple[str, str], LocalQuota]:
    """The quotas the local Service Quotas lists, by (service code, quota name)."""
    quotas = [
        LocalQuota("lambda", "L-B99A9384", "Concurrent executions", LAMBDA_CONCURRENT_EXECUTIONS),
        # Code and name as Service Quotas lists them in public quota-increase records; CodeBuild's quotas page
        # lists these per-environment quotas with a default of 1
        # (https://docs.aws.amazon.com/codebuild/latest/userguide/limits.html).
        LocalQuota("codebuild", "L-9D07B6EF", "Concurrently running builds for Linux/Small environment", 1),
        *_training_quotas(),
    ]
    return {(quota.service_code, quota.name): quota for quota in quotas}


SERVICE_NAMES: Final = {"lambda": "AWS Lambda", "codebuild": "AWS CodeBuild", "sagemaker": "Amazon SageMaker"}


@dataclass(frozen=True)
class LocalConnection:
    """A CodeConnections connection (GitHub), as GetConnection describes it."""

    arn: str
    name: str
    status: str = "AVAILABLE"
    provider: str = "GitHub"
    owner_account_id: str = "123456789012"


@dataclass
class LocalAccount:
    lambda_concurrent_executions: int = LAMBDA_CONCURRENT_EXECUTIONS
    quotas: dict[tuple[str, str], LocalQuota] = field(default_factory=default_quotas)
    connections: dict[str, LocalConnection] = field(default_factory=dict)

    def apply_quota(self, service_code: str, name: str, value: float) -> LocalQuota:
        """Give the account an applied value for a quota (a new one, with a derived code, if the name is new)."""
        quota = self.quotas.get((service_code, name))
        if quota is None:
            code = "L-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()
            quota = LocalQuota(service_code, code, name, value)
        quota = replace(quota, applied=value)
        self.quotas[(service_code, name)] = quota
        return quota

    def forget_quota(self, service_code: str, name: str) -> None:
        """As if Service Quotas had no such quota in this region."""
        self.quotas.pop((service_code, name), None)

    def add_connection(self, arn: str, name: str, status: str = "AVAILABLE") -> LocalConnection:
        connection = LocalConnection(arn, name, status)
        self.connections[arn] = connection
        return connection

    def set_connection_status(self, arn: str, status: str) -> None:
        self.connections[arn] = replace(self.connections[arn], status=status)

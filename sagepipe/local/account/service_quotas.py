"""Service Quotas lists the Lambda, CodeBuild and SageMaker quotas of the local account.

The gap
    moto 5.2.5's Service Quotas knows only VPC's default quotas: ListAWSDefaultServiceQuotas answers
    NoSuchResourceException for any other service, and ListServiceQuotas (the account's applied values) does
    not exist. `sagepipe doctor` reads the quotas that decide whether CodeBuild can build and SageMaker can
    train, and tests need to set them.

What this adapter does
    For the services the local account has quotas for (sagepipe.local.account.state: lambda, codebuild, sagemaker),
    ListAWSDefaultServiceQuotas answers their AWS defaults and ListServiceQuotas the applied values a test has
    set, each in Service Quotas' shape (botocore's service-quotas model, ServiceQuota). Other services go to
    moto as before (ListServiceQuotas then answers NoSuchResourceException, as moto does for unknown services).

How it differs from AWS
    One page, whatever MaxResults says; no quota history, usage metrics or increase requests. The SageMaker
    quota codes are derived from their names (AWS's differ); find quotas by name, as sagepipe doctor does.
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Final

from sagepipe.local.account.state import SERVICE_NAMES, LocalAccount, LocalQuota
from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "service_quotas"

_RESPONSES: Final = "moto.servicequotas.responses"

MOTO_INTERNALS: Final = (
    Internal(
        f"{_RESPONSES}:ServiceQuotasResponse.list_aws_default_service_quotas",
        parameters=("self",),
        why="moto dispatches ListAWSDefaultServiceQuotas to it (X-Amz-Target action, snake_cased)",
    ),
    Internal(
        "moto.core.responses:BaseResponse.setup_class",
        parameters=("self", "request"),
        why="sets body, region and current_account on the response, which the handlers read",
    ),
    Internal(
        "moto.servicequotas.exceptions:NoSuchResource",
        why="raised for a service with no quotas, serialised by moto as NoSuchResourceException",
    ),
)


def _shape(response: Any, quota: LocalQuota, value: float) -> dict[str, Any]:
    return {
        "ServiceCode": quota.service_code,
        "ServiceName": SERVICE_NAMES.get(quota.service_code, quota.service_code),
        "QuotaArn": (
            f"arn:aws:servicequotas:{response.region}:{response.current_account}:"
            f"{quota.service_code}/{quota.quota_code}"
        ),
        "QuotaCode": quota.quota_code,
        "QuotaName": quota.name,
        "Value": value,
        "Unit": quota.unit,
        "Adjustable": True,
        "GlobalQuota": False,
    }


def _local_quotas(service_code: str) -> list[LocalQuota]:
    return [
        quota for quota in context.current().state(LocalAccount).quotas.values() if quota.service_code == service_code
    ]


def list_aws_default_service_quotas(self: Any) -> str:
    service_code = str(json.loads(self.body).get("ServiceCode"))
    quotas = _local_quotas(service_code)
    if not quotas:
        return str(original_attribute(type(self), "list_aws_default_service_quotas")(self))
    return json.dumps({"Quotas": [_shape(self, quota, quota.default) for quota in quotas]})


def list_service_quotas(self: Any) -> str:
    from moto.servicequotas.exceptions import NoSuchResource

    service_code = str(json.loads(self.body).get("ServiceCode"))
    quotas = _local_quotas(service_code)
    if not quotas:
        raise NoSuchResource
    applied = [_shape(self, quota, quota.applied) for quota in quotas if quota.applied is not None]
    return json.dumps({"Quotas": applied})


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    responses = importlib.import_module(_RESPONSES)
    replace_attribute(
        responses.ServiceQuotasResponse, "list_aws_default_service_quotas", list_aws_default_service_quotas
    )
    replace_attribute(responses.ServiceQuotasResponse, "list_service_quotas", list_service_quotas)

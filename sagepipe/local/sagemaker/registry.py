"""The SageMaker model registry: moto's model package groups and versions, with the gaps that matter closed, and the
"SageMaker Model Package State Change" events SageMaker sends to EventBridge.

The gap
    moto 5.2.5 keeps groups and versioned packages faithfully where sagepipe relies on it: CreateModelPackage in a
    group numbers the versions 1, 2, 3...; ListModelPackages filters by group and ModelApprovalStatus and sorts by
    CreationTime in either order, with MaxResults and NextToken; DescribeModelPackage returns the
    CustomerMetadataProperties, MetadataProperties and InferenceSpecification as they were given. But:
    - CreateModelPackage refuses a group named by its ARN ("Model Package Group does not exist"); SageMaker takes
      "the name or Amazon Resource Name (ARN) of the model package group" (API Reference, CreateModelPackage).
    - It ignores ClientToken, so a retried call creates a second version; SageMaker: "A unique token that guarantees
      that the call to this API is idempotent" (same page).
    - It drops SecurityConfig (the KMS key of the package's information).
    - UpdateModelPackage replaces CustomerMetadataProperties with the request's, or with nothing when the request
      has none, and clears ApprovalDescription when the request has none. SageMaker's UpdateModelPackage sets what
      it is given: it has CustomerMetadataPropertiesToRemove to remove properties (API Reference,
      UpdateModelPackage), so an approval that names no property keeps them (the run a package came from above all).
      An update without ModelApprovalStatus also sets the status to none; SageMaker leaves what it is not given.
    - CreatedBy and LastModifiedBy name a made-up Studio user profile. SageMaker records the caller: UserContext's
      IamIdentity, "associated with model package groups, model packages and project entities" (botocore's
      SageMaker model).
    - Nothing reaches EventBridge. SageMaker sends "SageMaker Model Package State Change" with a detail of the
      package's fields (SageMaker developer guide, "Events that Amazon SageMaker sends to Amazon EventBridge", Model
      package state change).

What this adapter does
    Wraps the backend's create_model_package (a group ARN becomes its name; a ClientToken already used in the group
    returns that version's ARN and creates nothing) and update_model_package (properties added and overwritten, and
    removed only by CustomerMetadataPropertiesToRemove; the status and description kept unless given), and the two API
    handlers: they keep SecurityConfig, record the caller's IAM identity (moto's STS answer for the request's access
    key) as CreatedBy / LastModifiedBy, and put the state change event on the account's default bus (moto's
    EventBridge, whose rules then deliver it) with the documented example's fields, ISO 8601 times, and the package's
    ARN as the resource. DescribeModelPackage then returns SecurityConfig too.

How it differs from AWS
    The event is put on the bus while the request is served, once per change (SageMaker "may send multiple events
    for each state change"); a change of a version's metadata alone sends one too, as a status change does. Every
    caller of the emulator is the same IAM identity (moto's default user), so "who" is that user locally.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "sagemaker_registry"

STATE_CHANGE: Final = "SageMaker Model Package State Change"
EVENT_SOURCE: Final = "aws.sagemaker"
EVENT_DETAIL_FIELDS: Final = (
    "ModelPackageGroupName",
    "ModelPackageVersion",
    "ModelPackageArn",
    "CreationTime",
    "InferenceSpecification",
    "ModelPackageStatus",
    "ModelPackageStatusDetails",
    "CertifyForMarketplace",
    "ModelApprovalStatus",
    "MetadataProperties",
    "ModelMetrics",
    "LastModifiedTime",
)
"""The detail's fields in the SageMaker developer guide's example of the event (those the package has)."""

_BACKEND = "moto.sagemaker.models:SageMakerModelBackend"
_RESPONSE = "moto.sagemaker.responses:SageMakerResponse"

MOTO_INTERNALS: Final = (
    Internal(
        f"{_BACKEND}.create_model_package",
        parameters=("self", "model_package_name", "model_package_group_name", "client_token"),
        why="a group ARN is turned into its name, and a ClientToken used before returns that version",
    ),
    Internal(
        f"{_BACKEND}.update_model_package",
        parameters=(
            "self",
            "model_package_arn",
            "model_approval_status",
            "approval_description",
            "customer_metadata_properties",
            "customer_metadata_properties_to_remove",
            "additional_inference_specifications_to_add",
        ),
        why="properties are merged as SageMaker merges them, and the description kept unless given",
    ),
    Internal(
        "moto.sagemaker.models:ModelPackage.gen_response_object",
        parameters=("self",),
        why="DescribeModelPackage and ListModelPackages build their answers from it: SecurityConfig is added",
    ),
    Internal(f"{_RESPONSE}.create_model_package", parameters=("self",), why="the API handler of CreateModelPackage"),
    Internal(f"{_RESPONSE}.update_model_package", parameters=("self",), why="the API handler of UpdateModelPackage"),
    Internal(
        "moto.core.responses:BaseResponse.get_access_key",
        parameters=("self",),
        why="the request's access key: who the caller is",
    ),
    Internal("moto.sts.models:sts_backends", why="STS answers which IAM identity an access key belongs to"),
    Internal(
        "moto.sts.models:STSBackend.get_caller_identity",
        parameters=("self", "access_key_id", "region"),
        why="returns (user id, ARN, account) for the request's access key",
    ),
    Internal("moto.events.models:events_backends", why="the account's EventBridge, where SageMaker's events go"),
    Internal(
        "moto.events.models:EventsBackend.put_events",
        parameters=("self", "events"),
        why="puts the state change event on the default bus; every rule of the bus gets it",
    ),
)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _group_name(name_or_arn: str | None) -> str | None:
    """`arn:aws:sagemaker:<region>:<account>:model-package-group/<name>` or `<name>` -> `<name>`."""
    if name_or_arn and name_or_arn.startswith("arn:") and ":model-package-group/" in name_or_arn:
        return name_or_arn.rsplit("/", 1)[-1]
    return name_or_arn


# ------------------------------------------------------------------------------------------------- the backend
def create_model_package(self: Any, *args: Any, **kwargs: Any) -> str:
    original = original_attribute(type(self), "create_model_package")
    group = _group_name(kwargs.get("model_package_group_name"))
    kwargs["model_package_group_name"] = group
    token = kwargs.get("client_token")
    if group and token:
        for package in self.model_packages.values():
            if package.model_package_group_name == group and package.client_token == token:
                return str(package.arn)
    arn: str = original(self, *args, **kwargs)
    return arn


def update_model_package(  # noqa: PLR0917 - moto's signature
    self: Any,
    model_package_arn: str,
    model_approval_status: str | None,
    approval_description: str | None,
    customer_metadata_properties: dict[str, str] | None,
    customer_metadata_properties_to_remove: list[str],
    additional_inference_specifications_to_add: list[Any] | None,
) -> str:
    original = original_attribute(type(self), "update_model_package")
    package = self.model_packages.get(self.model_package_name_mapping.get(model_package_arn, model_package_arn))
    if package is not None:
        merged = dict(package.customer_metadata_properties or {}) | dict(customer_metadata_properties or {})
        for key in customer_metadata_properties_to_remove or []:
            merged.pop(key, None)
        customer_metadata_properties = merged or None
        customer_metadata_properties_to_remove = []
        model_approval_status = model_approval_status or package.model_approval_status
        if approval_description is None:
            approval_description = package.approval_description
    arn: str = original(
        self,
        model_package_arn,
        model_approval_status,
        approval_description,
        customer_metadata_properties,
        customer_metadata_properties_to_remove,
        additional_inference_specifications_to_add,
    )
    return arn


def gen_response_object(self: Any) -> dict[str, Any]:
    response: dict[str, Any] = original_attribute(type(self), "gen_response_object")(self)
    security = getattr(self, "sagepipe_security_config", None)
    if security:
        response["SecurityConfig"] = dict(security)
    return response


# ------------------------------------------------------------------------------------------------- the API
def _caller(response: Any) -> dict[str, Any]:
    """The request's IAM identity, as SageMaker records it in a UserContext."""
    backends = Internal("moto.sts.models:sts_backends").resolve(ADAPTER)
    account = response.current_account
    user_id, arn, _ = backends[account]["aws"].get_caller_identity(response.get_access_key(), response.region)
    return {"IamIdentity": {"Arn": arn, "PrincipalId": user_id}}


def _package(response: Any, arn: str) -> Any:
    backend = response.sagemaker_backend
    return backend.model_packages[backend.model_package_name_mapping.get(arn, arn)]


def state_change_event(package: Any) -> dict[str, Any]:
    """The PutEvents entry of SageMaker's state change event for a versioned package."""
    described = package.gen_response_object()
    described.setdefault("LastModifiedTime", described.get("CreationTime"))
    detail = {name: _iso(described[name]) for name in EVENT_DETAIL_FIELDS if described.get(name) is not None}
    return {
        "Source": EVENT_SOURCE,
        "DetailType": STATE_CHANGE,
        "Detail": json.dumps(detail, default=str),
        "Resources": [str(package.arn)],
        "EventBusName": "default",
    }


def _emit(response: Any, package: Any) -> None:
    if not package.model_package_group_name:
        return  # an unversioned package belongs to no group; sagepipe's rules watch a group
    backend = Internal("moto.events.models:events_backends").resolve(ADAPTER)[response.current_account][response.region]
    backend.put_events([state_change_event(package)])


def respond_create_model_package(self: Any) -> Any:
    backend = self.sagemaker_backend
    known = set(backend.model_packages)
    result = original_attribute(type(self), "create_model_package")(self)
    arn = str(result.result["ModelPackageArn"])
    if arn in known:
        return result  # the ClientToken of an earlier call: that version, unchanged, and no event
    package = _package(self, arn)
    security = self._get_param("SecurityConfig")
    if security:
        package.sagepipe_security_config = dict(security)
    package.created_by = _caller(self)
    _emit(self, package)
    return result


def respond_update_model_package(self: Any) -> Any:
    result = original_attribute(type(self), "update_model_package")(self)
    package = _package(self, str(result.result["ModelPackageArn"]))
    package.last_modified_by = _caller(self)
    _emit(self, package)
    return result


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto.sagemaker.models import ModelPackage, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    replace_attribute(SageMakerModelBackend, "create_model_package", create_model_package)
    replace_attribute(SageMakerModelBackend, "update_model_package", update_model_package)
    replace_attribute(ModelPackage, "gen_response_object", gen_response_object)
    replace_attribute(SageMakerResponse, "create_model_package", respond_create_model_package)
    replace_attribute(SageMakerResponse, "update_model_package", respond_update_model_package)

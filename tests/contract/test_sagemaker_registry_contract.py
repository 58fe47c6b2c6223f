"""The gaps sagepipe.local.sagemaker.registry closes in moto's SageMaker model registry, and the moto behaviour it
builds on. Each test calls moto's own methods (as moto defined them, whether or not an adapter is installed in this
process), so it fails with a clear message when an upgrade of moto changes what the adapter assumes."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from moto.events.models import Rule
from moto.sagemaker.models import ModelPackage, SageMakerModelBackend

from sagepipe.local.core.moto_internals import original_attribute
from sagepipe.local.eventbridge import targets as eventbridge_targets
from sagepipe.local.sagemaker import registry

ACCOUNT = "123456789012"
REGION = "us-east-1"
GROUP = "sagepipe-contract"


@pytest.fixture
def backend() -> SageMakerModelBackend:
    """A backend of its own (not the process-wide one), with one group."""
    sagemaker = SageMakerModelBackend(REGION, ACCOUNT)
    sagemaker.create_model_package_group(
        model_package_group_name=GROUP, model_package_group_description="contract", tags=None
    )
    return sagemaker


def _create(backend: SageMakerModelBackend, **overrides: Any) -> str:
    """moto's own create_model_package, with every parameter it has defaulted to None (it takes them all)."""
    create = original_attribute(SageMakerModelBackend, "create_model_package")
    parameters = [name for name in inspect.signature(create).parameters if name != "self"]
    arguments: dict[str, Any] = dict.fromkeys(parameters) | {
        "model_package_group_name": GROUP,
        "model_approval_status": "PendingManualApproval",
        "customer_metadata_properties": {"sagepipe:run-id": "run-1"},
        "certify_for_marketplace": False,
        "tags": None,
    }
    arguments |= overrides
    return str(create(backend, **arguments))


def test_moto_numbers_the_versions_of_a_group(backend: SageMakerModelBackend) -> None:
    """What the registry relies on as it is: versions 1, 2, ... in the group, ARNs ending in /<version>."""
    first, second = _create(backend), _create(backend)

    assert first.endswith(f":model-package/{GROUP}/1"), first
    assert second.endswith(f":model-package/{GROUP}/2"), second


def test_moto_refuses_a_group_named_by_its_arn(backend: SageMakerModelBackend) -> None:
    """The gap: SageMaker's CreateModelPackage takes the group's name or ARN; moto only its name."""
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{GROUP}"
    # moto's ValidationError; if nothing is raised, moto accepts an ARN and registry's mapping may go.
    with pytest.raises(Exception, match="does not exist"):
        _create(backend, model_package_group_name=arn)


def test_moto_ignores_the_client_token(backend: SageMakerModelBackend) -> None:
    """The gap: SageMaker makes CreateModelPackage idempotent by ClientToken; moto creates a second version."""
    first = _create(backend, client_token="token-1")
    second = _create(backend, client_token="token-1")

    assert first != second, "moto now honours ClientToken: registry.create_model_package's lookup may go"
    assert all(hasattr(package, "client_token") for package in backend.model_packages.values()), (
        "moto's ModelPackage no longer keeps client_token, which registry.create_model_package reads"
    )


def test_moto_update_replaces_the_properties_and_the_status(backend: SageMakerModelBackend) -> None:
    """The gap: SageMaker's UpdateModelPackage keeps what it is not given; moto drops the properties and the
    approval description, and sets the status to None, when the request has none."""
    arn = _create(backend)
    update = original_attribute(SageMakerModelBackend, "update_model_package")

    update(backend, arn, None, None, None, [], None)

    package = backend.model_packages[backend.model_package_name_mapping.get(arn, arn)]
    lost = (
        package.customer_metadata_properties in (None, {}),
        package.model_approval_status is None,
        package.approval_description is None,
    )
    assert any(lost), "moto's update_model_package now keeps what it is not given: re-check registry"


def test_moto_describes_no_security_config(backend: SageMakerModelBackend) -> None:
    """The gap: the package's SecurityConfig (its KMS key) is dropped; registry.gen_response_object adds it."""
    arn = _create(backend)
    package = backend.model_packages[backend.model_package_name_mapping.get(arn, arn)]

    described = original_attribute(ModelPackage, "gen_response_object")(package)

    assert "SecurityConfig" not in described, "moto now keeps SecurityConfig: registry's copy of it may go"
    assert {"CustomerMetadataProperties", "ModelApprovalStatus", "CreationTime"} <= set(described)


def test_moto_sends_no_model_package_event() -> None:
    """The gap: nothing in moto's SageMaker puts a "SageMaker Model Package State Change" on EventBridge."""
    from moto.sagemaker import models, responses

    for module in (models, responses):
        assert registry.STATE_CHANGE not in inspect.getsource(module), (
            f"moto's {module.__name__} now sends the model package state change: registry would send it twice"
        )


def test_moto_rules_do_not_invoke_lambda_targets() -> None:
    """The gap eventbridge.targets closes for RecordModelDecision: moto's Rule.send_to_targets invokes no Lambda
    function (a function target is passed over)."""
    source = inspect.getsource(original_attribute(Rule, "send_to_targets"))

    assert '"lambda"' not in source, (
        "moto's Rule.send_to_targets now invokes Lambda targets: the adapter would invoke each function twice"
    )
    assert eventbridge_targets._is_function({"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"})

"""Contract: what the account adapters (lambda_account_settings, service_quotas, code_connections,
cloudformation_stacks) assume about moto 5.2.5 and botocore.

Their internals are resolved one by one in test_adapter_contracts.py; here each adapter's gap is shown to be
still there, and the shapes it builds on still behave as it expects. moto's originals are reached with
`original_attribute`, so these hold whether or not an emulator in this process installed the adapters.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from moto import mock_aws

from sagepipe.local.account import code_connections
from sagepipe.local.cloudformation import stacks as cloudformation_stacks
from sagepipe.local.core.moto_internals import original_attribute

ACCOUNT = "123456789012"
REGION = "us-east-1"


# ------------------------------------------------------------------------------------ lambda_account_settings
def test_moto_lambda_has_no_get_account_settings() -> None:
    """The gap lambda_account_settings closes: moto routes no account-settings path and has no handler."""
    from moto.awslambda import urls
    from moto.awslambda.responses import LambdaResponse

    assert original_attribute(LambdaResponse, "get_account_settings") is None, (
        "moto's Lambda now has get_account_settings; lambda_account_settings may be redundant"
    )
    routes = original_attribute(urls, "url_paths")
    assert not any("account-settings" in route for route in routes), (
        "moto's Lambda now routes account-settings; re-check lambda_account_settings"
    )


def test_moto_lambda_functions_carry_their_reservation_and_code_size() -> None:
    """The handler sums reserved_concurrency and code_size over LambdaBackend.list_functions(), of the backend
    LambdaResponse.backend answers with (moto's get_backend: the simple backend once an emulator in this process
    has turned Docker off)."""
    from moto.awslambda.utils import get_backend

    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        client = boto3.client("lambda", region_name=REGION)
        client.create_function(
            FunctionName="f",
            Runtime="python3.13",
            Role=role,
            Handler="h.h",
            Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},
        )
        client.put_function_concurrency(FunctionName="f", ReservedConcurrentExecutions=7)
        functions: list[Any] = list(get_backend(ACCOUNT, REGION).list_functions())
        (function,) = functions
        assert int(function.reserved_concurrency) == 7, "moto's LambdaFunction.reserved_concurrency changed"
        assert int(function.code_size) > 0, "moto's LambdaFunction.code_size changed"


# ----------------------------------------------------------------------------------------------- service_quotas
def test_moto_service_quotas_knows_only_vpc_and_has_no_list_service_quotas() -> None:
    """The gap service_quotas closes: no Lambda, CodeBuild or SageMaker quotas, no ListServiceQuotas."""
    from moto.servicequotas.exceptions import NoSuchResource
    from moto.servicequotas.models import servicequotas_backends
    from moto.servicequotas.responses import ServiceQuotasResponse

    backend = servicequotas_backends[ACCOUNT][REGION]
    for service in ("lambda", "codebuild", "sagemaker"):
        with pytest.raises(NoSuchResource):
            backend.list_aws_default_service_quotas(service)
    assert backend.list_aws_default_service_quotas("vpc"), "moto's VPC quotas are gone; re-check the fallback"
    assert original_attribute(ServiceQuotasResponse, "list_service_quotas") is None, (
        "moto now has ListServiceQuotas; re-check service_quotas"
    )


# ----------------------------------------------------------------------------------------------- code_connections
def test_moto_has_no_codeconnections_backend() -> None:
    """The gap code_connections closes: no moto module or URL pattern for either connections API."""
    from moto import backend_index, backends

    modules = set(original_attribute(backends, "list_of_moto_modules")())
    for service in ("codeconnections", "codestarconnections", "codestar_connections"):
        assert service not in modules, f"moto now has {service}; code_connections may be redundant"
    assert not any("connections" in name for name, _ in backend_index.backend_url_patterns)


@pytest.mark.parametrize("service", code_connections.SERVICES)
def test_botocore_speaks_both_connections_apis_in_json(service: str) -> None:
    """code_connections answers in JSON 1.0: botocore must resolve that protocol for both APIs (CodeConnections'
    model also lists Smithy RPC v2 CBOR; botocore's priority order picks JSON)."""
    model = botocore.session.get_session().get_service_model(service)
    assert model.resolved_protocol == "json", (
        f"botocore now speaks {service} in {model.resolved_protocol}; teach code_connections that protocol"
    )


@pytest.mark.parametrize("service", code_connections.SERVICES)
def test_the_adapter_s_answers_parse_as_a_boto3_client_parses_them(service: str) -> None:
    """What the adapter encodes is what a boto3 client reads: a GetConnection answer and an error, and the
    operation and body of the request botocore sends."""
    model = botocore.session.get_session().get_service_model(service)
    operation = model.operation_model("GetConnection")
    output_shape: Any = operation.output_shape
    parser = create_parser(model.resolved_protocol)
    protocol = code_connections._Protocol(service)
    arn = f"arn:aws:{service}:us-east-1:123456789012:connection/x"
    connection = {"ConnectionName": "c", "ConnectionArn": arn, "ProviderType": "GitHub", "ConnectionStatus": "PENDING"}

    request = create_serializer(model.resolved_protocol).serialize_to_request({"ConnectionArn": arn}, operation)
    body, headers = protocol.encode({"Connection": connection})
    parsed = parser.parse({"status_code": 200, "headers": dict(headers), "body": body}, output_shape)
    error_body, error_headers = protocol.error("ResourceNotFoundException", "gone")
    error = parser.parse({"status_code": 400, "headers": dict(error_headers), "body": error_body}, output_shape)

    assert protocol.operation({"HTTP_X_AMZ_TARGET": request["headers"]["X-Amz-Target"]}) == "GetConnection"
    assert protocol.decode(request["body"]) == {"ConnectionArn": arn}
    assert parsed["Connection"] == connection
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["Error"]["Message"] == "gone"


def test_signing_service_is_read_from_the_credential_scope() -> None:
    """Given a SigV4 Authorization header, the adapter finds the service in its credential scope, as moto's own
    dispatcher does (infer_service_region_host), and nothing in an unsigned request."""
    environ = {
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/codeconnections/aws4_request, "
        "SignedHeaders=host, Signature=abc"
    }
    assert code_connections.signing_service(environ) == "codeconnections"
    assert code_connections.signing_service({}) is None


# ----------------------------------------------------------------------------------------------- cloudformation_stacks
def test_moto_lists_the_resources_register_puts_in_a_stack_s_resource_map() -> None:
    """register creates the stack through moto's CreateStack, then fills its resource map: DescribeStacks and
    ListStackResources answer the parameters, outputs and resources as AWS would list them."""
    resource = SimpleNamespace(resource_type="AWS::S3::Bucket", ref="my-data-bucket")
    stack: Any = SimpleNamespace(
        name="local",
        parameters={"TrainingInstanceType": "ml.m5.large", "Empty": None},
        outputs={"DataBucketName": "my-data-bucket"},
        resources={"DataBucket": resource},
    )
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation_stacks.register(stack, cloudformation, ACCOUNT, REGION)

        described = cloudformation.describe_stacks(StackName="local")["Stacks"][0]
        listed = cloudformation.list_stack_resources(StackName="local")["StackResourceSummaries"]
        described_resources = cloudformation.describe_stack_resources(StackName="local")["StackResources"]

    assert described["StackStatus"] == "CREATE_COMPLETE"
    parameters = {item["ParameterKey"]: item["ParameterValue"] for item in described["Parameters"]}
    assert parameters == {"TrainingInstanceType": "ml.m5.large", "Empty": ""}
    assert described["Outputs"][0]["OutputValue"] == "my-data-bucket"
    assert [(item["LogicalResourceId"], item["ResourceType"], item["PhysicalResourceId"]) for item in listed] == [
        ("DataBucket", "AWS::S3::Bucket", "my-data-bucket")
    ]
    assert described_resources[0]["PhysicalResourceId"] == "my-data-bucket"
    assert json.loads(json.dumps(parameters))  # plain strings only

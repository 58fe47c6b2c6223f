"""`sagepipe doctor`: what would make `sam deploy` or a first run fail, said before it does.

Each check is a small function that asks AWS one question and returns a `CheckResult`: ok, problem (with the
fix), or could not check (with the reason: a denied call, a missing quota, an unknown instance type). Nothing
here changes anything in the account. The checks use boto3's usual configuration (AWS_PROFILE, AWS_DEFAULT_REGION,
AWS_ENDPOINT_URL), so they run against `sagepipe local up` as they do against AWS.

Which configuration is checked: template.yaml's parameter defaults, then samconfig.toml's `parameter_overrides`
of the chosen environment, then, when the stack is deployed, its parameters (CloudFormation DescribeStacks),
then `--param` overrides, in that order.
"""

from __future__ import annotations

import importlib.util
import shlex
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

from sagepipe.template import LAMBDA_UNRESERVED_MINIMUM, PROJECT_ROOT, TemplateError, load_template, parameter_values

Status = Literal["ok", "problem", "could not check"]
OK: Final = "ok"
PROBLEM: Final = "problem"
UNCHECKED: Final = "could not check"

ClientFactory = Callable[[str, str | None], Any]
"""(service name, region or None for the session's) -> a boto3 client."""

LAMBDA_CONCURRENCY_QUOTA_CODE: Final = "L-B99A9384"
"""Lambda "Concurrent executions" in Service Quotas (service code `lambda`). Its default is 1,000, and new
accounts start lower (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html)."""

SAGEMAKER_TRAINING_QUOTA: Final = "{instance_type} for training job usage"
"""The name of SageMaker's per-instance-type training quota (Service Quotas service code `sagemaker`), as
SageMaker's ResourceLimitExceeded message names it ("The account-level service limit 'ml.m5.large for training
job usage' is 0 Instances"). Its quota code differs per type, so it is found by name, never hard-coded."""

CODEBUILD_BUILDS_QUOTA: Final = "Concurrently running builds for {environment} environment"
"""CodeBuild's per-environment concurrency quota (service code `codebuild`), e.g. "Concurrently running builds
for Linux/Small environment" (L-9D07B6EF); https://docs.aws.amazon.com/codebuild/latest/userguide/limits.html."""

CODEBUILD_PLATFORMS: Final[Mapping[str, str]] = {
    "LINUX_CONTAINER": "Linux",
    "ARM_CONTAINER": "ARM",
    "LINUX_GPU_CONTAINER": "Linux GPU",
    "WINDOWS_SERVER_2019_CONTAINER": "Windows Server 2019",
}
CODEBUILD_SIZES: Final[Mapping[str, str]] = {
    "BUILD_GENERAL1_SMALL": "Small",
    "BUILD_GENERAL1_MEDIUM": "Medium",
    "BUILD_GENERAL1_LARGE": "Large",
    "BUILD_GENERAL1_XLARGE": "XLarge",
    "BUILD_GENERAL1_2XLARGE": "2XLarge",
}
"""The environment part of the quota's name, from the project's Environment Type and ComputeType
(https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-compute-types.html)."""

TRAINING_INSTANCES_PER_RUN: Final = 1
"""A run trains on one instance (NormaliseTrigger's training_instance_count is fixed at 1)."""

DENIED_CODES: Final = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
)
"""How IAM denials are named: AccessDeniedException (JSON services: Service Quotas, Lambda, DynamoDB, Step
Functions, CodeConnections), AccessDenied (query services: STS, CloudFormation; S3), UnauthorizedOperation (EC2),
AuthorizationError (SNS)."""

STACK_NOT_FOUND_MESSAGE: Final = "does not exist"
"""CloudFormation answers DescribeStacks for an unknown stack with a ValidationError "Stack with id NAME does not
exist"."""

PIPELINE_KEY: Final = "PipelineKey"
STORAGE_RULE_PATH: Final = Path("functions") / "common" / "instance_storage.py"


# ------------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class CheckResult:
    """One line of the doctor's report."""

    check: str
    status: Status
    detail: str
    fix: str | None = None

    def line(self) -> str:
        fix = f". Fix: {self.fix}" if self.fix and self.status != OK else ""
        return f"{self.status:<15}  {self.check}: {self.detail}{fix}"


@dataclass
class Report:
    stack_name: str
    region: str | None
    parameters: dict[str, str]
    parameters_from: list[str]
    results: list[CheckResult] = field(default_factory=list)

    @property
    def problems(self) -> list[CheckResult]:
        return [result for result in self.results if result.status == PROBLEM]

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack_name,
            "region": self.region,
            "parameters": self.parameters,
            "parameters_from": self.parameters_from,
            "problems": len(self.problems),
            "checks": [asdict(result) for result in self.results],
        }


class DoctorUsageError(ValueError):
    """The command line or the project's configuration files are wrong (exit 2, not a check result)."""


# ------------------------------------------------------------------------------------------ AWS errors
def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "")) or "Unknown"


def is_denied(error: ClientError) -> bool:
    """An IAM denial, by its error name or, when the body names none that botocore could parse, by HTTP 403."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(error) in DENIED_CODES or status == 403


def unchecked(check: str, action: str, error: Exception, fix: str | None = None) -> CheckResult:
    """'could not check' for a call that failed for a reason other than what the check looks for."""
    if isinstance(error, ClientError):
        verb = "was denied" if is_denied(error) else "failed"
        return CheckResult(check, UNCHECKED, f"{action} {verb} ({error_code(error)})", fix or _allow(action, error))
    return CheckResult(check, UNCHECKED, f"{action} failed ({type(error).__name__}: {error})", fix)


def _allow(action: str, error: ClientError) -> str | None:
    return f"allow {action} to the identity running sagepipe doctor" if is_denied(error) else None


# ------------------------------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class SamConfig:
    stack_name: str | None
    parameter_overrides: dict[str, str]


def read_samconfig(path: Path, config_env: str) -> SamConfig:
    """The stack name and parameter overrides `sam deploy --config-env ENV` would use.

    `sam deploy` reads `[ENV.deploy.parameters]` and then `[ENV.global.parameters]` for what the first lacks; a
    `parameter_overrides` is a list of "Key=Value" strings or one string of them separated by spaces (quoted
    values allowed).
    """
    if not path.is_file():
        return SamConfig(None, {})
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise DoctorUsageError(f"{path} is not valid TOML: {error}") from error
    environment = document.get(config_env)
    if not isinstance(environment, dict):
        raise DoctorUsageError(f"{path} has no [{config_env}] environment")
    merged: dict[str, Any] = {}
    for command in ("global", "deploy"):
        merged |= environment.get(command, {}).get("parameters", {})
    overrides = merged.get("parameter_overrides", [])
    items = shlex.split(overrides) if isinstance(overrides, str) else [str(item) for item in overrides]
    parsed: dict[str, str] = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator:
            raise DoctorUsageError(f"{path} [{config_env}] parameter_overrides: {item!r} is not Key=Value")
        parsed[name] = value
    stack_name = merged.get("stack_name")
    return SamConfig(str(stack_name) if stack_name else None, parsed)


@dataclass(frozen=True)
class DeployedStack:
    name: str
    status: str
    parameters: dict[str, str]
    resources: dict[str, tuple[str, str]]
    """Logical id -> (resource type, physical id)."""

    def physical_id(self, logical_id: str) -> str | None:
        found = self.resources.get(logical_id)
        return found[1] if found else None

    def of_type(self, resource_type: str) -> dict[str, str]:
        return {logical: physical for logical, (kind, physical) in self.resources.items() if kind == resource_type}


def describe_stack(cloudformation: Any, name: str) -> DeployedStack | None:
    """The deployed stack, or None when CloudFormation has no stack of that name."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if error_code(error) == "ValidationError" and STACK_NOT_FOUND_MESSAGE in str(error):
            return None
        raise
    stack = stacks[0]
    resources: dict[str, tuple[str, str]] = {}
    # ListStackResources, not DescribeStackResources: the latter returns at most 100 resources.
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=name):
        for summary in page["StackResourceSummaries"]:
            resources[summary["LogicalResourceId"]] = (
                summary["ResourceType"],
                summary.get("PhysicalResourceId", ""),
            )
    parameters = {item["ParameterKey"]: item.get("ParameterValue", "") for item in stack.get("Parameters", [])}
    return DeployedStack(name, stack["StackStatus"], parameters, resources)


# ------------------------------------------------------------------------------------------ the storage rule
def load_storage_rule(project_root: Path = PROJECT_ROOT) -> ModuleType:
    """functions/common/instance_storage.py, the rule the NormaliseTrigger function applies, loaded by path.

    It is deployed as Lambda code (functions/ is the functions' code root, not a package of the sagepipe
    distribution), and `sagepipe doctor` already works on a project checkout (it reads template.yaml there), so
    it loads the same file from the same root rather than keeping a copy that could drift. The module has no
    dependencies and is loaded under a private name, so it cannot shadow the functions' own `common` package.
    """
    path = project_root / STORAGE_RULE_PATH
    spec = importlib.util.spec_from_file_location("_sagepipe_doctor_instance_storage", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise DoctorUsageError(f"{path} is missing: run sagepipe doctor from a sagepipe project checkout")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------ the checks
@dataclass
class Account:
    """What the checks ask AWS through: one client per service and region, created on first use."""

    clients: ClientFactory
    region: str | None = None
    _cache: dict[tuple[str, str | None], Any] = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region)
        if key not in self._cache:
            self._cache[key] = self.clients(service, region)
        return self._cache[key]


def check_credentials(account: Account) -> CheckResult:
    """A region, credentials, and an identity STS accepts."""
    check = "Credentials"
    # boto3 reads the region from AWS_DEFAULT_REGION or the profile, not from AWS_REGION.
    region_fix = "set AWS_DEFAULT_REGION, or run `aws configure` and set a default region"
    if not account.region:
        return CheckResult(check, PROBLEM, "no region configured", region_fix)
    try:
        identity = account.client("sts").get_caller_identity()
    except NoRegionError:
        return CheckResult(check, PROBLEM, "no region configured", region_fix)
    except (NoCredentialsError, EndpointConnectionError, ClientError, BotoCoreError) as error:
        return _credentials_problem(check, error)
    return CheckResult(check, OK, f"account {identity['Account']} as {identity['Arn']}, region {account.region}")


def _credentials_problem(check: str, error: Exception) -> CheckResult:
    if isinstance(error, NoCredentialsError):
        return CheckResult(
            check,
            PROBLEM,
            "no AWS credentials found",
            "run `aws configure` (or `aws sso login`), or set AWS_PROFILE; for `sagepipe local up`, export the "
            "variables it prints",
        )
    if isinstance(error, EndpointConnectionError):
        return CheckResult(check, PROBLEM, f"cannot reach {error.kwargs.get('endpoint_url')}", _endpoint_fix())
    if isinstance(error, ClientError):
        return CheckResult(
            check,
            PROBLEM,
            f"STS refused the credentials ({error_code(error)})",
            "refresh them (`aws sso login`, new access keys), or pick another AWS_PROFILE",
        )
    return CheckResult(check, PROBLEM, f"{type(error).__name__}: {error}", "run `aws configure`")


def _endpoint_fix() -> str:
    return "check the network, or AWS_ENDPOINT_URL (for `sagepipe local up`, is it still running?)"


def check_stack(account: Account, name: str, *, deployed: DeployedStack | None, error: Exception | None) -> CheckResult:
    check = f"Stack {name}"
    if error is not None:
        return unchecked(
            check,
            "cloudformation:DescribeStacks",
            error,
            "allow cloudformation:DescribeStacks and ListStackResources; meanwhile the template's configuration "
            "was checked, and no deployed resource",
        )
    if deployed is None:
        return CheckResult(check, OK, "not deployed yet; the deployed resources are checked once it is")
    status = deployed.status
    if status.endswith("_IN_PROGRESS"):
        return CheckResult(check, UNCHECKED, f"{status}; run sagepipe doctor again when it has finished")
    if status == "ROLLBACK_COMPLETE" or status.endswith("_FAILED"):
        return CheckResult(
            check,
            PROBLEM,
            f"{status}",
            "read the first failed event (`aws cloudformation describe-stack-events`); a stack in "
            "ROLLBACK_COMPLETE can only be deleted: `sam delete`, then `sam deploy` again",
        )
    return CheckResult(check, OK, f"{status}; checking its deployed parameters and resources")


def check_lambda_concurrency(
    account: Account, reserved: Mapping[str, int], deployed: DeployedStack | None
) -> CheckResult:
    """The account keeps 100 unreserved concurrent executions after the stack's reservations.

    GetAccountSettings' UnreservedConcurrentExecutions already subtracts every reservation in the account,
    including those of this stack's deployed functions; a redeploy releases those and makes the new ones, so
    they are added back before the new reservations are subtracted.
    """
    check = "Lambda concurrency"
    lambda_client = account.client("lambda")
    try:
        limits = lambda_client.get_account_settings()["AccountLimit"]
    except ClientError as error:
        return unchecked(check, "lambda:GetAccountSettings", error)
    total = int(limits["ConcurrentExecutions"])
    unreserved_now = int(limits["UnreservedConcurrentExecutions"])
    held_by_stack = 0
    if deployed is not None:
        for function_name in deployed.of_type("AWS::Lambda::Function").values():
            try:
                answer = lambda_client.get_function_concurrency(FunctionName=function_name)
            except ClientError as error:
                return unchecked(check, "lambda:GetFunctionConcurrency", error)
            held_by_stack += int(answer.get("ReservedConcurrentExecutions") or 0)
    wanted = sum(reserved.values())
    left = unreserved_now + held_by_stack - wanted
    what = f"{total} in the account, the stack reserves {wanted}"
    if reserved:
        what += f" ({', '.join(f'{name} {count}' for name, count in sorted(reserved.items()))})"
    if left >= LAMBDA_UNRESERVED_MINIMUM:
        return CheckResult(check, OK, f"{what}; {left} stay unreserved (Lambda needs {LAMBDA_UNRESERVED_MINIMUM})")
    needed = total + (LAMBDA_UNRESERVED_MINIMUM - left)
    parameters = ", ".join(f"{name.removesuffix('Function')}ReservedConcurrency" for name in sorted(reserved))
    fix = (
        f"request an increase of Lambda 'Concurrent executions' (Service Quotas, {LAMBDA_CONCURRENCY_QUOTA_CODE}) "
        f"to at least {needed}"
    )
    fix += f", or leave {parameters} empty" if parameters else ""
    return CheckResult(
        check,
        PROBLEM,
        f"{what}; only {left} would stay unreserved and Lambda refuses a reservation below "
        f"{LAMBDA_UNRESERVED_MINIMUM}, so the deploy would fail",
        fix,
    )


@dataclass(frozen=True)
class Quota:
    code: str
    name: str
    value: float
    applied: bool
    """False when Service Quotas has only the AWS default for this account."""

    def described(self) -> str:
        return f"'{self.name}', {self.code}{'' if self.applied else ', AWS default'}"


class QuotaNotFound(LookupError):
    pass


def find_quota(service_quotas: Any, service_code: str, name: str) -> Quota:
    """A quota by its name: the account's applied value (ListServiceQuotas), else the AWS default
    (ListAWSDefaultServiceQuotas).

    Found by name because the codes differ per instance type and environment. ListServiceQuotas leaves out
    quotas with no applied value ("If the applied quota value is not available for a quota, the quota is not
    retrieved", botocore's service-quotas model), and then the default is what applies. Raises QuotaNotFound.
    """
    for operation, applied in (("list_service_quotas", True), ("list_aws_default_service_quotas", False)):
        for page in service_quotas.get_paginator(operation).paginate(ServiceCode=service_code):
            for quota in page.get("Quotas", []):
                if quota.get("QuotaName") == name:
                    return Quota(str(quota["QuotaCode"]), name, float(quota["Value"]), applied)
    raise QuotaNotFound(name)


def _count(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _increase(service_code: str, quota: Quota, at_least: int) -> str:
    return (
        f"request an increase to at least {at_least} (Service Quotas console, or `aws service-quotas "
        f"request-service-quota-increase --service-code {service_code} --quota-code {quota.code} "
        f"--desired-value {at_least}`)"
    )


def check_quota(
    account: Account, *, check: str, service_code: str, name: str, needed: int, what: Callable[[Quota], str]
) -> CheckResult:
    try:
        quota = find_quota(account.client("service-quotas"), service_code, name)
    except QuotaNotFound:
        return CheckResult(check, UNCHECKED, f"Service Quotas has no {service_code} quota named '{name}' here")
    except ClientError as error:
        operation = error.operation_name or "ListServiceQuotas"
        return unchecked(check, f"servicequotas:{operation}", error)
    if quota.value >= needed:
        return CheckResult(check, OK, f"{what(quota)} ({quota.described()})")
    return CheckResult(check, PROBLEM, f"{what(quota)} ({quota.described()})", _increase(service_code, quota, needed))


def codebuild_environment(template: Mapping[str, Any]) -> str:
    """The quota's environment name ("Linux/Small") of the template's CodeBuild project."""
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::CodeBuild::Project":
            environment = resource["Properties"]["Environment"]
            platform = CODEBUILD_PLATFORMS.get(environment["Type"], environment["Type"])
            size = CODEBUILD_SIZES.get(environment["ComputeType"], environment["ComputeType"])
            return f"{platform}/{size}"
    raise TemplateError("template.yaml has no AWS::CodeBuild::Project")


def check_codebuild_quota(account: Account, environment: str) -> CheckResult:
    def what(quota: Quota) -> str:
        builds = "build" if quota.value == 1 else "builds"
        return f"{_count(quota.value)} concurrent {environment} {builds}"

    check = "CodeBuild quota"
    result = check_quota(
        account,
        check=check,
        service_code="codebuild",
        name=CODEBUILD_BUILDS_QUOTA.format(environment=environment),
        needed=1,
        what=what,
    )
    if result.status == PROBLEM:
        # Without one build slot, BuildImage's builds queue and then time out.
        return CheckResult(check, PROBLEM, f"{result.detail}: every image build would queue, then fail", result.fix)
    return result


def check_sagemaker_quota(account: Account, instance_type: str) -> CheckResult:
    def what(quota: Quota) -> str:
        instances = "instance" if quota.value == 1 else "instances"
        return f"{_count(quota.value)} {instance_type} {instances} for training jobs"

    check = "SageMaker quota"
    result = check_quota(
        account,
        check=check,
        service_code="sagemaker",
        name=SAGEMAKER_TRAINING_QUOTA.format(instance_type=instance_type),
        needed=TRAINING_INSTANCES_PER_RUN,
        what=what,
    )
    if result.status == PROBLEM:
        return CheckResult(check, PROBLEM, f"{result.detail}: Train would fail with ResourceLimitExceeded", result.fix)
    return result


def _connections_service(arn: str) -> str:
    """The API a connection ARN belongs to: IAM and the API match the ARN's service prefix
    (https://docs.aws.amazon.com/dtconsole/latest/userguide/rename.html)."""
    return "codestar-connections" if arn.split(":")[2] == "codestar-connections" else "codeconnections"


def check_connection(account: Account, connection_arn: str, repository: str) -> CheckResult:
    check = "Code connection"
    if not connection_arn:
        return CheckResult(check, OK, f"none needed: builds clone CodeCommit repository {repository}")
    service = _connections_service(connection_arn)
    region = connection_arn.split(":")[3] or None
    try:
        connection = account.client(service, region).get_connection(ConnectionArn=connection_arn)["Connection"]
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return CheckResult(
                check,
                PROBLEM,
                f"{connection_arn} does not exist",
                "create a GitHub connection (Developer Tools → Settings → Connections) and pass its ARN as "
                "GitHubConnectionArn",
            )
        return unchecked(check, f"{service}:GetConnection", error)
    status = connection.get("ConnectionStatus")
    name = connection.get("ConnectionName", connection_arn)
    provider = connection.get("ProviderType", "")
    if status == "AVAILABLE":
        return CheckResult(check, OK, f"{name} ({provider}) is AVAILABLE")
    if status == "PENDING":
        return CheckResult(
            check,
            PROBLEM,
            f"{name} ({provider}) is PENDING: builds cannot clone {repository} until its handshake is done",
            "in the console, Developer Tools → Settings → Connections → select it → Update pending connection",
        )
    return CheckResult(
        check,
        PROBLEM,
        f"{name} ({provider}) is {status}: builds cannot clone {repository}",
        "check the app's installation on GitHub (Developer Tools → Settings → Connections), or create a new "
        "connection and pass its ARN as GitHubConnectionArn",
    )


def check_instance_storage(account: Account, instance_type: str, rule: ModuleType) -> CheckResult:
    """The pipeline's rule for VolumeKmsKeyId agrees with EC2's InstanceStorageSupported for the type.

    SageMaker refuses VolumeKmsKeyId for an instance type with local storage (botocore's SageMaker model,
    ResourceConfig.VolumeKmsKeyId), and EC2 DescribeInstanceTypes knows which types have it (the same
    hardware without the `ml.` prefix).
    """
    check = "Instance storage"
    try:
        pipeline_says = bool(rule.has_local_storage(instance_type))
    except ValueError as error:
        return CheckResult(check, PROBLEM, str(error), "set TrainingInstanceType to an ml.<family>.<size> type")
    ec2_type = instance_type.removeprefix("ml.")
    try:
        answer = account.client("ec2").describe_instance_types(InstanceTypes=[ec2_type])["InstanceTypes"]
    except ClientError as error:
        if error_code(error) in {"InvalidInstanceType", "InvalidParameterValue"}:
            return CheckResult(check, UNCHECKED, f"EC2 does not know {ec2_type} in this region")
        return unchecked(check, "ec2:DescribeInstanceTypes", error)
    if not answer:
        return CheckResult(check, UNCHECKED, f"EC2 does not know {ec2_type} in this region")
    ec2_says = bool(answer[0].get("InstanceStorageSupported"))

    def storage(local: bool) -> str:
        return "local NVMe storage" if local else "no local storage"

    if pipeline_says == ec2_says:
        volume_key = "sends no VolumeKmsKeyId" if ec2_says else "encrypts the volume with the pipeline key"
        return CheckResult(check, OK, f"{instance_type} has {storage(ec2_says)} (EC2 agrees); Train {volume_key}")
    consequence = (
        "Train would send VolumeKmsKeyId, which SageMaker refuses for this type"
        if ec2_says
        else "Train would leave the volume without the pipeline key"
    )
    return CheckResult(
        check,
        PROBLEM,
        f"EC2 says {instance_type} has {storage(ec2_says)}, the pipeline's rule says {storage(pipeline_says)}: "
        f"{consequence}",
        f"{'add' if ec2_says else 'remove'} its family in LOCAL_STORAGE_FAMILIES "
        f"({STORAGE_RULE_PATH.as_posix()}) and deploy again",
    )


# ------------------------------------------------------------------------------------------ deployed resources
@dataclass
class KeyResolver:
    """Key ids, aliases and ARNs to key ARNs (KMS DescribeKey), each asked once."""

    kms: Any
    _arns: dict[str, str | None] = field(default_factory=dict)

    def arn(self, key: str) -> str | None:
        if key not in self._arns:
            try:
                self._arns[key] = str(self.kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"])
            except ClientError:
                self._arns[key] = None
        return self._arns[key]


def check_pipeline_key(account: Account, stack: DeployedStack) -> tuple[CheckResult, str | None]:
    check = "Pipeline key"
    key_id = stack.physical_id(PIPELINE_KEY)
    if not key_id:
        return CheckResult(check, PROBLEM, f"the stack has no {PIPELINE_KEY}", "deploy the stack again"), None
    try:
        metadata = account.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]
    except ClientError as error:
        if error_code(error) == "NotFoundException":
            return CheckResult(check, PROBLEM, f"{key_id} does not exist", "deploy the stack again"), None
        return unchecked(check, "kms:DescribeKey", error), None
    state = metadata.get("KeyState", "Enabled")
    if state != "Enabled":
        fix = (
            f"`aws kms cancel-key-deletion --key-id {key_id}`, then `aws kms enable-key --key-id {key_id}`"
            if state == "PendingDeletion"
            else f"`aws kms enable-key --key-id {key_id}`"
        )
        return CheckResult(check, PROBLEM, f"{metadata['Arn']} is {state}: nothing can be encrypted", fix), None
    return CheckResult(check, OK, f"{metadata['Arn']} is Enabled"), str(metadata["Arn"])


def declared_bucket_encryption(template: Mapping[str, Any]) -> dict[str, str]:
    """Each bucket's declared default encryption: "pipeline key" (aws:kms with PipelineKey) or the algorithm."""
    declared: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::S3::Bucket":
            continue
        rules = resource.get("Properties", {}).get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        default = rules[0].get("ServerSideEncryptionByDefault", {}) if rules else {}
        algorithm = str(default.get("SSEAlgorithm", "AES256"))
        uses_pipeline_key = PIPELINE_KEY in str(default.get("KMSMasterKeyID", ""))
        declared[logical_id] = "pipeline key" if algorithm.startswith("aws:kms") and uses_pipeline_key else algorithm
    return declared


def _missing(check: str, logical_id: str) -> CheckResult:
    return CheckResult(
        check, PROBLEM, f"{logical_id} is not in the deployed stack", "deploy the stack again (`sam deploy`)"
    )


def _bucket_encryption(account: Account, bucket: str) -> dict[str, Any] | None:
    """The bucket's default encryption rule ({} when it has none), or None when the bucket does not exist."""
    try:
        rules = account.client("s3").get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as error:
        if error_code(error) == "NoSuchBucket":
            return None
        if error_code(error) == "ServerSideEncryptionConfigurationNotFoundError":
            return {}
        raise
    return dict(rules[0].get("ApplyServerSideEncryptionByDefault", {})) if rules else {}


def check_bucket(
    account: Account, logical_id: str, bucket: str | None, *, declared: str, keys: KeyResolver, key_arn: str
) -> CheckResult:
    check = f"Bucket {logical_id}"
    if not bucket:
        return _missing(check, logical_id)
    try:
        default = _bucket_encryption(account, bucket)
    except ClientError as error:
        return unchecked(check, "s3:GetEncryptionConfiguration", error)
    if default is None:
        return CheckResult(check, PROBLEM, f"{bucket} does not exist", "deploy the stack again, or restore the bucket")
    algorithm = str(default.get("SSEAlgorithm", "none"))
    key = default.get("KMSMasterKeyID")
    found = f"{algorithm} with {key}" if key else algorithm
    if declared == "pipeline key":
        if algorithm.startswith("aws:kms") and key and keys.arn(str(key)) == key_arn:
            return CheckResult(check, OK, f"{bucket} exists, {algorithm} with the pipeline key")
        problem = f"{bucket} default encryption is {found}, not aws:kms with the pipeline key"
    elif algorithm == declared:
        return CheckResult(check, OK, f"{bucket} exists, {algorithm} as declared (S3 access logs need SSE-S3)")
    else:
        problem = f"{bucket} default encryption is {found}, template.yaml declares {declared}"
    return CheckResult(
        check, PROBLEM, problem, "deploy the stack again to restore its BucketEncryption (it applies to new objects)"
    )


def check_table(account: Account, logical_id: str, table: str | None, key_arn: str) -> CheckResult:
    check = f"Table {logical_id}"
    if not table:
        return _missing(check, logical_id)
    try:
        description = account.client("dynamodb").describe_table(TableName=table)["Table"]
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return CheckResult(check, PROBLEM, f"{table} does not exist", "deploy the stack again")
        return unchecked(check, "dynamodb:DescribeTable", error)
    sse = description.get("SSEDescription", {})
    if sse.get("Status") == "ENABLED" and sse.get("KMSMasterKeyArn") == key_arn:
        return CheckResult(check, OK, f"{table} exists, encrypted with the pipeline key")
    found = f"{sse.get('SSEType', 'an AWS owned key')} {sse.get('KMSMasterKeyArn', '')}".strip()
    return CheckResult(
        check, PROBLEM, f"{table} is encrypted with {found}, not the pipeline key", "deploy the stack again"
    )


def check_topic(account: Account, logical_id: str, topic: str | None, keys: KeyResolver, key_arn: str) -> CheckResult:
    check = f"Topic {logical_id}"
    if not topic:
        return _missing(check, logical_id)
    try:
        attributes = account.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    except ClientError as error:
        if error_code(error) == "NotFound":
            return CheckResult(check, PROBLEM, f"{topic} does not exist", "deploy the stack again")
        return unchecked(check, "sns:GetTopicAttributes", error)
    key = attributes.get("KmsMasterKeyId")
    name = topic.rsplit(":", 1)[-1]
    if key and keys.arn(key) == key_arn:
        return CheckResult(check, OK, f"{name} exists, encrypted with the pipeline key")
    found = key or "no key (unencrypted)"
    return CheckResult(
        check, PROBLEM, f"{name} is encrypted with {found}, not the pipeline key", "deploy the stack again"
    )


def check_state_machine(account: Account, logical_id: str, arn: str | None, key_arn: str) -> CheckResult:
    check = f"State machine {logical_id}"
    if not arn:
        return _missing(check, logical_id)
    try:
        machine = account.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    except ClientError as error:
        if error_code(error) == "StateMachineDoesNotExist":
            return CheckResult(check, PROBLEM, f"{arn} does not exist", "deploy the stack again")
        return unchecked(check, "states:DescribeStateMachine", error)
    name = machine.get("name", arn.rsplit(":", 1)[-1])
    status = machine.get("status", "ACTIVE")
    if status != "ACTIVE":
        return CheckResult(check, PROBLEM, f"{name} is {status}", "deploy the stack again")
    encryption = machine.get("encryptionConfiguration", {})
    if encryption.get("type") == "CUSTOMER_MANAGED_KMS_KEY" and encryption.get("kmsKeyId") == key_arn:
        return CheckResult(check, OK, f"{name} is ACTIVE, encrypted with the pipeline key")
    # SAM cannot set EncryptionConfiguration yet (README, Security: known gap): an AWS-owned key is expected.
    return CheckResult(check, OK, f"{name} is ACTIVE (execution history under an AWS owned key: a known gap)")


SAM_TYPES: Final[Mapping[str, str]] = {
    "AWS::S3::Bucket": "AWS::S3::Bucket",
    "AWS::DynamoDB::Table": "AWS::DynamoDB::Table",
    "AWS::SNS::Topic": "AWS::SNS::Topic",
    "AWS::Serverless::StateMachine": "AWS::StepFunctions::StateMachine",
}
"""The template's resources whose deployed counterparts are checked, and the type CloudFormation lists them as."""


def check_deployed_resources(
    account: Account, template: Mapping[str, Any], stack: DeployedStack
) -> Iterator[CheckResult]:
    key_result, key_arn = check_pipeline_key(account, stack)
    yield key_result
    declared = {
        logical_id: resource["Type"]
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") in SAM_TYPES
    }
    if key_arn is None:
        for logical_id, sam_type in declared.items():
            kind = SAM_TYPES[sam_type].rsplit("::", 1)[-1]
            yield CheckResult(f"{kind} {logical_id}", UNCHECKED, "its encryption needs the pipeline key (see above)")
        return
    keys = KeyResolver(account.client("kms"))
    buckets = declared_bucket_encryption(template)
    for logical_id, sam_type in declared.items():
        physical = stack.physical_id(logical_id)
        if sam_type == "AWS::S3::Bucket":
            yield check_bucket(account, logical_id, physical, declared=buckets[logical_id], keys=keys, key_arn=key_arn)
        elif sam_type == "AWS::DynamoDB::Table":
            yield check_table(account, logical_id, physical, key_arn)
        elif sam_type == "AWS::SNS::Topic":
            yield check_topic(account, logical_id, physical, keys, key_arn)
        else:
            yield check_state_machine(account, logical_id, physical, key_arn)


# ------------------------------------------------------------------------------------------ the run
PRE_DEPLOY_CHECKS: Final = (
    "Lambda concurrency",
    "CodeBuild quota",
    "SageMaker quota",
    "Code connection",
    "Instance storage",
)


def run(
    clients: ClientFactory,
    region: str | None,
    *,
    stack_name: str | None = None,
    config_env: str = "default",
    overrides: Mapping[str, str] | None = None,
    project_root: Path = PROJECT_ROOT,
) -> Report:
    """Every check, in the order a deploy meets them. Raises DoctorUsageError for bad input (exit 2)."""
    template = load_template(project_root / "template.yaml")
    samconfig = read_samconfig(project_root / "samconfig.toml", config_env)
    name = stack_name or samconfig.stack_name
    if not name:
        raise DoctorUsageError(f"no stack name: pass --stack, or set stack_name in samconfig.toml [{config_env}]")
    rule = load_storage_rule(project_root)
    account = Account(clients, region)
    parameters_from = ["template.yaml defaults"]
    chosen: dict[str, str] = {}
    if samconfig.parameter_overrides:
        chosen |= samconfig.parameter_overrides
        parameters_from.append(f"samconfig.toml [{config_env}]")
    try:
        resolved = parameter_values(template, chosen | dict(overrides or {}))
    except TemplateError as error:
        raise DoctorUsageError(str(error)) from error
    report = Report(name, region, {}, parameters_from)

    credentials = check_credentials(account)
    report.results.append(credentials)
    if credentials.status != OK:
        report.parameters = {key: str(value) for key, value in resolved.items()}
        report.results += [
            CheckResult(check, UNCHECKED, "needs credentials and a region (see above)")
            for check in (f"Stack {name}", *PRE_DEPLOY_CHECKS)
        ]
        return report

    deployed: DeployedStack | None = None
    stack_error: Exception | None = None
    try:
        deployed = describe_stack(account.client("cloudformation"), name)
    except ClientError as error:
        stack_error = error
    if deployed is not None:
        chosen |= {key: value for key, value in deployed.parameters.items() if key in template.get("Parameters", {})}
        parameters_from.append(f"stack {name}")
    if overrides:
        parameters_from.append("--param")
    resolved = parameter_values(template, chosen | dict(overrides or {}))
    report.parameters = {key: str(value) for key, value in resolved.items()}
    stack_result = check_stack(account, name, deployed=deployed, error=stack_error)
    report.results.append(stack_result)

    from sagepipe.template import reserved_concurrency

    instance_type = str(resolved["TrainingInstanceType"])
    reserved = reserved_concurrency(template, {key: str(value) for key, value in resolved.items()})
    report.results.append(check_lambda_concurrency(account, reserved, deployed))
    report.results.append(check_codebuild_quota(account, codebuild_environment(template)))
    report.results.append(check_sagemaker_quota(account, instance_type))
    report.results.append(
        check_connection(account, str(resolved.get("GitHubConnectionArn", "")), str(resolved["CodeRepositoryName"]))
    )
    report.results.append(check_instance_storage(account, instance_type, rule))
    # A stack that failed or is changing has no resources worth checking yet.
    if deployed is not None and stack_result.status == OK:
        report.results += list(check_deployed_resources(account, template, deployed))
    return report

"""sagepipe.doctor's checks one by one, with botocore's Stubber in place of AWS: the ok, problem and
could-not-check case of each line, the configuration it reads, and the command's exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import Stubber
from click.testing import CliRunner

from sagepipe import doctor
from sagepipe.cli import EXIT_DOCTOR_PROBLEM, EXIT_USAGE, main
from sagepipe.template import PROJECT_ROOT, load_template

REGION = "us-east-1"
CONNECTION = "arn:aws:codeconnections:eu-west-1:123456789012:connection/abc"


class Stubs:
    """Real boto3 clients (no network) with a Stubber each; the Account asks for them by service and region."""

    def __init__(self) -> None:
        self.clients: dict[tuple[str, str | None], Any] = {}
        self.stubbers: dict[tuple[str, str | None], Stubber] = {}

    def __call__(self, service: str, region: str | None) -> Any:
        return self.client(service, region)

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region)
        if key not in self.clients:
            factory: Any = boto3.client
            self.clients[key] = factory(
                service, region_name=region or REGION, aws_access_key_id="k", aws_secret_access_key="s"
            )
            self.stubbers[key] = Stubber(self.clients[key])
            self.stubbers[key].activate()
        return self.clients[key]

    def stub(self, service: str, region: str | None = None) -> Stubber:
        self.client(service, region)
        return self.stubbers[(service, region)]

    def verify(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    stubs = Stubs()
    yield stubs
    stubs.verify()


@pytest.fixture
def account(stubs: Stubs) -> doctor.Account:
    return doctor.Account(stubs, REGION)


def denied(stubber: Stubber, operation: str, code: str = "AccessDeniedException") -> None:
    stubber.add_client_error(operation, service_error_code=code, service_message="not authorized", http_status_code=400)


# ------------------------------------------------------------------------------------------ output
def test_a_line_has_the_status_the_check_the_finding_and_the_fix_only_when_not_ok() -> None:
    """Lines align on a 15-character status column; an ok line carries no fix."""
    problem = doctor.CheckResult("SageMaker quota", "problem", "0 instances", "ask for 1")
    fine = doctor.CheckResult("SageMaker quota", "ok", "1 instance", "ask for 1")

    assert problem.line() == "problem          SageMaker quota: 0 instances. Fix: ask for 1"
    assert fine.line() == "ok               SageMaker quota: 1 instance"
    assert doctor.CheckResult("x", "could not check", "y").line().startswith("could not check  x: y")


# ------------------------------------------------------------------------------------------ configuration
def test_samconfig_gives_the_stack_name_and_overrides_deploy_over_global(tmp_path: Path) -> None:
    """Given stack_name in [dev.global] and parameter_overrides (a list) in [dev.deploy], then both are read."""
    path = tmp_path / "samconfig.toml"
    path.write_text(
        'version = 0.1\n[dev.global.parameters]\nstack_name = "sp-dev"\n'
        '[dev.deploy.parameters]\nparameter_overrides = ["Environment=dev", "TrainingInstanceType=ml.g5.xlarge"]\n',
        encoding="utf-8",
    )

    config = doctor.read_samconfig(path, "dev")

    assert config.stack_name == "sp-dev"
    assert config.parameter_overrides == {"Environment": "dev", "TrainingInstanceType": "ml.g5.xlarge"}


def test_samconfig_overrides_may_be_one_quoted_string(tmp_path: Path) -> None:
    path = tmp_path / "samconfig.toml"
    path.write_text(
        '[default.deploy.parameters]\nstack_name = "a"\n'
        "parameter_overrides = 'Environment=prod NotificationEmail=\"x y\"'\n",
        encoding="utf-8",
    )

    assert doctor.read_samconfig(path, "default").parameter_overrides == {
        "Environment": "prod",
        "NotificationEmail": "x y",
    }


def test_the_project_s_samconfig_names_each_environment_s_stack() -> None:
    """The repository's samconfig.toml keeps stack_name under [ENV.global.parameters]: it is found there."""
    assert doctor.read_samconfig(PROJECT_ROOT / "samconfig.toml", "default").stack_name == "sagepipe-dev"
    prod = doctor.read_samconfig(PROJECT_ROOT / "samconfig.toml", "prod")
    assert prod.stack_name == "sagepipe-prod"
    assert prod.parameter_overrides["TrainingInstanceType"] == "ml.m5.xlarge"


def test_an_unknown_samconfig_environment_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(doctor.DoctorUsageError, match=r"no \[staging\] environment"):
        doctor.read_samconfig(PROJECT_ROOT / "samconfig.toml", "staging")


def test_the_storage_rule_is_the_functions_own_file() -> None:
    """The rule is loaded from functions/common/instance_storage.py, under a name of its own."""
    rule = doctor.load_storage_rule()

    assert rule.__name__ == "_sagepipe_doctor_instance_storage"
    assert rule.has_local_storage("ml.g5.xlarge") is True
    assert rule.has_local_storage("ml.m5.large") is False


def test_a_checkout_without_the_rule_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(doctor.DoctorUsageError, match=r"instance_storage\.py is missing"):
        doctor.load_storage_rule(tmp_path)


# ------------------------------------------------------------------------------------------ credentials
def test_credentials_ok_name_the_account_and_identity(stubs: Stubs, account: doctor.Account) -> None:
    stubs.stub("sts").add_response(
        "get_caller_identity", {"UserId": "u", "Account": "111122223333", "Arn": "arn:aws:iam::111122223333:user/me"}
    )

    result = doctor.check_credentials(account)

    assert result.status == "ok"
    assert result.detail == "account 111122223333 as arn:aws:iam::111122223333:user/me, region us-east-1"


def test_no_region_is_a_problem_that_says_how_to_set_one(stubs: Stubs) -> None:
    result = doctor.check_credentials(doctor.Account(stubs, None))

    assert result.status == "problem"
    assert result.fix is not None
    assert "AWS_DEFAULT_REGION" in result.fix


def test_missing_credentials_are_a_problem_not_a_traceback() -> None:
    class NoCredentials:
        def get_caller_identity(self) -> None:
            raise NoCredentialsError

    result = doctor.check_credentials(doctor.Account(lambda service, region: NoCredentials(), REGION))

    assert result.status == "problem"
    assert result.detail == "no AWS credentials found"
    assert result.fix is not None
    assert "aws configure" in result.fix


def test_rejected_credentials_are_a_problem(stubs: Stubs, account: doctor.Account) -> None:
    stubs.stub("sts").add_client_error("get_caller_identity", service_error_code="ExpiredToken", http_status_code=403)

    result = doctor.check_credentials(account)

    assert result.status == "problem"
    assert "ExpiredToken" in result.detail


def test_the_command_without_credentials_prints_the_problem_and_exits_3(tmp_path: Path) -> None:
    """Given no credentials anywhere (no variables, no config files, no instance metadata), when `sagepipe doctor`
    runs, then its credentials line is a problem with the fix, the other checks say why they did not run, and it
    exits 3: no traceback."""
    environment = {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_ENDPOINT_URL": None,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
        "AWS_WEB_IDENTITY_TOKEN_FILE": None,
    }

    result = CliRunner().invoke(main, ["doctor"], env=environment)

    assert result.exit_code == EXIT_DOCTOR_PROBLEM, result.output
    assert "problem          Credentials: no AWS credentials found. Fix: run `aws configure`" in result.output
    assert "could not check  Lambda concurrency: needs credentials and a region" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "arguments", [["--param", "NoSuchParameter=1"], ["--param", "missing-equals"], ["--config-env", "nope"]]
)
def test_bad_usage_exits_2_with_one_line(arguments: list[str]) -> None:
    result = CliRunner().invoke(main, ["doctor", *arguments], env={"AWS_DEFAULT_REGION": "us-east-1"})

    assert result.exit_code == EXIT_USAGE
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------------------ stack
def test_a_stack_that_rolled_back_is_a_problem_that_says_to_delete_it(account: doctor.Account) -> None:
    stack = doctor.DeployedStack("s", "ROLLBACK_COMPLETE", {}, {})

    result = doctor.check_stack(account, "s", deployed=stack, error=None)

    assert result.status == "problem"
    assert result.fix is not None
    assert "sam delete" in result.fix


def test_describe_stack_tells_a_missing_stack_from_a_denied_call(stubs: Stubs) -> None:
    """CloudFormation's ValidationError "does not exist" means not deployed; any other error is raised."""
    stubber = stubs.stub("cloudformation")
    stubber.add_client_error(
        "describe_stacks", service_error_code="ValidationError", service_message="Stack with id s does not exist"
    )
    denied(stubber, "describe_stacks", "AccessDenied")

    assert doctor.describe_stack(stubs.client("cloudformation"), "s") is None
    with pytest.raises(Exception, match="AccessDenied"):
        doctor.describe_stack(stubs.client("cloudformation"), "s")


# ------------------------------------------------------------------------------------------ Lambda concurrency
def settings(stubber: Stubber, total: int, unreserved: int) -> None:
    stubber.add_response(
        "get_account_settings",
        {"AccountLimit": {"ConcurrentExecutions": total, "UnreservedConcurrentExecutions": unreserved}},
    )


def test_lambda_concurrency_ok_before_deploy(stubs: Stubs, account: doctor.Account) -> None:
    settings(stubs.stub("lambda"), 1000, 1000)

    result = doctor.check_lambda_concurrency(account, {"GitHubWebhookFunction": 10}, None)

    assert result.status == "ok"
    assert result.detail == (
        "1000 in the account, the stack reserves 10 (GitHubWebhookFunction 10); 990 stay unreserved (Lambda needs 100)"
    )


def test_lambda_concurrency_problem_in_a_new_account(stubs: Stubs, account: doctor.Account) -> None:
    """Given 10 concurrent executions (a new account) and a reservation of 10, the deploy would fail."""
    settings(stubs.stub("lambda"), 10, 10)

    result = doctor.check_lambda_concurrency(account, {"GitHubWebhookFunction": 10}, None)

    assert result.status == "problem"
    assert result.fix is not None
    assert "to at least 110" in result.fix
    assert "leave GitHubWebhookReservedConcurrency empty" in result.fix


def test_lambda_concurrency_counts_the_deployed_stack_s_reservations_once(
    stubs: Stubs, account: doctor.Account
) -> None:
    """Given a deployed stack whose two functions hold 10 and 0, in an account of 110 with 100 unreserved, then
    keeping the reservation of 10 is ok: the redeploy releases the 10 it already holds."""
    stubber = stubs.stub("lambda")
    settings(stubber, 110, 100)
    stubber.add_response("get_function_concurrency", {"ReservedConcurrentExecutions": 10}, {"FunctionName": "hook"})
    stubber.add_response("get_function_concurrency", {}, {"FunctionName": "norm"})
    stack = doctor.DeployedStack(
        "s",
        "UPDATE_COMPLETE",
        {},
        {"GitHubWebhookFunction": ("AWS::Lambda::Function", "hook"), "Norm": ("AWS::Lambda::Function", "norm")},
    )

    result = doctor.check_lambda_concurrency(account, {"GitHubWebhookFunction": 10}, stack)

    assert result.status == "ok", result.line()
    assert "100 stay unreserved" in result.detail


def test_lambda_concurrency_denied_is_could_not_check(stubs: Stubs, account: doctor.Account) -> None:
    denied(stubs.stub("lambda"), "get_account_settings")

    result = doctor.check_lambda_concurrency(account, {}, None)

    assert result.status == "could not check"
    assert result.detail == "lambda:GetAccountSettings was denied (AccessDeniedException)"
    assert result.fix is not None
    assert "allow lambda:GetAccountSettings" in result.fix


# ------------------------------------------------------------------------------------------ quotas
def quota(name: str, code: str, value: float) -> dict[str, Any]:
    return {"QuotaName": name, "QuotaCode": code, "Value": value, "ServiceCode": "sagemaker"}


def test_a_quota_is_found_by_name_applied_value_first(stubs: Stubs, account: doctor.Account) -> None:
    stubber = stubs.stub("service-quotas")
    stubber.add_response(
        "list_service_quotas",
        {"Quotas": [quota("ml.m5.large for training job usage", "L-1", 3)]},
        {"ServiceCode": "sagemaker"},
    )

    result = doctor.check_sagemaker_quota(account, "ml.m5.large")

    assert result.status == "ok"
    assert result.detail == "3 ml.m5.large instances for training jobs ('ml.m5.large for training job usage', L-1)"


def test_a_quota_without_an_applied_value_uses_the_aws_default(stubs: Stubs, account: doctor.Account) -> None:
    """ListServiceQuotas leaves out quotas with no applied value; the default then applies and says so."""
    stubber = stubs.stub("service-quotas")
    stubber.add_response("list_service_quotas", {"Quotas": []})
    stubber.add_response(
        "list_aws_default_service_quotas", {"Quotas": [quota("ml.g5.xlarge for training job usage", "L-2", 0)]}
    )

    result = doctor.check_sagemaker_quota(account, "ml.g5.xlarge")

    assert result.status == "problem"
    assert "0 ml.g5.xlarge instances for training jobs" in result.detail
    assert "AWS default" in result.detail
    assert "ResourceLimitExceeded" in result.detail
    assert result.fix is not None
    assert "--service-code sagemaker --quota-code L-2 --desired-value 1" in result.fix


def test_a_codebuild_quota_of_zero_is_a_problem(stubs: Stubs, account: doctor.Account) -> None:
    stubs.stub("service-quotas").add_response(
        "list_service_quotas",
        {"Quotas": [quota("Concurrently running builds for Linux/Small environment", "L-9D07B6EF", 0)]},
        {"ServiceCode": "codebuild"},
    )

    result = doctor.check_codebuild_quota(account, "Linux/Small")

    assert result.status == "problem"
    assert result.detail.startswith("0 concurrent Linux/Small builds")


def test_a_denied_service_quotas_call_is_could_not_check(stubs: Stubs, account: doctor.Account) -> None:
    denied(stubs.stub("service-quotas"), "list_service_quotas")

    result = doctor.check_codebuild_quota(account, "Linux/Small")

    assert result.status == "could not check"
    assert result.detail == "servicequotas:ListServiceQuotas was denied (AccessDeniedException)"


def test_a_quota_service_quotas_does_not_list_is_could_not_check(stubs: Stubs, account: doctor.Account) -> None:
    stubber = stubs.stub("service-quotas")
    stubber.add_response("list_service_quotas", {"Quotas": []})
    stubber.add_response("list_aws_default_service_quotas", {"Quotas": []})

    result = doctor.check_sagemaker_quota(account, "ml.m5.large")

    assert result.status == "could not check"


def test_the_codebuild_quota_name_comes_from_the_template_s_project() -> None:
    assert doctor.codebuild_environment(load_template()) == "Linux/Small"


# ------------------------------------------------------------------------------------------ connection
def test_no_connection_arn_means_codecommit(account: doctor.Account) -> None:
    result = doctor.check_connection(account, "", "sagepipe-training")

    assert result.status == "ok"
    assert "CodeCommit repository sagepipe-training" in result.detail


@pytest.mark.parametrize(("status", "expected"), [("AVAILABLE", "ok"), ("PENDING", "problem"), ("ERROR", "problem")])
def test_a_connection_s_status_decides_its_line(
    stubs: Stubs, account: doctor.Account, status: str, expected: str
) -> None:
    """The connection is asked in its own region, through the API its ARN names."""
    stubs.stub("codeconnections", "eu-west-1").add_response(
        "get_connection",
        {"Connection": {"ConnectionName": "gh", "ProviderType": "GitHub", "ConnectionStatus": status}},
        {"ConnectionArn": CONNECTION},
    )

    result = doctor.check_connection(account, CONNECTION, "org/repo")

    assert result.status == expected
    assert f"gh (GitHub) is {status}" in result.detail


def test_a_codestar_connection_is_asked_through_codestar_connections(stubs: Stubs, account: doctor.Account) -> None:
    arn = "arn:aws:codestar-connections:us-east-1:123456789012:connection/abc"
    stubs.stub("codestar-connections", "us-east-1").add_response(
        "get_connection", {"Connection": {"ConnectionName": "old", "ConnectionStatus": "AVAILABLE"}}
    )

    assert doctor.check_connection(account, arn, "org/repo").status == "ok"


def test_a_denied_get_connection_is_could_not_check(stubs: Stubs, account: doctor.Account) -> None:
    denied(stubs.stub("codeconnections", "eu-west-1"), "get_connection")

    result = doctor.check_connection(account, CONNECTION, "org/repo")

    assert result.status == "could not check"
    assert result.detail == "codeconnections:GetConnection was denied (AccessDeniedException)"


# ------------------------------------------------------------------------------------------ instance storage
def ec2_answer(stubber: Stubber, ec2_type: str, storage: bool) -> None:
    stubber.add_response(
        "describe_instance_types",
        {"InstanceTypes": [{"InstanceType": ec2_type, "InstanceStorageSupported": storage}]},
        {"InstanceTypes": [ec2_type]},
    )


def test_the_storage_rule_agreeing_with_ec2_is_ok(stubs: Stubs, account: doctor.Account) -> None:
    ec2_answer(stubs.stub("ec2"), "g5.xlarge", storage=True)

    result = doctor.check_instance_storage(account, "ml.g5.xlarge", doctor.load_storage_rule())

    assert result.status == "ok"
    assert result.detail == "ml.g5.xlarge has local NVMe storage (EC2 agrees); Train sends no VolumeKmsKeyId"


def test_the_storage_rule_disagreeing_with_ec2_is_a_problem(stubs: Stubs, account: doctor.Account) -> None:
    """Given EC2 saying m5.large has instance storage (a rule gone stale), then the line is a problem."""
    ec2_answer(stubs.stub("ec2"), "m5.large", storage=True)

    result = doctor.check_instance_storage(account, "ml.m5.large", doctor.load_storage_rule())

    assert result.status == "problem"
    assert "which SageMaker refuses" in result.detail
    assert result.fix is not None
    assert "LOCAL_STORAGE_FAMILIES" in result.fix


@pytest.mark.parametrize(
    ("code", "words"), [("InvalidInstanceType", "EC2 does not know"), ("UnauthorizedOperation", "denied")]
)
def test_an_unknown_type_or_a_denied_ec2_call_is_could_not_check(
    stubs: Stubs, account: doctor.Account, code: str, words: str
) -> None:
    stubs.stub("ec2").add_client_error("describe_instance_types", service_error_code=code)

    result = doctor.check_instance_storage(account, "ml.m5.large", doctor.load_storage_rule())

    assert result.status == "could not check"
    assert words in result.detail


def test_a_type_that_is_not_a_sagemaker_type_is_a_problem(account: doctor.Account) -> None:
    result = doctor.check_instance_storage(account, "m5.large", doctor.load_storage_rule())

    assert result.status == "problem"


# ------------------------------------------------------------------------------------------ deployed resources
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/k"


def test_declared_encryption_is_read_from_the_template() -> None:
    assert doctor.declared_bucket_encryption(load_template()) == {
        "AccessLogsBucket": "AES256",
        "DataBucket": "pipeline key",
        "ArtifactsBucket": "pipeline key",
        "LedgerBucket": "pipeline key",
    }


def test_a_bucket_missing_from_the_stack_is_a_problem(account: doctor.Account) -> None:
    keys = doctor.KeyResolver(None)

    result = doctor.check_bucket(account, "DataBucket", None, declared="pipeline key", keys=keys, key_arn=KEY_ARN)

    assert result.status == "problem"
    assert "not in the deployed stack" in result.detail


def test_a_bucket_whose_encryption_is_denied_is_could_not_check(stubs: Stubs, account: doctor.Account) -> None:
    denied(stubs.stub("s3"), "get_bucket_encryption", "AccessDenied")

    result = doctor.check_bucket(
        account, "DataBucket", "b", declared="pipeline key", keys=doctor.KeyResolver(None), key_arn=KEY_ARN
    )

    assert result.status == "could not check"
    assert result.detail == "s3:GetEncryptionConfiguration was denied (AccessDenied)"


def test_a_table_under_another_key_is_a_problem(stubs: Stubs, account: doctor.Account) -> None:
    stubs.stub("dynamodb").add_response(
        "describe_table",
        {"Table": {"SSEDescription": {"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": "arn:other"}}},
    )

    result = doctor.check_table(account, "RunsTable", "t", KEY_ARN)

    assert result.status == "problem"
    assert "KMS arn:other" in result.detail


def test_an_unencrypted_topic_is_a_problem(stubs: Stubs, account: doctor.Account) -> None:
    stubs.stub("sns").add_response("get_topic_attributes", {"Attributes": {"TopicArn": "arn:aws:sns:r:1:t"}})

    result = doctor.check_topic(account, "Topic", "arn:aws:sns:r:1:t", doctor.KeyResolver(None), KEY_ARN)

    assert result.status == "problem"
    assert "unencrypted" in result.detail


def test_a_state_machine_denied_is_could_not_check(stubs: Stubs, account: doctor.Account) -> None:
    denied(stubs.stub("stepfunctions"), "describe_state_machine")

    result = doctor.check_state_machine(
        account, "Pipeline", "arn:aws:states:us-east-1:123456789012:stateMachine:p", KEY_ARN
    )

    assert result.status == "could not check"


def test_a_denied_key_leaves_the_encryption_lines_unchecked(stubs: Stubs, account: doctor.Account) -> None:
    denied(stubs.stub("kms"), "describe_key")
    stack = doctor.DeployedStack("s", "CREATE_COMPLETE", {}, {"PipelineKey": ("AWS::KMS::Key", "k")})

    results = list(doctor.check_deployed_resources(account, load_template(), stack))

    assert results[0].status == "could not check"
    assert results[0].detail == "kms:DescribeKey was denied (AccessDeniedException)"
    assert {result.status for result in results[1:]} == {"could not check"}
    assert len(results) == 1 + 4 + 1 + 1 + 1  # the key, four buckets, the table, the topic, the state machine


def test_an_http_403_without_an_error_name_counts_as_denied() -> None:
    """moto's IAM enforcement answers JSON services in XML, which botocore reports as code "403"."""
    error: Any = SimpleNamespace(response={"Error": {"Code": "403"}, "ResponseMetadata": {"HTTPStatusCode": 403}})

    assert doctor.is_denied(error)

"""`sagepipe doctor` against the local emulator: every line's ok, problem and could-not-check case.

The emulator's account (sagepipe.local.account) stands in for what a fresh AWS account may lack: tests lower
its Lambda limit, set quotas to 0 and leave the connection PENDING. Denied calls come from moto's own IAM
enforcement (its /moto-api/reset-auth endpoint), with a user whose policy denies one service.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from click.testing import CliRunner

from sagepipe import doctor
from sagepipe.cli import EXIT_DOCTOR_PROBLEM, main
from sagepipe.local.account.state import LocalAccount
from sagepipe.local.core import context
from sagepipe.local.core.emulator import ACCESS_KEY, REGION, SECRET_KEY, Emulator
from sagepipe.local.provisioner import DEFAULT_STACK_NAME, LocalStack, provision
from sagepipe.template import PROJECT_ROOT

pytestmark = pytest.mark.e2e

PRE_DEPLOY = ("Credentials", "Lambda concurrency", "CodeBuild quota", "SageMaker quota", "Code connection")


@pytest.fixture
def stack(emulator: Emulator, tmp_path: Path) -> LocalStack:
    emulator.reset()
    return provision(emulator, repository=PROJECT_ROOT)


def clients_for(emulator: Emulator, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> doctor.ClientFactory:
    def factory(service: str, region: str | None) -> Any:
        client: Any = boto3.client  # a plain str service name has no typed overload
        return client(
            service,
            region_name=region or REGION,
            endpoint_url=emulator.endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )

    return factory


def run_doctor(emulator: Emulator, **options: Any) -> dict[str, doctor.CheckResult]:
    """The report's results by check name (the doctor names each check once)."""
    clients = options.pop("clients", None) or clients_for(emulator)
    options.setdefault("stack_name", DEFAULT_STACK_NAME)
    report = doctor.run(clients, REGION, **options)
    results = {result.check: result for result in report.results}
    assert len(results) == len(report.results), "a check name appears twice"
    return results


def statuses(results: dict[str, doctor.CheckResult]) -> dict[str, str]:
    return {name: result.status for name, result in results.items()}


# ------------------------------------------------------------------------------------------ all ok
def test_a_provisioned_stack_passes_every_check(emulator: Emulator, stack: LocalStack) -> None:
    """Given the local stack as `sagepipe local up` provisions it, when the doctor runs on it, then every check is
    ok, the deployed parameters were used, and each deployed resource has its own line."""
    results = run_doctor(emulator)

    assert set(statuses(results).values()) == {"ok"}, [r.line() for r in results.values() if r.status != "ok"]
    assert results[f"Stack {DEFAULT_STACK_NAME}"].detail.startswith("CREATE_COMPLETE")
    assert "is AVAILABLE" in results["Code connection"].detail  # the local GitHub connection: a stack parameter
    for name in ("Bucket DataBucket", "Bucket ArtifactsBucket", "Table RunsTable", "Topic NotificationsTopic"):
        assert "pipeline key" in results[name].detail, results[name].line()
    assert "AES256" in results["Bucket AccessLogsBucket"].detail
    assert "State machine Pipeline" in results


def test_the_command_prints_one_line_per_check_and_exits_0(emulator: Emulator, stack: LocalStack) -> None:
    """Given the environment `sagepipe local up` prints, when `sagepipe doctor --stack` runs, then it prints a
    header, one line per check starting with its status, a summary, and exits 0; --json says the same."""
    runner = CliRunner()
    environment = emulator.client_environment()

    text = runner.invoke(main, ["doctor", "--stack", DEFAULT_STACK_NAME], env=environment)
    as_json = runner.invoke(main, ["doctor", "--stack", DEFAULT_STACK_NAME, "--json"], env=environment)

    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0].startswith(f"sagepipe doctor: stack {DEFAULT_STACK_NAME}")
    assert lines[-1] == "no problems"
    assert all(line.startswith("ok               ") for line in lines[1:-1]), text.output
    assert as_json.exit_code == 0
    report = json.loads(as_json.output)
    assert report["problems"] == 0
    assert len(report["checks"]) == len(lines) - 2


def test_before_deploy_the_template_s_configuration_is_checked(emulator: Emulator, stack: LocalStack) -> None:
    """Given a stack name CloudFormation does not know, then the stack line says it is not deployed yet, the
    configuration checks still run, and no deployed resource is checked."""
    results = run_doctor(emulator, stack_name="sagepipe-not-yet")

    assert results["Stack sagepipe-not-yet"].status == "ok"
    assert "not deployed yet" in results["Stack sagepipe-not-yet"].detail
    assert {name: results[name].status for name in PRE_DEPLOY} == dict.fromkeys(PRE_DEPLOY, "ok")
    # The template's default: builds clone CodeCommit, no connection to check.
    assert "CodeCommit" in results["Code connection"].detail
    assert not any(name.startswith(("Bucket", "Table", "Topic", "State machine")) for name in results)


# ------------------------------------------------------------------------------------------ problems
def test_a_low_lambda_limit_with_reservations_is_a_problem(emulator: Emulator, stack: LocalStack) -> None:
    """Given an account limit of 50 (a new account's) and a webhook reservation of 10, then the Lambda line is a
    problem naming the quota code and the parameter to empty, and the command exits 3."""
    context.current().state(LocalAccount).lambda_concurrent_executions = 50

    results = run_doctor(emulator, overrides={"GitHubWebhookReservedConcurrency": "10"})
    runner = CliRunner().invoke(
        main,
        ["doctor", "--stack", DEFAULT_STACK_NAME, "--param", "GitHubWebhookReservedConcurrency=10"],
        env=emulator.client_environment(),
    )

    line = results["Lambda concurrency"]
    assert line.status == "problem"
    assert "50 in the account, the stack reserves 10" in line.detail
    assert line.fix is not None
    assert "L-B99A9384" in line.fix
    assert "at least 110" in line.fix  # 10 reserved + the 100 Lambda keeps unreserved
    assert "GitHubWebhookReservedConcurrency" in line.fix
    assert runner.exit_code == EXIT_DOCTOR_PROBLEM
    assert "problem          Lambda concurrency" in runner.output


def test_the_stack_s_own_reservations_are_not_counted_twice(emulator: Emulator) -> None:
    """Given a deployed stack whose webhook already reserves 10 in an account of 110 (so 100 are unreserved),
    when the doctor checks the same reservation again, then it is ok: a redeploy keeps the same 10."""
    emulator.reset()
    context.current().state(LocalAccount).lambda_concurrent_executions = 110
    provision(emulator, parameters={"GitHubWebhookReservedConcurrency": "10"}, repository=PROJECT_ROOT)
    settings = emulator.client("lambda").get_account_settings()["AccountLimit"]
    assert settings["UnreservedConcurrentExecutions"] == 100, "the provisioner should have reserved 10"

    results = run_doctor(emulator)

    assert results["Lambda concurrency"].status == "ok", results["Lambda concurrency"].line()
    assert "100 stay unreserved" in results["Lambda concurrency"].detail


@pytest.mark.parametrize(
    ("service_code", "quota_name", "check", "overrides", "expected"),
    [
        (
            "codebuild",
            "Concurrently running builds for Linux/Small environment",
            "CodeBuild quota",
            {},
            "0 concurrent Linux/Small builds",
        ),
        (
            "sagemaker",
            "ml.g5.xlarge for training job usage",
            "SageMaker quota",
            {"TrainingInstanceType": "ml.g5.xlarge"},
            "0 ml.g5.xlarge instances for training jobs",
        ),
    ],
)
def test_a_quota_of_zero_is_a_problem_with_its_code_in_the_fix(  # noqa: PLR0917 - parametrised
    emulator: Emulator,
    stack: LocalStack,
    service_code: str,
    quota_name: str,
    check: str,
    overrides: dict[str, str],
    expected: str,
) -> None:
    """Given an applied quota of 0 (as a fresh account has for GPU training), then the line is a problem whose fix
    is the increase request with the quota's code."""
    quota = context.current().state(LocalAccount).apply_quota(service_code, quota_name, 0)

    line = run_doctor(emulator, overrides=overrides)[check]

    assert line.status == "problem", line.line()
    assert expected in line.detail
    assert quota.quota_code in line.detail
    assert line.fix is not None
    assert f"--quota-code {quota.quota_code} --desired-value 1" in line.fix


def test_an_applied_quota_is_preferred_to_the_default(emulator: Emulator, stack: LocalStack) -> None:
    """Given an applied SageMaker quota of 4, then the line reports 4, not the AWS default."""
    context.current().state(LocalAccount).apply_quota("sagemaker", "ml.m5.large for training job usage", 4)

    line = run_doctor(emulator)["SageMaker quota"]

    assert line.status == "ok"
    assert line.detail.startswith("4 ml.m5.large instances")
    assert "AWS default" not in line.detail


@pytest.mark.parametrize(("status", "words"), [("PENDING", "Update pending connection"), ("ERROR", "new connection")])
def test_a_connection_that_is_not_available_is_a_problem(
    emulator: Emulator, stack: LocalStack, status: str, words: str
) -> None:
    """Given the stack's GitHub connection PENDING (as created) or in ERROR, then the line is a problem."""
    arn = str(stack.parameters["GitHubConnectionArn"])
    context.current().state(LocalAccount).set_connection_status(arn, status)

    line = run_doctor(emulator)["Code connection"]

    assert line.status == "problem"
    assert f"is {status}" in line.detail
    assert line.fix is not None
    assert words in line.fix


def test_an_unknown_connection_is_a_problem(emulator: Emulator, stack: LocalStack) -> None:
    """Given GitHubConnectionArn naming a connection the account does not have (in the old codestar-connections
    form, answered in JSON), then the line is a problem telling how to create one."""
    arn = "arn:aws:codestar-connections:us-east-1:123456789012:connection/00000000-0000-0000-0000-000000000000"

    line = run_doctor(emulator, overrides={"GitHubConnectionArn": arn})["Code connection"]

    assert line.status == "problem"
    assert "does not exist" in line.detail


def test_a_storage_rule_that_disagrees_with_ec2_is_a_problem(
    emulator: Emulator, stack: LocalStack, tmp_path: Path
) -> None:
    """Given a project whose rule forgets that g5 has local NVMe storage, then the instance storage line for
    ml.g5.xlarge is a problem: Train would send a VolumeKmsKeyId SageMaker refuses."""
    for name in ("template.yaml", "samconfig.toml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    rule = tmp_path / doctor.STORAGE_RULE_PATH
    rule.parent.mkdir(parents=True)
    source = (PROJECT_ROOT / doctor.STORAGE_RULE_PATH).read_text(encoding="utf-8")
    rule.write_text(source.replace('        "g5",\n', ""), encoding="utf-8")

    line = run_doctor(emulator, overrides={"TrainingInstanceType": "ml.g5.xlarge"}, project_root=tmp_path)[
        "Instance storage"
    ]

    assert line.status == "problem", line.line()
    assert "EC2 says ml.g5.xlarge has local NVMe storage" in line.detail
    assert "VolumeKmsKeyId" in line.detail


def test_a_bucket_without_the_pipeline_key_is_a_problem(emulator: Emulator, stack: LocalStack) -> None:
    """Given the data bucket's default encryption changed to SSE-S3 after deploy, then its line is a problem and
    the other buckets' lines stay ok."""
    emulator.client("s3").put_bucket_encryption(
        Bucket=stack.ref("DataBucket"),
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )

    results = run_doctor(emulator)

    assert results["Bucket DataBucket"].status == "problem"
    assert "not aws:kms with the pipeline key" in results["Bucket DataBucket"].detail
    assert results["Bucket ArtifactsBucket"].status == "ok"


def test_deleted_resources_are_problems(emulator: Emulator, stack: LocalStack) -> None:
    """Given the topic and the state machine deleted behind CloudFormation's back, then each is a problem."""
    emulator.client("sns").delete_topic(TopicArn=stack.ref("NotificationsTopic"))
    emulator.client("stepfunctions").delete_state_machine(stateMachineArn=stack.ref("Pipeline"))

    results = run_doctor(emulator)

    assert results["Topic NotificationsTopic"].status == "problem"
    assert results["State machine Pipeline"].status == "problem"
    assert "does not exist" in results["State machine Pipeline"].detail


def test_a_key_pending_deletion_is_a_problem_and_its_dependants_are_not_checked(
    emulator: Emulator, stack: LocalStack
) -> None:
    """Given the pipeline key scheduled for deletion, then its line is a problem with the cancel command, and the
    encryption lines say they could not be checked."""
    emulator.client("kms").schedule_key_deletion(KeyId=stack.ref("PipelineKey"), PendingWindowInDays=7)

    results = run_doctor(emulator)

    assert results["Pipeline key"].status == "problem"
    assert results["Pipeline key"].fix is not None
    assert "cancel-key-deletion" in results["Pipeline key"].fix
    assert results["Bucket DataBucket"].status == "could not check"
    assert results["Table RunsTable"].status == "could not check"


# ------------------------------------------------------------------------------------------ could not check
@contextmanager
def enforced_iam(emulator: Emulator, denied: list[str]) -> Iterator[doctor.ClientFactory]:
    """A user allowed everything but `denied`, and moto's IAM enforcement on while the block runs."""
    iam = emulator.client("iam")
    iam.create_user(UserName="doctor")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": denied, "Resource": "*"},
        ],
    }
    iam.put_user_policy(UserName="doctor", PolicyName="doctor", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="doctor")["AccessKey"]
    # moto's server-side switch: authenticate and authorise every request from now on (0 free requests).
    requests.post(f"{emulator.endpoint}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
    try:
        yield clients_for(emulator, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        requests.post(f"{emulator.endpoint}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()


def test_a_denied_service_quotas_call_is_could_not_check(emulator: Emulator, stack: LocalStack) -> None:
    """Given an identity IAM denies servicequotas:*, then both quota lines say the call was denied (could not
    check, exit 0 unless something else is a problem), and the checks that need no quota still run."""
    with enforced_iam(emulator, ["servicequotas:*"]) as clients:
        results = run_doctor(emulator, clients=clients)

    for check in ("CodeBuild quota", "SageMaker quota"):
        assert results[check].status == "could not check", results[check].line()
        assert "servicequotas:ListServiceQuotas was denied" in results[check].detail
    assert results["Credentials"].status == "ok"
    assert "user/doctor" in results["Credentials"].detail
    assert results["Instance storage"].status == "ok"
    assert results["Bucket DataBucket"].status == "ok"


def test_denied_ec2_and_cloudformation_calls_are_could_not_check(emulator: Emulator, stack: LocalStack) -> None:
    """Given an identity denied ec2:DescribeInstanceTypes and cloudformation:DescribeStacks, then the instance
    storage and stack lines could not be checked, and without the stack no deployed resource is checked."""
    with enforced_iam(emulator, ["ec2:DescribeInstanceTypes", "cloudformation:DescribeStacks"]) as clients:
        results = run_doctor(emulator, clients=clients)

    assert results["Instance storage"].status == "could not check"
    assert "ec2:DescribeInstanceTypes was denied" in results["Instance storage"].detail
    stack_line = results[f"Stack {DEFAULT_STACK_NAME}"]
    assert stack_line.status == "could not check"
    assert "cloudformation:DescribeStacks was denied" in stack_line.detail
    assert "Pipeline key" not in results


def test_an_instance_type_ec2_does_not_know_is_could_not_check(emulator: Emulator, stack: LocalStack) -> None:
    """Given ml.p3.2xlarge, a SageMaker training type absent from the emulator's EC2 catalogue and with no quota
    removed, then the instance storage line could not be checked; a quota Service Quotas does not list either."""
    context.current().state(LocalAccount).forget_quota("sagemaker", "ml.p3.2xlarge for training job usage")

    results = run_doctor(emulator, overrides={"TrainingInstanceType": "ml.p3.2xlarge"})

    assert results["Instance storage"].status == "could not check"
    assert "EC2 does not know p3.2xlarge" in results["Instance storage"].detail
    assert results["SageMaker quota"].status == "could not check"
    assert "no sagemaker quota named 'ml.p3.2xlarge for training job usage'" in results["SageMaker quota"].detail

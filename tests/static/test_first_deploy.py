"""What a first `sam deploy` into a fresh account, and its first runs, depend on (each with its source)."""

import json
import re
from typing import Any

import pytest
import yaml

from sagepipe.template import (
    ALL_FEATURES_PARAMETERS,
    LAMBDA_UNRESERVED_MINIMUM,
    PROJECT_ROOT,
    load_template,
    reserved_concurrency,
    translate,
    with_defaults,
)

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
DOCKERFILE = (PROJECT_ROOT / "container" / "Dockerfile").read_text(encoding="utf-8")
BUILDSPEC = yaml.safe_load((PROJECT_ROOT / "buildspec.yml").read_text(encoding="utf-8"))
DEFINITION = json.loads((PROJECT_ROOT / "statemachine" / "pipeline.asl.json").read_text(encoding="utf-8"))


def _role_actions(translated: dict[str, Any], role: str) -> dict[str, set[str]]:
    """Each statement Sid of a role's inline policies, with its actions (both branches of an Fn::If)."""
    found: dict[str, set[str]] = {}
    for policy in translated["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
            for branch in branches:
                actions = branch["Action"]
                found[branch["Sid"]] = {actions} if isinstance(actions, str) else set(actions)
    return found


# ----------------------------------------------------------------------------- 1. reserved concurrency
def test_a_default_deploy_reserves_no_lambda_concurrency() -> None:
    """Given the template's defaults, then no function reserves concurrency: a reservation fails CREATE in any
    account whose concurrency quota is below the reservations plus the 100 Lambda keeps unreserved, and new
    accounts start at 10 to 50 (Lambda developer guide, "Configuring reserved concurrency")."""
    assert reserved_concurrency(load_template()) == {}
    translated = translate(load_template())
    functions = {
        name: resource["Properties"]
        for name, resource in translated["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert functions
    # The settings check runs once per deploy, for CloudFormation: it reserves nothing, with no parameter.
    assert "ReservedConcurrentExecutions" not in functions.pop("CheckSettingsFunction")
    # What CloudFormation receives: each reservation is behind its parameter's condition, else AWS::NoValue.
    for name, properties in functions.items():
        condition, _, otherwise = properties["ReservedConcurrentExecutions"]["Fn::If"]
        assert otherwise == {"Ref": "AWS::NoValue"}, name
        assert translated["Conditions"][condition] == {
            "Fn::Not": [
                {
                    "Fn::Equals": [
                        {"Ref": condition.replace("Reserve", "", 1).replace("Concurrency", "ReservedConcurrency")},
                        "",
                    ]
                }
            ]
        }


def test_each_reservation_is_a_parameter_that_reserves_exactly_what_it_says() -> None:
    """Given a reservation parameter set, then that function, and only it, reserves that many executions; with
    every feature on, an account needs the sum plus Lambda's unreserved minimum."""
    template = load_template()
    assert reserved_concurrency(template, {"DigestArtifactReservedConcurrency": "7"}) == {"DigestArtifactFunction": 7}
    everything = reserved_concurrency(template, ALL_FEATURES_PARAMETERS)
    assert set(everything) == {
        "NormaliseTriggerFunction",
        "DigestArtifactFunction",
        "StageDatasetFunction",
        "SealRecordFunction",
        "EvaluateGateFunction",
        "RecordModelDecisionFunction",
        "GitHubWebhookFunction",
        "CacheKeyFunction",
    }
    assert sum(everything.values()) + LAMBDA_UNRESERVED_MINIMUM == 220


@pytest.mark.parametrize("value", ["0", "-1", "ten", "1.5"])
def test_a_reservation_parameter_refuses_what_would_throttle_or_break_the_function(value: str) -> None:
    """Given a reservation of 0 (which throttles every invocation) or a non-number, then CloudFormation's
    AllowedPattern refuses it at deploy time."""
    parameters = load_template()["Parameters"]
    for name in (
        "NormaliseTriggerReservedConcurrency",
        "DigestArtifactReservedConcurrency",
        "StageDatasetReservedConcurrency",
        "SealRecordReservedConcurrency",
        "EvaluateGateReservedConcurrency",
        "RecordModelDecisionReservedConcurrency",
        "GitHubWebhookReservedConcurrency",
        "CacheKeyReservedConcurrency",
    ):
        parameter = parameters[name]
        assert parameter["Default"] == ""
        assert re.fullmatch(parameter["AllowedPattern"], "")
        assert re.fullmatch(parameter["AllowedPattern"], "10")
        assert not re.fullmatch(parameter["AllowedPattern"], value), name


def test_the_readme_documents_the_concurrency_quota_and_why_the_webhook_cap_exists() -> None:
    """The one protective cap is explained where users look for it."""
    assert "### Quotas a fresh account may lack" in README
    assert "GitHubWebhookReservedConcurrency=10" in README
    assert "UnreservedConcurrentExecution below its minimum value" in README


# ----------------------------------------------------------------------------- 2. and 3. IAM
def test_the_sagemaker_role_may_encrypt_with_the_output_key() -> None:
    """botocore's SageMaker model, OutputDataConfig.KmsKeyId: with a key given, "the SageMaker execution role
    must include permissions to call kms:Encrypt"."""
    actions = _role_actions(translate(load_template()), "SageMakerExecutionRole")
    assert "kms:Encrypt" in actions["EncryptVolumeAndOutputWithThePipelineKey"]


def test_the_build_role_may_get_the_github_connection_under_both_prefixes() -> None:
    """CodeBuild user guide, "GitHub App connections": the project role needs codeconnections:GetConnection and
    GetConnectionToken. Connections made before July 2024 carry codestar-connections ARNs."""
    translated = translate(with_defaults(load_template(), ALL_FEATURES_PARAMETERS))
    actions = _role_actions(translated, "TrainingImageBuildRole")["CloneFromGitHubThroughTheConnection"]
    for prefix in ("codeconnections", "codestar-connections"):
        assert {f"{prefix}:GetConnection", f"{prefix}:GetConnectionToken", f"{prefix}:UseConnection"} <= actions


# ----------------------------------------------------------------------------- 4. the base image
def test_the_image_build_pulls_nothing_from_docker_hub() -> None:
    """Given the Dockerfile, then neither the syntax frontend nor any base image comes from Docker Hub, whose
    anonymous pull limit CodeBuild's shared addresses exhaust: every FROM resolves to public.ecr.aws."""
    assert not re.search(r"^#\s*syntax\s*=", DOCKERFILE, re.MULTILINE)
    arguments = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", DOCKERFILE, re.MULTILINE))
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", DOCKERFILE, re.MULTILINE | re.IGNORECASE))
    bases = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert bases
    for base in bases:
        resolved = re.sub(r"\$\{(\w+)\}", lambda match: arguments[match[1]], base)
        assert resolved in stages or resolved.startswith("public.ecr.aws/"), resolved


# ----------------------------------------------------------------------------- 6. the build's timeout
def test_build_image_outlasts_the_build_projects_own_queue_and_build_timeouts() -> None:
    """Given CodeBuild's queue (QueuedTimeoutInMinutes) and build (TimeoutInMinutes) limits, then the BuildImage
    state waits longer than both together: otherwise a slow queue fails a run whose build then succeeds."""
    project = load_template()["Resources"]["TrainingImageBuild"]["Properties"]
    codebuild_limit = (project["QueuedTimeoutInMinutes"] + project["TimeoutInMinutes"]) * 60
    assert DEFINITION["States"]["BuildImage"]["TimeoutSeconds"] > codebuild_limit


# ----------------------------------------------------------------------------- 9. tests run on what ships
def test_the_training_tests_run_on_the_images_python() -> None:
    """Given the image's base (python:3.13.x), then buildspec.yml runs the training tests on Python 3.13 too, so
    a test that passes in the build passes on the interpreter and wheels (cp313) that ship."""
    image_python = re.search(r"python:(\d+\.\d+)\.\d+", DOCKERFILE)
    assert image_python is not None
    assert str(BUILDSPEC["phases"]["install"]["runtime-versions"]["python"]) == image_python[1]


# ----------------------------------------------------------------------------- 10. the README's clean-up
def test_the_clean_up_commands_are_complete_and_name_what_outlives_the_stack() -> None:
    """Given the README's clean-up, then the key deletion names its key, the training log group SageMaker owns
    is called out, and a rolled-back first deploy is explained."""
    schedule = re.findall(r"aws kms schedule-key-deletion[^\n`]*", README)
    assert schedule
    assert all("--key-id" in command for command in schedule)
    assert "/aws/sagemaker/TrainingJobs" in README
    assert "ROLLBACK_COMPLETE" in README


@pytest.mark.parametrize("value", ["", "x" * 33, "v 2", "v/2", "v2;rm", "é"])
def test_a_cache_version_that_is_not_up_to_32_safe_characters_is_refused_at_deploy(value: str) -> None:
    """Given a TrainingCacheVersion that is empty, longer than 32 characters, or holds anything but letters, digits,
    '.', '_' and '-', then CloudFormation's AllowedPattern refuses it, with a ConstraintDescription that says what
    is allowed."""
    parameter = load_template()["Parameters"]["TrainingCacheVersion"]
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])
    assert re.fullmatch(parameter["AllowedPattern"], "x" * 32)
    assert re.fullmatch(parameter["AllowedPattern"], "2026-12-01_b.2")
    assert not re.fullmatch(parameter["AllowedPattern"], value)
    assert "1 to 32 characters" in parameter["ConstraintDescription"]

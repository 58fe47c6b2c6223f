"""template.yaml, checked for the properties sagepipe promises: least privilege, encryption, and triggers
that match exactly the events they should."""

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from sagepipe.cloudformation import Resolver
from sagepipe.template import ALL_FEATURES_PARAMETERS, PROJECT_ROOT, load_template, translate, with_defaults

EVENTS = PROJECT_ROOT / "events"
PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "sagepipe-test",
    "AWS::URLSuffix": "amazonaws.com",
}


@cache
def _translated(all_features: bool) -> dict[str, Any]:
    template = load_template()
    return translate(with_defaults(template, ALL_FEATURES_PARAMETERS) if all_features else template)


def test_the_template_parses_as_the_sam_translator_parses_it() -> None:
    """Given template.yaml, then load_template (libyaml's parser) gives exactly what aws-sam-translator's own
    yaml_parse (PyYAML's pure-Python parser) gives: short-form intrinsics and every scalar alike."""
    from samtranslator.yaml_helper import yaml_parse

    text = (PROJECT_ROOT / "template.yaml").read_text(encoding="utf-8")
    parsed = load_template()
    assert parsed == yaml_parse(text)
    assert parsed["Globals"]["Function"]["KmsKeyArn"] == {"Fn::GetAtt": ["PipelineKey", "Arn"]}


def _document(value: Any) -> dict[str, Any]:
    """A policy document, also when written as a JSON string in Fn::Sub (AWS::Logs::ResourcePolicy)."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = re.sub(r"\$\{[^}]+\}", "placeholder", value["Fn::Sub"])
    return json.loads(value) if isinstance(value, str) else value


def _statements(translated: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement: role policies, managed policy documents, and resource policies (key, bucket,
    queue, topic, log group). Statements behind Fn::If are yielded for both branches."""
    for logical_id, resource in translated["Resources"].items():
        properties = resource.get("Properties", {})
        documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        documents += [_document(properties[name]) for name in ("PolicyDocument", "KeyPolicy") if name in properties]
        for document in documents:
            for statement in document["Statement"]:
                if "Fn::If" in statement:
                    yield from ((logical_id, branch) for branch in statement["Fn::If"][1:])
                else:
                    yield logical_id, statement


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


@pytest.mark.parametrize("all_features", [False, True], ids=["defaults", "all-features"])
def test_no_statement_grants_a_wildcard_action(all_features: bool) -> None:
    """Given every IAM statement in the deployed (translated) template, then no Allow uses a '*' action or
    NotAction. The only wildcard allowed is in a Deny that enforces TLS: denying broadly is the safe direction."""
    statements = list(_statements(_translated(all_features)))
    assert len(statements) > 20
    for owner, statement in statements:
        assert "NotAction" not in statement, owner
        wildcards = [action for action in _actions(statement) if "*" in action]
        if statement["Effect"] == "Allow":
            assert not wildcards, f"{owner} allows {wildcards}"
        elif wildcards:
            assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, owner


RESOURCE_LESS_ACTIONS = frozenset(
    {
        "ecr:GetAuthorizationToken",
        "ecr-public:GetAuthorizationToken",
        "sts:GetServiceBearerToken",
        "cloudwatch:PutMetricData",
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:DescribeLogGroups",
        "logs:DescribeResourcePolicies",
        "logs:GetLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:UpdateLogDelivery",
    }
)
"""Actions granted on '*': each has no resource type to scope it to (Service Authorization Reference)."""


def test_the_resource_less_actions_have_no_resource_type_in_the_service_authorization_reference() -> None:
    """Given cfn-lint's copy of the Service Authorization Reference, then every action the template grants on
    '*' has no resource type there. cloudwatch:PutMetricData is the exception: it lists a resource type that
    PutMetricData requests do not name, so it is scoped by its cloudwatch:namespace condition instead."""
    from importlib.util import find_spec

    # The package's directory, found without importing cfnlint (whose import alone takes most of a second).
    cfnlint = find_spec("cfnlint")
    assert cfnlint is not None
    assert cfnlint.submodule_search_locations
    package = Path(cfnlint.submodule_search_locations[0])
    reference = json.loads((package / "data" / "AdditionalSpecs" / "Policies.json").read_text(encoding="utf-8"))
    scoped = {
        action
        for action in RESOURCE_LESS_ACTIONS - {"cloudwatch:PutMetricData"}
        if reference[action.split(":")[0]]["Actions"][action.split(":")[1].lower()].get("Resources")
    }
    assert not scoped, f"these actions can be scoped to a resource: {sorted(scoped)}"


def test_wildcard_resources_are_only_for_actions_that_have_no_resource() -> None:
    """'*' resources are only allowed for actions AWS does not scope to a resource."""
    resource_less = RESOURCE_LESS_ACTIONS
    for owner, statement in _statements(_translated(True)):
        if statement["Effect"] == "Allow" and statement.get("Resource") == "*" and owner != "PipelineKey":
            assert set(_actions(statement)) <= resource_less, f"{owner}: {statement.get('Sid')}"


def _of_type(translated: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in translated["Resources"].items() if res["Type"] == kind}


def _uses_pipeline_key(value: Any) -> bool:
    return value in ({"Fn::GetAtt": ["PipelineKey", "Arn"]}, {"Ref": "PipelineKey"})


def test_everything_that_stores_data_uses_the_pipeline_key() -> None:
    """Buckets (but the access-log bucket, which S3 cannot deliver to with SSE-KMS), the table, topic, queue,
    repository, log groups and function environments are encrypted with the one customer-managed key."""
    translated = _translated(True)
    key = translated["Resources"]["PipelineKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    for name, bucket in _of_type(translated, "AWS::S3::Bucket").items():
        rule = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        if name == "AccessLogsBucket":
            assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
            continue
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms", name
        assert _uses_pipeline_key(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]), name
    checks = {
        "AWS::DynamoDB::Table": lambda p: _uses_pipeline_key(p["SSESpecification"]["KMSMasterKeyId"]),
        "AWS::SNS::Topic": lambda p: _uses_pipeline_key(p["KmsMasterKeyId"]),
        "AWS::SQS::Queue": lambda p: _uses_pipeline_key(p["KmsMasterKeyId"]),
        "AWS::ECR::Repository": lambda p: _uses_pipeline_key(p["EncryptionConfiguration"]["KmsKey"]),
        "AWS::Logs::LogGroup": lambda p: _uses_pipeline_key(p["KmsKeyId"]),
        "AWS::Lambda::Function": lambda p: _uses_pipeline_key(p["KmsKeyArn"]),
        "AWS::CodeBuild::Project": lambda p: _uses_pipeline_key(p["EncryptionKey"]),
    }
    for kind, check in checks.items():
        resources = _of_type(translated, kind)
        assert resources, kind
        for name, resource in resources.items():
            assert check(resource["Properties"]), f"{kind} {name} is not encrypted with PipelineKey"


def test_the_data_bucket_is_versioned_private_logged_tls_only_and_emits_events() -> None:
    translated = _translated(False)
    data = translated["Resources"]["DataBucket"]["Properties"]
    assert data["VersioningConfiguration"] == {"Status": "Enabled"}
    assert data["NotificationConfiguration"]["EventBridgeConfiguration"] == {"EventBridgeEnabled": True}
    assert all(data["PublicAccessBlockConfiguration"].values())
    assert data["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}
    for bucket in ("DataBucket", "ArtifactsBucket", "AccessLogsBucket"):
        policies = [
            res["Properties"]["PolicyDocument"]
            for res in _of_type(translated, "AWS::S3::BucketPolicy").values()
            if res["Properties"]["Bucket"] == {"Ref": bucket}
        ]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for policy in policies
            for s in policy["Statement"]
        ), f"{bucket} accepts plain HTTP"


def test_the_runs_table_has_pitr_and_deletion_protection_in_prod_only() -> None:
    for all_features, protected in ((False, False), (True, True)):
        table = _translated(all_features)["Resources"]["RunsTable"]["Properties"]
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        resolver = Resolver(load_template(), {"Environment": "prod" if all_features else "dev"}, PSEUDO)
        assert resolver.resolve(table["DeletionProtectionEnabled"]) is protected


def test_the_state_machine_is_standard_logged_traced_and_allowed_its_sync_rules() -> None:
    translated = _translated(False)
    (machine,) = _of_type(translated, "AWS::StepFunctions::StateMachine").values()
    properties = machine["Properties"]
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    role = json.dumps(translated["Resources"]["PipelineRole"])
    assert "rule/StepFunctionsGetEventForCodeBuildStartBuildRule" in role
    assert "rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule" in role
    assert '"iam:PassedToService": "sagemaker.amazonaws.com"' in role
    assert '"sagemaker:AddTags"' in role


# ---------------------------------------------------------------------------------------- trigger patterns
def _patterns(overrides: dict[str, str], bucket: str) -> dict[str, dict[str, Any]]:
    """The three trigger rules' patterns, resolved as CloudFormation would for the given parameters."""
    template = load_template()
    parameters = {name: spec.get("Default") for name, spec in template["Parameters"].items()} | overrides
    resolver = Resolver(template, parameters, PSEUDO, resource_ref=lambda logical_id: bucket)
    events = template["Resources"]["Pipeline"]["Properties"]["Events"]
    return {name: resolver.resolve(event["Properties"]["Pattern"]) for name, event in events.items()}


def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


SAMPLES = {
    "s3-object-created.json": ("DataUploaded", {}),
    "codecommit-push.json": ("CodeCommitPushed", {}),
    "github-push-event.json": ("GitHubPushed", {"CodeRepositoryName": "example-org/training-code"}),
    "manual-run.json": ("ManualRunRequested", {}),
}


def _matching_rules(event: dict[str, Any], overrides: dict[str, str]) -> set[str]:
    patterns = _patterns(overrides, bucket="sagepipe-data-example")
    return {
        name
        for name, pattern in patterns.items()
        if EventPattern.load(json.dumps(pattern)).matches_event(event)  # type: ignore[arg-type]
    }


NO_RUN_SAMPLES = {
    "codecommit-tag-created.json": {"CodeRepositoryName": "MyDemoRepo"},
    "codecommit-branch-deleted.json": {"CodeRepositoryName": "MyDemoRepo", "CodeBranch": "myBranch"},
    "s3-object-deleted.json": {},
}
"""AWS's documented events that must start no run (events/README.md cites each), with the parameters that make
everything but the reason for it match: the sample's repository and branch, and the sample's bucket below."""


def test_every_sample_event_has_a_rule_or_is_one_that_starts_no_run() -> None:
    assert {path.name for path in EVENTS.glob("*.json")} <= set(SAMPLES) | set(NO_RUN_SAMPLES) | {
        "github-push.json",
        "github-ping.json",
    }


@pytest.mark.parametrize("sample", sorted(NO_RUN_SAMPLES))
def test_aws_documented_events_that_start_no_run_match_no_rule(sample: str) -> None:
    """Given AWS's sample of a tag push, a branch deletion or an object deletion, in its own account's names (the
    repository, branch and bucket the parameters name), then no rule matches it."""
    event = _event(sample)
    if event["source"] == "aws.s3":
        event["detail"]["bucket"]["name"] = "sagepipe-data-example"
        event["detail"]["object"]["key"] = "datasets/example-key"
    assert _matching_rules(event, NO_RUN_SAMPLES[sample]) == set()


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_each_sample_event_matches_exactly_its_rule(sample: str) -> None:
    """Given a sample event in its real EventBridge shape, then exactly its own rule matches it."""
    rule, overrides = SAMPLES[sample]
    assert _matching_rules(_event(sample), overrides) == {rule}


def _variant(sample: str, path: list[str], value: Any) -> dict[str, Any]:
    event = copy.deepcopy(_event(sample))
    target = event
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return event


@pytest.mark.parametrize(
    ("sample", "path", "value"),
    [
        ("s3-object-created.json", ["detail", "bucket", "name"], "someone-elses-bucket"),
        ("s3-object-created.json", ["detail", "object", "key"], "elsewhere/train.csv"),
        ("s3-object-created.json", ["detail", "object", "size"], 0),
        ("s3-object-created.json", ["detail", "reason"], "POST Object"),
        ("s3-object-created.json", ["detail-type"], "Object Deleted"),
        ("codecommit-push.json", ["detail", "referenceName"], "feature/experiment"),
        ("codecommit-push.json", ["detail", "referenceType"], "tag"),
        ("codecommit-push.json", ["detail", "event"], "referenceDeleted"),
        ("codecommit-push.json", ["resources"], ["arn:aws:codecommit:us-east-1:123456789012:other-repo"]),
        ("github-push-event.json", ["detail", "ref"], "refs/heads/feature/experiment"),
        ("github-push-event.json", ["detail", "ref"], "refs/tags/v1.0.0"),
        ("github-push-event.json", ["detail", "deleted"], True),
        ("github-push-event.json", ["detail", "repository"], "example-org/other"),
        ("github-push-event.json", ["source"], "aws.github"),
        ("manual-run.json", ["detail-type"], "Manual Run Approved"),
        ("manual-run.json", ["source"], "aws.sagepipe"),
    ],
)
def test_events_that_must_not_start_a_run_match_no_rule(sample: str, path: list[str], value: Any) -> None:
    """Given a sample changed in one field that makes it noise, then no rule matches it."""
    _, overrides = SAMPLES[sample]
    assert _matching_rules(_variant(sample, path, value), overrides) == set()


def test_sample_files_are_json_objects() -> None:
    for path in Path(EVENTS).glob("*.json"):
        assert isinstance(_event(path.name), dict), path


@pytest.mark.parametrize(
    ("key", "size", "matches"),
    [
        ("datasets/2026-11-24/_SUCCESS", 0, True),
        ("datasets/2026-11-24/part-0001.csv", 2048, False),
        ("elsewhere/2026-11-24/_SUCCESS", 0, False),
    ],
)
def test_in_marker_mode_only_the_marker_matches_even_when_empty(key: str, size: int, matches: bool) -> None:
    """Given DataTriggerMode=marker, then an (empty) marker under the prefix matches the data rule, and the dataset's
    own files do not: the run starts once, when the folder is complete."""
    event = _variant("s3-object-created.json", ["detail", "object", "key"], key)
    event["detail"]["object"]["size"] = size
    patterns = _patterns({"DataTriggerMode": "marker"}, bucket="sagepipe-data-example")
    pattern = EventPattern.load(json.dumps(patterns["DataUploaded"]))
    assert pattern.matches_event(event) is matches  # type: ignore[arg-type]


def _granted(translated: dict[str, Any], role: str) -> dict[str, set[str]]:
    """The actions a role's statements allow, by resource (as written in the translated template)."""
    granted: dict[str, set[str]] = {}
    for owner, statement in _statements(translated):
        if owner == role and statement["Effect"] == "Allow":
            granted.setdefault(json.dumps(statement["Resource"], sort_keys=True), set()).update(_actions(statement))
    return granted


def test_the_staging_function_may_copy_in_parts_into_run_inputs_only() -> None:
    """Given the staging function's role, then it reads any version of the data bucket, and on the artifacts bucket
    may only write run inputs, in one request or in parts (s3:PutObject covers CreateMultipartUpload,
    UploadPartCopy and CompleteMultipartUpload; aborting a failed copy is s3:AbortMultipartUpload: S3 User Guide,
    "Multipart upload API and permissions"), encrypting with the pipeline key (a multipart upload with SSE-KMS
    needs kms:GenerateDataKey and kms:Decrypt)."""
    granted = _granted(_translated(False), "StageDatasetFunctionRole")
    run_inputs = json.dumps({"Fn::Sub": "${ArtifactsBucket.Arn}/runs/*/input/*"}, sort_keys=True)
    data_objects = json.dumps({"Fn::Sub": "${DataBucket.Arn}/*"}, sort_keys=True)
    assert granted[run_inputs] == {"s3:PutObject", "s3:AbortMultipartUpload"}
    assert granted[data_objects] == {"s3:GetObject", "s3:GetObjectVersion"}
    on_artifacts = {
        action for resource, actions in granted.items() if "ArtifactsBucket" in resource for action in actions
    }
    assert on_artifacts == {"s3:PutObject", "s3:AbortMultipartUpload"}, "the staging function writes run inputs only"
    kms = {action for actions in granted.values() for action in actions if action.startswith("kms:")}
    assert kms == {"kms:Decrypt", "kms:GenerateDataKey"}


def test_the_functions_third_party_packages_are_one_layer_that_every_function_uses() -> None:
    """Given the template, then the functions' CodeUri holds no requirements.txt (sam build would install it into
    every function's build definition, one per distinct Metadata), the dependencies layer is built by sam build
    for the functions' runtime and architecture, and every translated function lists that layer."""
    template = load_template()
    function_globals = template["Globals"]["Function"]
    assert not (PROJECT_ROOT / function_globals["CodeUri"] / "requirements.txt").exists()

    layer = template["Resources"]["FunctionDependencies"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert (PROJECT_ROOT / layer["Properties"]["ContentUri"] / "requirements.txt").is_file()
    assert layer["Metadata"]["BuildMethod"] == function_globals["Runtime"]
    assert [layer["Metadata"]["BuildArchitecture"]] == function_globals["Architectures"]
    assert layer["Properties"]["CompatibleRuntimes"] == [function_globals["Runtime"]]
    assert layer["Properties"]["CompatibleArchitectures"] == function_globals["Architectures"]

    translated = _translated(all_features=True)
    (layer_id,) = [
        name for name, item in translated["Resources"].items() if item["Type"] == "AWS::Lambda::LayerVersion"
    ]
    functions = {
        name: item for name, item in translated["Resources"].items() if item["Type"] == "AWS::Lambda::Function"
    }
    assert functions
    for name, function in functions.items():
        assert function["Properties"].get("Layers") == [{"Ref": layer_id}], name

"""Create template.yaml's stack in the emulator, as CloudFormation would create it in an account.

The template is translated with aws-sam-translator (as `sam deploy` has CloudFormation do), conditions and
intrinsic functions are resolved, and each resource is created through the emulator's API in dependency
order. This module coordinates: it creates the resources of services the emulator runs as moto has them
(IAM, KMS, SNS, SQS, ECR, logs, Secrets Manager) itself, and hands the others to the provisioning of their
service package (sagepipe.local.<service>.provisioning). The state machine is created from
statemachine/pipeline.asl.json itself, changed only by its DefinitionSubstitutions. Resource types that need
not exist locally are listed in NOT_NEEDED_LOCALLY with the reason; any other type without a handler is an
error, never a silent skip.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
import string
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sagepipe.cloudformation import Resolver
from sagepipe.local.account.state import LocalAccount
from sagepipe.local.cloudformation import custom_resources
from sagepipe.local.cloudformation import stacks as cloudformation_stacks
from sagepipe.local.cloudformation.parameters import check_parameters
from sagepipe.local.codebuild import provisioning as codebuild
from sagepipe.local.core import context
from sagepipe.local.core.emulator import ACCOUNT_ID, REGION, Emulator
from sagepipe.local.core.provisioning import Handler, ProvisionedResource, ProvisionError, Stack
from sagepipe.local.dynamodb import provisioning as dynamodb
from sagepipe.local.eventbridge import provisioning as eventbridge
from sagepipe.local.lambda_ import provisioning as lambda_
from sagepipe.local.s3 import provisioning as s3
from sagepipe.local.sagemaker import provisioning as sagemaker
from sagepipe.local.stepfunctions import provisioning as stepfunctions
from sagepipe.template import PROJECT_ROOT, definition_path, parse_template, state_machines, translate

apply_substitutions = stepfunctions.apply_substitutions

DEFAULT_STACK_NAME: Final = "sagepipe-local"

LOCAL_DEFAULT_PARAMETERS: Final[Mapping[str, str]] = {
    # Locally both code paths exist: the CodeCommit rule, and the GitHub webhook (which the UseGitHub condition
    # creates). The connection is never used locally: builds check out the local git repository.
    "GitHubConnectionArn": f"arn:aws:codeconnections:{REGION}:{ACCOUNT_ID}:connection/sagepipe-local",
    # GitHub names repositories owner/name (the webhook insists); the local CodeCommit events use the same name.
    "CodeRepositoryName": "sagepipe-local/training-code",
}

NOT_NEEDED_LOCALLY: Final[Mapping[str, str]] = {
    "AWS::IAM::Policy": "the emulator does not enforce IAM",
    "AWS::IAM::ManagedPolicy": "the emulator does not enforce IAM",
    "AWS::Lambda::Permission": "resource-based invoke permissions are IAM, which the emulator does not enforce",
}


@dataclass
class LocalStack:
    name: str
    parameters: dict[str, Any]
    resources: dict[str, ProvisionedResource]
    outputs: dict[str, Any]
    skipped: dict[str, str]

    def ref(self, logical_id: str) -> Any:
        return self.resources[logical_id].ref

    def attribute(self, logical_id: str, name: str) -> Any:
        return self.resources[logical_id].attributes[name]


def described(cloudformation: Any, name: str) -> LocalStack:
    """A provisioned stack as another process sees it: its parameters and outputs from DescribeStacks, its
    resources (logical id, type, physical id) from ListStackResources. The provisioner registers both."""
    (description,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    parameters = {item["ParameterKey"]: item.get("ParameterValue", "") for item in description.get("Parameters", [])}
    outputs = {item["OutputKey"]: item.get("OutputValue", "") for item in description.get("Outputs", [])}
    resources: dict[str, ProvisionedResource] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=name):
        for item in page["StackResourceSummaries"]:
            logical_id = item["LogicalResourceId"]
            resources[logical_id] = ProvisionedResource(
                logical_id, item["ResourceType"], item.get("PhysicalResourceId", "")
            )
    return LocalStack(name=name, parameters=parameters, resources=resources, outputs=outputs, skipped={})


def physical_name(stack: str, logical_id: str, *, lowercase: bool = False, limit: int = 64) -> str:
    """CloudFormation's naming scheme (<stack>-<LogicalId>-<SUFFIX>), deterministic per stack and logical id."""
    suffix = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:12].upper()
    name = f"{stack}-{logical_id}"[: limit - len(suffix) - 1] + f"-{suffix}"
    return name.lower() if lowercase else name


def _references(value: Any) -> Iterator[str]:
    """Logical ids a value refers to (Ref, GetAtt, and ${...} inside Fn::Sub)."""
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                yield item
            elif key == "Fn::GetAtt":
                yield (item.split(".")[0] if isinstance(item, str) else item[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                yield from re.findall(r"\$\{([A-Za-z0-9_]+)(?:\.[A-Za-z0-9_.]+)?\}", text)
                if not isinstance(item, str):
                    yield from _references(item[1])
            else:
                yield from _references(item)


def creation_order(resources: Mapping[str, Any]) -> list[str]:
    """Logical ids so that every resource comes after the ones it references or depends on."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in order:
            return
        if logical_id in visiting:
            raise ProvisionError(f"circular dependency through {logical_id}")
        visiting.add(logical_id)
        resource = resources[logical_id]
        depends = resource.get("DependsOn", [])
        needs = set(_references(resource.get("Properties", {}))) | set(
            [depends] if isinstance(depends, str) else depends
        )
        for dependency in sorted(needs & set(resources)):
            visit(dependency)
        visiting.discard(logical_id)
        order.append(logical_id)

    for logical_id in sorted(resources):
        visit(logical_id)
    return order


def _generate_secret(spec: Mapping[str, Any]) -> str:
    length = int(spec.get("PasswordLength", 32))
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation", False):
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    excluded = set(spec.get("ExcludeCharacters", ""))
    alphabet = "".join(char for char in alphabet if char not in excluded)
    value = "".join(secrets.choice(alphabet) for _ in range(length))
    key = spec.get("GenerateStringKey")
    if key:
        template = json.loads(spec.get("SecretStringTemplate", "{}"))
        return json.dumps(template | {key: value})
    return value


@dataclass
class _Provisioner:
    emulator: Emulator
    stack_name: str
    project_root: Path
    translated: dict[str, Any]
    sam_template: dict[str, Any]
    parameters: dict[str, Any]
    created: dict[str, ProvisionedResource] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)
    """One client per service for the whole run (one thread creates the stack; building a client costs ms)."""

    def __post_init__(self) -> None:
        self.resolver = Resolver(
            self.translated,
            self.parameters,
            {
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::Partition": "aws",
                "AWS::StackName": self.stack_name,
                "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{self.stack_name}/local",
                "AWS::URLSuffix": "amazonaws.com",
            },
            resource_ref=lambda logical_id: self.created[logical_id].ref,
            resource_attribute=self._attribute,
        )

    def _attribute(self, logical_id: str, name: str) -> Any:
        resource = self.created[logical_id]
        if name not in resource.attributes:
            raise ProvisionError(f"{logical_id} ({resource.resource_type}) has no attribute {name} locally")
        return resource.attributes[name]

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.emulator.client(service)
        return self._clients[service]

    def identifiers_seeded(self, label: str) -> AbstractContextManager[None]:
        return self.emulator.identifiers_seeded(f"{self.stack_name}/{label}")

    def name(self, logical_id: str, *, lowercase: bool = False, limit: int = 64) -> str:
        return physical_name(self.stack_name, logical_id, lowercase=lowercase, limit=limit)

    def run(self) -> LocalStack:
        resources = self.translated["Resources"]
        for logical_id in creation_order(resources):
            resource = resources[logical_id]
            if not self.resolver.resource_enabled(resource):
                self.skipped[logical_id] = f"condition {resource['Condition']} is false"
                continue
            kind = resource["Type"]
            properties = self.resolver.resolve(resource.get("Properties", {}))
            handler = _HANDLERS.get(kind)
            if handler is not None:
                self.created[logical_id] = handler(self, logical_id, properties)
            elif kind in NOT_NEEDED_LOCALLY:
                self.created[logical_id] = _not_needed(self, logical_id, kind, properties)
                self.skipped[logical_id] = NOT_NEEDED_LOCALLY[kind]
            else:
                raise ProvisionError(
                    f"{logical_id}: resource type {kind} has no local handler and is not in NOT_NEEDED_LOCALLY"
                )
        outputs = {
            name: self.resolver.resolve(output["Value"])
            for name, output in self.translated.get("Outputs", {}).items()
            if "Condition" not in output or self.resolver.condition(output["Condition"])
        }
        return LocalStack(self.stack_name, self.parameters, self.created, outputs, self.skipped)


def _not_needed(
    provisioner: _Provisioner, logical_id: str, kind: str, properties: dict[str, Any]
) -> ProvisionedResource:
    return ProvisionedResource(logical_id, kind, provisioner.name(logical_id), {}, False)


# ------------------------------------------------------------------------------------------ handlers
def _iam_role(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    # moto's Lambda refuses a role that does not exist, so roles are created. Their policies are not: the
    # emulator does not enforce IAM (tests/static checks the policies instead).
    iam = p.client("iam")
    name = props.get("RoleName") or p.name(logical_id)
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))[
        "Role"
    ]
    return ProvisionedResource(logical_id, "AWS::IAM::Role", name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})


def _kms_key(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    kms = p.client("kms")
    # The key's ARN is in the state machine's definition (PipelineKeyArn), and moto parses a definition it has not
    # seen for about a second (stepfunctions.program_cache). A key id that is the same each time this stack is
    # provisioned into a reset emulator keeps that definition the same, so it is parsed once. The number of keys
    # in the account is part of the seed: a key created next to existing ones never gets an id already taken.
    existing = len(kms.list_keys(Limit=1000)["Keys"])
    with p.identifiers_seeded(f"{logical_id}/{existing}"):
        key = kms.create_key(Description=props.get("Description", ""), Policy=json.dumps(props["KeyPolicy"]))[
            "KeyMetadata"
        ]
    if props.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyId"])
    return ProvisionedResource(logical_id, "AWS::KMS::Key", key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]})


def _kms_alias(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    p.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    return ProvisionedResource(logical_id, "AWS::KMS::Alias", props["AliasName"])


def _sns_topic(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    attributes = {key: str(props[key]) for key in ("KmsMasterKeyId", "DisplayName") if key in props}
    name = props.get("TopicName") or p.name(logical_id, limit=256)
    arn = p.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    return ProvisionedResource(logical_id, "AWS::SNS::Topic", arn, {"TopicArn": arn, "TopicName": name})


def _sns_topic_policy(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    for topic in props["Topics"]:
        p.client("sns").set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
        )
    return ProvisionedResource(logical_id, "AWS::SNS::TopicPolicy", logical_id)


def _sns_subscription(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    arn = p.client("sns").subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"])[
        "SubscriptionArn"
    ]
    return ProvisionedResource(logical_id, "AWS::SNS::Subscription", arn)


def _sqs_queue(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    sqs = p.client("sqs")
    name = props.get("QueueName") or p.name(logical_id, limit=80)
    attributes = {
        key: str(props[key])
        for key in ("KmsMasterKeyId", "MessageRetentionPeriod", "VisibilityTimeout", "DelaySeconds")
        if key in props
    }
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return ProvisionedResource(logical_id, "AWS::SQS::Queue", url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def _sqs_queue_policy(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    for queue_url in props["Queues"]:
        p.client("sqs").set_queue_attributes(
            QueueUrl=queue_url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
        )
    return ProvisionedResource(logical_id, "AWS::SQS::QueuePolicy", logical_id)


def _ecr_repository(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    ecr = p.client("ecr")
    name = props.get("RepositoryName") or p.name(logical_id, lowercase=True, limit=256)
    request: dict[str, Any] = {
        "repositoryName": name,
        "imageTagMutability": props.get("ImageTagMutability", "MUTABLE"),
        "imageScanningConfiguration": {
            "scanOnPush": bool(props.get("ImageScanningConfiguration", {}).get("ScanOnPush"))
        },
    }
    encryption = props.get("EncryptionConfiguration")
    if encryption:
        request["encryptionConfiguration"] = {"encryptionType": encryption["EncryptionType"]}
        if "KmsKey" in encryption:
            request["encryptionConfiguration"]["kmsKey"] = encryption["KmsKey"]
    repository = ecr.create_repository(**request)["repository"]
    lifecycle = props.get("LifecyclePolicy", {}).get("LifecyclePolicyText")
    if lifecycle:
        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=lifecycle)
    return ProvisionedResource(
        logical_id,
        "AWS::ECR::Repository",
        name,
        {"Arn": repository["repositoryArn"], "RepositoryUri": repository["repositoryUri"]},
    )


def _log_group(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    logs = p.client("logs")
    name = props.get("LogGroupName") or p.name(logical_id, limit=512)
    request = {"logGroupName": name} | ({"kmsKeyId": props["KmsKeyId"]} if "KmsKeyId" in props else {})
    logs.create_log_group(**request)
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"
    return ProvisionedResource(logical_id, "AWS::Logs::LogGroup", name, {"Arn": arn})


def _logs_resource_policy(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    document = props["PolicyDocument"]
    p.client("logs").put_resource_policy(
        policyName=props["PolicyName"], policyDocument=document if isinstance(document, str) else json.dumps(document)
    )
    return ProvisionedResource(logical_id, "AWS::Logs::ResourcePolicy", props["PolicyName"])


def _secret(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    name = props.get("Name") or p.name(logical_id)
    value = props.get("SecretString") or _generate_secret(props.get("GenerateSecretString", {}))
    request = {"Name": name, "SecretString": value} | ({"KmsKeyId": props["KmsKeyId"]} if "KmsKeyId" in props else {})
    arn = p.client("secretsmanager").create_secret(**request)["ARN"]
    return ProvisionedResource(logical_id, "AWS::SecretsManager::Secret", arn, {"Id": arn})


_HANDLERS: Final[Mapping[str, Handler]] = {
    # Services without a package of their own (the emulator runs them as moto has them): created here.
    "AWS::IAM::Role": _iam_role,
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": _kms_alias,
    "AWS::SNS::Topic": _sns_topic,
    "AWS::SNS::TopicPolicy": _sns_topic_policy,
    "AWS::SNS::Subscription": _sns_subscription,
    "AWS::SQS::Queue": _sqs_queue,
    "AWS::SQS::QueuePolicy": _sqs_queue_policy,
    "AWS::ECR::Repository": _ecr_repository,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::Logs::ResourcePolicy": _logs_resource_policy,
    "AWS::SecretsManager::Secret": _secret,
    # Services with a package: each package provisions its own resources.
    **s3.HANDLERS,
    **dynamodb.HANDLERS,
    **eventbridge.HANDLERS,
    **lambda_.HANDLERS,
    **codebuild.HANDLERS,
    **stepfunctions.HANDLERS,
    **sagemaker.HANDLERS,
    **custom_resources.HANDLERS,
}


_MAX_TRANSLATIONS: Final = 16


@dataclass
class Translations:
    """The runtime's memo of template parses and translations. Both depend only on text (template.yaml's, and
    each state machine's definition file's) and parameters, so a test that provisions the stack again, after a
    reset, does not parse and translate again; a changed file is a new key."""

    parsed: dict[str, dict[str, Any]] = field(default_factory=dict)
    translated: dict[tuple[str, ...], tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def translated_template(path: Path, parameters: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(The SAM template as load_template parses it, its translation as translate makes it), fresh copies of
    what the memo keeps."""
    memo = context.current().memo(Translations)
    text = path.read_text(encoding="utf-8")
    with memo.lock:
        parsed = memo.parsed.get(text)
    if parsed is None:
        parsed = parse_template(text, path)
        with memo.lock:
            memo.parsed = {text: parsed}  # only the latest text: an edited template makes the old one useless
    definitions = [path.read_text(encoding="utf-8") for path in map(definition_path, state_machines(parsed).values())]
    key = (text, json.dumps(dict(parameters), sort_keys=True), *definitions)
    with memo.lock:
        found = memo.translated.get(key)
    if found is None:
        sam_template = copy.deepcopy(parsed)
        found = (sam_template, translate(sam_template, parameters))
        with memo.lock:
            if len(memo.translated) >= _MAX_TRANSLATIONS:
                memo.translated.pop(next(iter(memo.translated)))
            memo.translated[key] = found
    return copy.deepcopy(found[0]), copy.deepcopy(found[1])


def provision(
    emulator: Emulator,
    *,
    parameters: Mapping[str, str] | None = None,
    stack_name: str = DEFAULT_STACK_NAME,
    project_root: Path = PROJECT_ROOT,
    repository: Path | None = None,
) -> LocalStack:
    """Create the template's stack in a running emulator. `repository` is the git repository builds use."""
    chosen = {**LOCAL_DEFAULT_PARAMETERS, **(parameters or {})}
    sam_template, translated = translated_template(project_root / "template.yaml", chosen)
    declared = sam_template.get("Parameters", {})
    values = {name: spec.get("Default") for name, spec in declared.items()} | chosen
    check_parameters(declared, values)
    runtime = context.current()
    runtime.repository = repository or project_root
    connection = str(values.get("GitHubConnectionArn") or "")
    if connection:
        # The stack's connection exists in the local account, handshake done (builds clone the local repository).
        runtime.state(LocalAccount).add_connection(connection, f"{stack_name}-github")
    stack = _Provisioner(emulator, stack_name, project_root, translated, sam_template, values).run()
    cloudformation_stacks.register(stack, emulator.client("cloudformation"), ACCOUNT_ID, REGION)
    return stack

"""Create template.yaml's stack in the emulator, as CloudFormation would create it in an account.

The template is translated with aws-sam-translator (as `sam deploy` has CloudFormation do), conditions and
intrinsic functions are resolved, and each resource is created through the emulator's API in dependency
order. The state machine is created from statemachine/pipeline.asl.json itself, changed only by its
DefinitionSubstitutions. Resource types that need not exist locally are listed in NOT_NEEDED_LOCALLY with
the reason; any other type without a handler is an error, never a silent skip.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import string
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sagepipe.local import context
from sagepipe.local.context import BuildProjectSpec, FunctionSpec
from sagepipe.local.emulator import ACCOUNT_ID, REGION, Emulator
from sagepipe.local.intrinsics import Resolver
from sagepipe.template import PACKAGED_CODE_BUCKET, PROJECT_ROOT, load_template, state_machines, translate

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


class ProvisionError(RuntimeError):
    """The template cannot be created locally."""


@dataclass
class ProvisionedResource:
    logical_id: str
    resource_type: str
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    created: bool = True


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


def _zip_placeholder() -> bytes:
    # moto stores function code; the local Lambda runtime runs the handler from its CodeUri instead.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "sagepipe local: the handler runs from the project's CodeUri directory\n")
    return buffer.getvalue()


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
        return self.emulator.client(service)

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
def _iam_role(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    # moto's Lambda refuses a role that does not exist, so roles are created. Their policies are not: the
    # emulator does not enforce IAM (tests/static checks the policies instead).
    iam = p.client("iam")
    name = props.get("RoleName") or p.name(logical_id)
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))[
        "Role"
    ]
    return ProvisionedResource(logical_id, "AWS::IAM::Role", name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})


def _kms_key(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    kms = p.client("kms")
    key = kms.create_key(Description=props.get("Description", ""), Policy=json.dumps(props["KeyPolicy"]))["KeyMetadata"]
    if props.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyId"])
    return ProvisionedResource(logical_id, "AWS::KMS::Key", key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]})


def _kms_alias(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    p.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    return ProvisionedResource(logical_id, "AWS::KMS::Alias", props["AliasName"])


def _object_lock(s3: Any, bucket: str, lock: dict[str, Any]) -> None:
    """CloudFormation's ObjectLockConfiguration is the API's; the retention period arrives resolved as text."""
    configuration: dict[str, Any] = {"ObjectLockEnabled": lock["ObjectLockEnabled"]}
    retention = lock.get("Rule", {}).get("DefaultRetention")
    if retention:
        configuration["Rule"] = {
            "DefaultRetention": {key: (value if key == "Mode" else int(value)) for key, value in retention.items()}
        }
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=configuration)


def _s3_bucket(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    s3 = p.client("s3")
    name = props.get("BucketName") or p.name(logical_id, lowercase=True, limit=63)
    # Object Lock can only be turned on when the bucket is created; CloudFormation's ObjectLockEnabled is the
    # CreateBucket request's ObjectLockEnabledForBucket (which also turns versioning on).
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=bool(props.get("ObjectLockEnabled", False)))
    if "ObjectLockConfiguration" in props:
        _object_lock(s3, name, props["ObjectLockConfiguration"])
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    if "BucketEncryption" in props:
        # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
        rules = [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            | ({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {})
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
    if "LoggingConfiguration" in props:
        logging_config = props["LoggingConfiguration"]
        s3.put_bucket_logging(
            Bucket=name,
            BucketLoggingStatus={
                "LoggingEnabled": {
                    "TargetBucket": logging_config["DestinationBucketName"],
                    "TargetPrefix": logging_config.get("LogFilePrefix", ""),
                }
            },
        )
    if "LifecycleConfiguration" in props:
        rules = []
        for rule in props["LifecycleConfiguration"]["Rules"]:
            converted: dict[str, Any] = {
                "ID": rule.get("Id", "rule"),
                "Status": rule["Status"],
                "Filter": {"Prefix": ""},
            }
            if "ExpirationInDays" in rule:
                converted["Expiration"] = {"Days": rule["ExpirationInDays"]}
            if "NoncurrentVersionExpiration" in rule:
                converted["NoncurrentVersionExpiration"] = rule["NoncurrentVersionExpiration"]
            if "AbortIncompleteMultipartUpload" in rule:
                converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
            rules.append(converted)
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
    arn = f"arn:aws:s3:::{name}"
    return ProvisionedResource(
        logical_id,
        "AWS::S3::Bucket",
        name,
        {
            "Arn": arn,
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
        },
    )


def _s3_bucket_policy(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    p.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"]))
    return ProvisionedResource(logical_id, "AWS::S3::BucketPolicy", props["Bucket"])


def _dynamodb_table(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    dynamodb = p.client("dynamodb")
    name = props.get("TableName") or p.name(logical_id)
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
        "DeletionProtectionEnabled": bool(props.get("DeletionProtectionEnabled", False)),
    }
    sse = props.get("SSESpecification")
    if sse:
        request["SSESpecification"] = {"Enabled": sse.get("SSEEnabled", False), "SSEType": sse.get("SSEType", "KMS")}
        if "KMSMasterKeyId" in sse:
            request["SSESpecification"]["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if index_kind in props:
            request[index_kind] = props[index_kind]
    description = dynamodb.create_table(**request)["TableDescription"]
    pitr = props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
    if pitr:
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    return ProvisionedResource(
        logical_id,
        "AWS::DynamoDB::Table",
        name,
        {"Arn": description["TableArn"], "StreamArn": description.get("LatestStreamArn")},
    )


def _sns_topic(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    attributes = {key: str(props[key]) for key in ("KmsMasterKeyId", "DisplayName") if key in props}
    name = props.get("TopicName") or p.name(logical_id, limit=256)
    arn = p.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    return ProvisionedResource(logical_id, "AWS::SNS::Topic", arn, {"TopicArn": arn, "TopicName": name})


def _sns_topic_policy(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    for topic in props["Topics"]:
        p.client("sns").set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
        )
    return ProvisionedResource(logical_id, "AWS::SNS::TopicPolicy", logical_id)


def _sns_subscription(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    arn = p.client("sns").subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"])[
        "SubscriptionArn"
    ]
    return ProvisionedResource(logical_id, "AWS::SNS::Subscription", arn)


def _sqs_queue(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
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


def _sqs_queue_policy(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    for queue_url in props["Queues"]:
        p.client("sqs").set_queue_attributes(
            QueueUrl=queue_url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
        )
    return ProvisionedResource(logical_id, "AWS::SQS::QueuePolicy", logical_id)


def _ecr_repository(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
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


def _log_group(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    logs = p.client("logs")
    name = props.get("LogGroupName") or p.name(logical_id, limit=512)
    request = {"logGroupName": name} | ({"kmsKeyId": props["KmsKeyId"]} if "KmsKeyId" in props else {})
    logs.create_log_group(**request)
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"
    return ProvisionedResource(logical_id, "AWS::Logs::LogGroup", name, {"Arn": arn})


def _code_dir(p: _Provisioner, code: Mapping[str, Any]) -> Path:
    if code.get("S3Bucket") != PACKAGED_CODE_BUCKET:
        raise ProvisionError(f"function code {code} is not a local CodeUri; the local runtime runs local code only")
    return p.project_root / str(code["S3Key"]).removesuffix(".zip")


def _lambda_function(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    from sagepipe.local.adapters import lambda_runtime

    name = props.get("FunctionName") or p.name(logical_id)
    environment = {key: str(value) for key, value in props.get("Environment", {}).get("Variables", {}).items()}
    response = p.client("lambda").create_function(
        FunctionName=name,
        Runtime=props["Runtime"],
        Role=props["Role"],
        Handler=props["Handler"],
        Code={"ZipFile": _zip_placeholder()},
        Timeout=int(props.get("Timeout", 3)),
        MemorySize=int(props.get("MemorySize", 128)),
        Environment={"Variables": environment},
        Architectures=props.get("Architectures", ["x86_64"]),
    )
    spec = FunctionSpec(
        name=name,
        arn=response["FunctionArn"],
        code_dir=_code_dir(p, props["Code"]),
        handler=props["Handler"],
        environment=environment,
        timeout_seconds=int(props.get("Timeout", 3)),
        memory_mb=int(props.get("MemorySize", 128)),
    )
    context.current().functions[name] = spec
    lambda_runtime.warm(spec)
    return ProvisionedResource(logical_id, "AWS::Lambda::Function", name, {"Arn": response["FunctionArn"]})


def _lambda_url(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    function = props["TargetFunctionArn"]
    request: dict[str, Any] = {"FunctionName": function, "AuthType": props["AuthType"]}
    if "Cors" in props:
        request["Cors"] = props["Cors"]
    response = p.client("lambda").create_function_url_config(**request)
    return ProvisionedResource(
        logical_id,
        "AWS::Lambda::Url",
        response["FunctionArn"],
        {"FunctionUrl": response["FunctionUrl"], "FunctionArn": response["FunctionArn"]},
    )


def _codebuild_project(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    name = props.get("Name") or p.name(logical_id, limit=150)
    variables = {item["Name"]: str(item["Value"]) for item in props["Environment"].get("EnvironmentVariables", [])}
    p.client("codebuild").create_project(
        name=name,
        source={
            "type": props["Source"]["Type"],
            "location": props["Source"].get("Location", ""),
            "buildspec": props["Source"].get("BuildSpec", "buildspec.yml"),
        },
        artifacts={"type": props["Artifacts"]["Type"]},
        environment={
            "type": props["Environment"]["Type"],
            "image": props["Environment"]["Image"],
            "computeType": props["Environment"]["ComputeType"],
            "environmentVariables": [
                {"name": key, "value": value, "type": "PLAINTEXT"} for key, value in variables.items()
            ],
        },
        serviceRole=props["ServiceRole"],
    )
    context.current().build_projects[name] = BuildProjectSpec(
        name=name,
        environment=variables | {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION},
        timeout_seconds=int(props.get("TimeoutInMinutes", 60)) * 60,
        buildspec=props["Source"].get("BuildSpec", "buildspec.yml"),
    )
    arn = f"arn:aws:codebuild:{REGION}:{ACCOUNT_ID}:project/{name}"
    return ProvisionedResource(logical_id, "AWS::CodeBuild::Project", name, {"Arn": arn})


def apply_substitutions(definition: str, substitutions: Mapping[str, Any]) -> str:
    """What CloudFormation does with DefinitionSubstitutions: replace ${Key} for each defined key."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        return str(substitutions[key]) if key in substitutions else match.group(0)

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, definition)


def _state_machine(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    sam_resource = state_machines(p.sam_template).get(logical_id)
    if sam_resource is None:
        raise ProvisionError(f"{logical_id}: state machines must come from the SAM template with a DefinitionUri")
    definition_file = p.project_root / sam_resource["Properties"]["DefinitionUri"]
    definition = apply_substitutions(
        definition_file.read_text(encoding="utf-8"), props.get("DefinitionSubstitutions", {})
    )
    name = props.get("StateMachineName") or p.name(logical_id, limit=80)
    arn = p.client("stepfunctions").create_state_machine(
        name=name, definition=definition, roleArn=props["RoleArn"], type=props.get("StateMachineType", "STANDARD")
    )["stateMachineArn"]
    return ProvisionedResource(logical_id, "AWS::StepFunctions::StateMachine", arn, {"Arn": arn, "Name": name})


def _logs_resource_policy(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    document = props["PolicyDocument"]
    p.client("logs").put_resource_policy(
        policyName=props["PolicyName"], policyDocument=document if isinstance(document, str) else json.dumps(document)
    )
    return ProvisionedResource(logical_id, "AWS::Logs::ResourcePolicy", props["PolicyName"])


def _events_rule(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    events = p.client("events")
    name = props.get("Name") or p.name(logical_id)
    bus = props.get("EventBusName", "default")
    arn = events.put_rule(
        Name=name, EventPattern=json.dumps(props["EventPattern"]), State=props.get("State", "ENABLED"), EventBusName=bus
    )["RuleArn"]
    targets = []
    for target in props.get("Targets", []):
        converted = {key: target[key] for key in ("Id", "Arn", "RoleArn", "Input", "InputPath") if key in target}
        for key in ("DeadLetterConfig", "RetryPolicy", "InputTransformer"):
            if key in target:
                converted[key] = target[key]
        targets.append(converted)
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
    return ProvisionedResource(logical_id, "AWS::Events::Rule", name, {"Arn": arn})


def _secret(p: _Provisioner, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    name = props.get("Name") or p.name(logical_id)
    value = props.get("SecretString") or _generate_secret(props.get("GenerateSecretString", {}))
    request = {"Name": name, "SecretString": value} | ({"KmsKeyId": props["KmsKeyId"]} if "KmsKeyId" in props else {})
    arn = p.client("secretsmanager").create_secret(**request)["ARN"]
    return ProvisionedResource(logical_id, "AWS::SecretsManager::Secret", arn, {"Id": arn})


_HANDLERS: Final[Mapping[str, Callable[[_Provisioner, str, dict[str, Any]], ProvisionedResource]]] = {
    "AWS::IAM::Role": _iam_role,
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": _kms_alias,
    "AWS::S3::Bucket": _s3_bucket,
    "AWS::S3::BucketPolicy": _s3_bucket_policy,
    "AWS::DynamoDB::Table": _dynamodb_table,
    "AWS::SNS::Topic": _sns_topic,
    "AWS::SNS::TopicPolicy": _sns_topic_policy,
    "AWS::SNS::Subscription": _sns_subscription,
    "AWS::SQS::Queue": _sqs_queue,
    "AWS::SQS::QueuePolicy": _sqs_queue_policy,
    "AWS::ECR::Repository": _ecr_repository,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::Logs::ResourcePolicy": _logs_resource_policy,
    "AWS::Lambda::Function": _lambda_function,
    "AWS::Lambda::Url": _lambda_url,
    "AWS::CodeBuild::Project": _codebuild_project,
    "AWS::StepFunctions::StateMachine": _state_machine,
    "AWS::Events::Rule": _events_rule,
    "AWS::SecretsManager::Secret": _secret,
}


def provision(
    emulator: Emulator,
    *,
    parameters: Mapping[str, str] | None = None,
    stack_name: str = DEFAULT_STACK_NAME,
    project_root: Path = PROJECT_ROOT,
    repository: Path | None = None,
) -> LocalStack:
    """Create the template's stack in a running emulator. `repository` is the git repository builds use."""
    sam_template = load_template(project_root / "template.yaml")
    chosen = {**LOCAL_DEFAULT_PARAMETERS, **(parameters or {})}
    translated = translate(sam_template, chosen)
    values = {name: spec.get("Default") for name, spec in sam_template.get("Parameters", {}).items()} | chosen
    context.current().repository = repository or project_root
    return _Provisioner(emulator, stack_name, project_root, translated, sam_template, values).run()

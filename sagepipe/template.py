"""Reading template.yaml the way CloudFormation will: parsed, ASL inlined, and translated by aws-sam-translator.

Both the static checks (cfn-lint and checkov need the translated template, because they skip IAM and ASL
checks on a SAM template) and the local provisioner start from here, so the stack that is linted is the
stack that runs locally.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ProjectNotFoundError(RuntimeError):
    """No sagepipe project (a directory with template.yaml) where a command needs one."""


def find_project_root(start: Path | None = None) -> Path | None:
    """The project the commands work on: the source checkout sagepipe runs from (an editable install, or the
    repository itself), else the nearest of `start` (the current directory) and its parents holding template.yaml.
    None when there is none (sagepipe installed elsewhere and run outside a project)."""
    source = Path(__file__).resolve().parent.parent
    if (source / "template.yaml").is_file():
        return source
    here = (start or Path.cwd()).resolve()
    return next((candidate for candidate in (here, *here.parents) if (candidate / "template.yaml").is_file()), None)


PROJECT_ROOT = find_project_root() or Path.cwd()
"""The project's root; when no project is found, the current directory, and `require_project()` says so."""
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"


def require_project() -> Path:
    """PROJECT_ROOT, or ProjectNotFoundError with one line saying what is missing."""
    if not TEMPLATE_PATH.is_file():
        raise ProjectNotFoundError(
            f"no template.yaml in {Path.cwd()} or any directory above it: run sagepipe from a sagepipe project "
            "(the repository with template.yaml, functions/, statemachine/ and container/)"
        )
    return PROJECT_ROOT


def project_root() -> Path:
    """The project a command works on (require_project())."""
    return require_project()


STATE_MACHINE_TYPE = "AWS::Serverless::StateMachine"

ALL_FEATURES_PARAMETERS: Mapping[str, str] = {
    # Every Condition in template.yaml true, so that checkov (which evaluates Conditions with the parameter
    # defaults) scans the resources behind them too.
    "Environment": "prod",
    "GitHubConnectionArn": (
        "arn:aws:codeconnections:us-east-1:123456789012:connection/00000000-0000-0000-0000-000000000000"
    ),
    "CodeRepositoryName": "example-org/training-code",
    "NotificationEmail": "ml-team@example.com",
    "DataTriggerMode": "marker",
    "NormaliseTriggerReservedConcurrency": "50",
    "DigestArtifactReservedConcurrency": "10",
    "StageDatasetReservedConcurrency": "10",
    "SealRecordReservedConcurrency": "10",
    "EvaluateGateReservedConcurrency": "10",
    "RecordModelDecisionReservedConcurrency": "10",
    "CacheKeyReservedConcurrency": "10",
    "GitHubWebhookReservedConcurrency": "10",
}


class TemplateError(ValueError):
    """template.yaml is not what sagepipe expects."""


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse a CloudFormation YAML template, turning short-form tags (!Ref, !Sub, ...) into their long form."""
    return parse_template(path.read_text(encoding="utf-8"), path)


def parse_template(text: str, path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """`load_template` of a template's text (`path` names it in errors).

    The same parse as aws-sam-translator's `yaml_parse` (a safe loader with its intrinsic-tag constructor), on
    libyaml's parser when PyYAML has it: ten times faster than the pure-Python one on template.yaml, which every
    command and many tests parse. tests/static/test_template.py checks that both give the same template.
    """
    from samtranslator.yaml_helper import intrinsics_multi_constructor

    class TemplateLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        """A safe loader that reads !Ref, !Sub, ... as their long forms (a subclass: yaml.SafeLoader is left as
        it was)."""

    TemplateLoader.add_multi_constructor("!", intrinsics_multi_constructor)
    template = yaml.load(text, Loader=TemplateLoader)  # noqa: S506 (a SafeLoader with one more constructor)
    if not isinstance(template, dict) or "Resources" not in template:
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources)")
    return template


def state_machines(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == STATE_MACHINE_TYPE
    }


def definition_path(resource: Mapping[str, Any], root: Path = PROJECT_ROOT) -> Path:
    uri = resource.get("Properties", {}).get("DefinitionUri")
    if not isinstance(uri, str):
        raise TemplateError("a state machine must load its definition from a file (DefinitionUri: path)")
    return root / uri


def inline_definitions(template: Mapping[str, Any], root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """A copy of the template with each DefinitionUri file inlined as Definition.

    The translator refuses a local DefinitionUri (sam build would upload it to S3), and cfn-lint only
    validates ASL it can see in the template.
    """
    inlined = copy.deepcopy(dict(template))
    for resource in state_machines(inlined).values():
        properties = resource["Properties"]
        properties["Definition"] = json.loads(definition_path(resource, root).read_text(encoding="utf-8"))
        del properties["DefinitionUri"]
    return inlined


PACKAGED_CODE_BUCKET = "sagepipe-packaged-code-placeholder"


LOCAL_CODE_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
"""The property that names a resource's local code, which `sam package` uploads, by SAM resource type."""


def as_packaged(template: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with local CodeUri (functions) and ContentUri (layers) paths replaced by S3 locations, as
    `sam package` would upload them.

    The translator only accepts packaged code; the placeholder bucket never leaves this machine.
    """
    packaged = copy.deepcopy(dict(template))
    holders = [("CodeUri", packaged.get("Globals", {}).get("Function", {}))]
    holders += [
        (LOCAL_CODE_PROPERTIES[resource["Type"]], resource.get("Properties", {}))
        for resource in packaged["Resources"].values()
        if resource.get("Type") in LOCAL_CODE_PROPERTIES
    ]
    for name, properties in holders:
        local_path = properties.get(name)
        if isinstance(local_path, str) and not local_path.startswith("s3://"):
            properties[name] = f"s3://{PACKAGED_CODE_BUCKET}/{local_path.strip('/')}.zip"
    return packaged


class _NoManagedPolicies:
    """The translator asks IAM for managed policies it does not know; sagepipe uses none, and we are offline."""

    def load(self) -> dict[str, str]:
        return {}


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    values = {name: spec["Default"] for name, spec in template.get("Parameters", {}).items() if "Default" in spec}
    values.update(overrides or {})
    unknown = set(overrides or {}) - set(template.get("Parameters", {}))
    if unknown:
        raise TemplateError(f"unknown parameters: {', '.join(sorted(unknown))}")
    return values


def with_defaults(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """A copy whose parameter defaults are replaced, for scanners that only evaluate defaults."""
    changed = copy.deepcopy(dict(template))
    for name, value in overrides.items():
        changed["Parameters"][name]["Default"] = value
    return changed


def translate(template: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Translate a SAM template to plain CloudFormation, offline (ASL inlined, no credentials)."""
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    translated: dict[str, Any] = transform(
        as_packaged(inline_definitions(template)), parameter_values(template, overrides), _NoManagedPolicies()
    )
    return translated


def definitions_as_objects(translated: Mapping[str, Any]) -> dict[str, Any]:
    """A copy whose state machine definitions are JSON objects instead of Fn::Join-ed text lines.

    The translator turns an inlined Definition into `DefinitionString: {Fn::Join: ["\\n", [lines]]}`, which
    CloudFormation reassembles into the same document. cfn-lint only validates ASL given as a `Definition`
    object (E3601); on the joined form it checks nothing, and on a 700-line Join it exceeds Python's recursion
    limit. `Definition` plus `DefinitionSubstitutions` is an equivalent, valid AWS::StepFunctions::StateMachine.
    """
    converted = copy.deepcopy(dict(translated))
    for resource in converted["Resources"].values():
        properties = resource.get("Properties", {})
        joined = properties.get("DefinitionString")
        if resource.get("Type") != "AWS::StepFunctions::StateMachine" or not isinstance(joined, dict):
            continue
        separator, parts = joined["Fn::Join"]
        if not all(isinstance(part, str) for part in parts):
            raise TemplateError("a state machine definition contains intrinsic functions; keep them in substitutions")
        properties["Definition"] = json.loads(separator.join(parts))
        del properties["DefinitionString"]
    return converted


@dataclass(frozen=True)
class TranslatedTemplates:
    translated: Path
    translated_all_features: Path
    template_all_features: Path


def write_translations(out_dir: Path) -> TranslatedTemplates:
    """Write the files that cfn-lint and checkov scan besides template.yaml."""
    out_dir.mkdir(parents=True, exist_ok=True)
    template = load_template()
    all_features = with_defaults(template, ALL_FEATURES_PARAMETERS)
    paths = TranslatedTemplates(
        translated=out_dir / "translated.json",
        translated_all_features=out_dir / "translated.all-features.json",
        template_all_features=out_dir / "template.all-features.yaml",
    )
    for path, source in ((paths.translated, template), (paths.translated_all_features, all_features)):
        path.write_text(json.dumps(definitions_as_objects(translate(source)), indent=2) + "\n", encoding="utf-8")
    # Long-form intrinsics ({"Ref": ...}) are valid CloudFormation YAML, and the DefinitionUri stays relative
    # to the project root, so the copy lives next to the original's resources.
    paths.template_all_features.write_text(yaml.safe_dump(all_features, sort_keys=False), encoding="utf-8")
    return paths


LAMBDA_UNRESERVED_MINIMUM = 100
"""Lambda keeps at least this many concurrent executions unreserved in every account and region: a
reservation that would leave fewer fails ("decreases account's UnreservedConcurrentExecution below its
minimum value of [100]"). https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html"""


def reserved_concurrency(template: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, int]:
    """The concurrent executions each function of the stack reserves, with these parameter values.

    Functions behind a false Condition, or whose reservation resolves to AWS::NoValue, reserve nothing and
    are left out.
    """
    from sagepipe.cloudformation import NO_VALUE, Resolver

    pseudo = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
    resolver = Resolver(template, parameter_values(template, overrides), pseudo | {"AWS::StackName": "sagepipe"})
    reserved: dict[str, int] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") not in {"AWS::Serverless::Function", "AWS::Lambda::Function"}:
            continue
        if not resolver.resource_enabled(resource):
            continue
        value = resource.get("Properties", {}).get("ReservedConcurrentExecutions")
        resolved: Any = NO_VALUE if value is None else resolver.resolve(value)
        if resolved is not NO_VALUE and resolved != "":
            reserved[logical_id] = int(str(resolved))
    return reserved


def runs_table_request(
    table_name: str, overrides: Mapping[str, str] | None = None, template: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A DynamoDB CreateTable request for template.yaml's RunsTable (keys, attributes, indexes), as
    CloudFormation would create it with these parameters: tests and bench/runs_queries.py build the very
    table the stack deploys."""
    from sagepipe.cloudformation import Resolver

    template = template or load_template()
    pseudo = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
    resolver = Resolver(template, parameter_values(template, overrides), pseudo | {"AWS::StackName": "sagepipe"})
    properties = template["Resources"]["RunsTable"]["Properties"]
    request: dict[str, Any] = {
        "TableName": table_name,
        "BillingMode": properties["BillingMode"],
        "KeySchema": resolver.resolve(properties["KeySchema"]),
        "AttributeDefinitions": resolver.resolve(properties["AttributeDefinitions"]),
    }
    indexes = resolver.resolve(properties.get("GlobalSecondaryIndexes", []))
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    return request

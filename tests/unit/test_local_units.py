"""Unit tests of the local runtime's pure parts: images, the provisioner's ordering and naming, CloudFormation
intrinsics, and the adapters' event, name and value shaping. No emulator; the Lambda runtime tests run handlers
from a temporary directory in this process.

Tests marked xfail(strict=True) pin a production bug found while writing them (see each reason): they pass
while the bug is there and fail, asking for the mark to go, once it is fixed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import stat
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.s3.notifications import S3NotificationEvent

from sagepipe.cloudformation import IntrinsicError, Resolver
from sagepipe.local.core import context
from sagepipe.local.core.context import RuntimeContext
from sagepipe.local.core.in_process import InProcessTransport
from sagepipe.local.core.provisioning import ProvisionError
from sagepipe.local.eventbridge import targets as eventbridge_targets
from sagepipe.local.images import (
    ImageError,
    ImageStore,
    context_digest,
    image_environment,
    manifest_for,
    read_dockerfile,
)
from sagepipe.local.lambda_ import runtime as lambda_runtime
from sagepipe.local.lambda_.runtime import FunctionSpec
from sagepipe.local.provisioner import (
    NOT_NEEDED_LOCALLY,
    _Provisioner,
    apply_substitutions,
    creation_order,
    physical_name,
)
from sagepipe.local.s3 import events as s3_events
from sagepipe.local.stepfunctions import aws_sdk
from sagepipe.template import PROJECT_ROOT
from tests.moto_objects import moto_rule

# ============================================================================================== images

TRAIN_DOCKERFILE = "FROM python:3.13-slim\nENV SAGEMAKER_PROGRAM=train.py\nCOPY train.py /opt/ml/code/train.py\n"


def test_the_project_dockerfile_runs_train_py_copied_into_opt_ml_code() -> None:
    """Given container/Dockerfile, then SageMaker would run train.py, the one file copied into /opt/ml/code."""
    program, copies = read_dockerfile((PROJECT_ROOT / "container" / "Dockerfile").read_text(encoding="utf-8"))
    assert program == "train.py"
    assert copies == [("train.py", "/opt/ml/code/train.py")]


@pytest.mark.parametrize(
    ("env_line", "program"),
    [
        pytest.param("ENV A=1 SAGEMAKER_PROGRAM=x.py", "x.py", id="key-value-pairs"),
        pytest.param("ENV SAGEMAKER_PROGRAM x.py", "x.py", id="legacy-space-form"),
        pytest.param('ENV SAGEMAKER_PROGRAM="my train.py"', "my train.py", id="quoted-value"),
        pytest.param("ENV PATH=/opt/venv/bin:$PATH \\\n    A=1 \\\n    SAGEMAKER_PROGRAM=x.py", "x.py", id="continued"),
        pytest.param("env SAGEMAKER_PROGRAM=x.py", "x.py", id="lowercase-keyword"),
    ],
)
def test_read_dockerfile_finds_sagemaker_program_in_every_env_form(env_line: str, program: str) -> None:
    found, _ = read_dockerfile(f"FROM base\n{env_line}\nCOPY x.py /opt/ml/code/\n")
    assert found == program


def test_the_last_sagemaker_program_wins() -> None:
    found, _ = read_dockerfile("ENV SAGEMAKER_PROGRAM=old.py\nENV SAGEMAKER_PROGRAM=new.py\nCOPY . /opt/ml/code\n")
    assert found == "new.py"


def test_read_dockerfile_ignores_copies_from_other_stages_and_outside_opt_ml_code() -> None:
    """A multi-stage COPY --from=builder (even into /opt/ml/code) is not from the build context."""
    dockerfile = textwrap.dedent(
        """\
        FROM python:3.13 AS builder
        RUN pip wheel -w /wheels numpy
        FROM python:3.13-slim
        COPY --from=builder /wheels /opt/ml/code/wheels
        COPY requirements.txt /tmp/requirements.txt
        COPY --chown=root:root train.py utils.py /opt/ml/code/
        # COPY secret.py /opt/ml/code/
        ENV SAGEMAKER_PROGRAM=train.py
        """
    )
    program, copies = read_dockerfile(dockerfile)
    assert program == "train.py"
    assert copies == [("train.py", "/opt/ml/code/"), ("utils.py", "/opt/ml/code/")]


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        pytest.param("FROM base\nCOPY train.py /opt/ml/code/\n", "SAGEMAKER_PROGRAM", id="no-program"),
        pytest.param(
            "FROM base\nENV SAGEMAKER_PROGRAM=\nCOPY train.py /opt/ml/code/\n", "SAGEMAKER_PROGRAM", id="empty"
        ),
        pytest.param("FROM base\nENV SAGEMAKER_PROGRAM=train.py\nCOPY train.py /app/\n", "/opt/ml/code", id="no-copy"),
    ],
)
def test_read_dockerfile_refuses_an_image_sagemaker_could_not_run(dockerfile: str, message: str) -> None:
    with pytest.raises(ImageError, match=re.escape(message)):
        read_dockerfile(dockerfile)


def test_a_copy_into_a_subdirectory_with_a_trailing_slash_lands_inside_it(tmp_path: Path) -> None:
    """Docker: `COPY train.py /opt/ml/code/src/` creates /opt/ml/code/src/train.py."""
    context_dir = _context(
        tmp_path / "ctx", "FROM b\nENV SAGEMAKER_PROGRAM=src/train.py\nCOPY train.py /opt/ml/code/src/\n"
    )
    image = ImageStore(tmp_path / "images").save(
        context_dir, digest="sha256:" + "1" * 64, repository_uri="repo", tag="t", commit="c"
    )
    assert (image.code_dir / "src" / "train.py").is_file()


def test_the_image_environment_is_the_final_stage_s_env() -> None:
    """Given container/Dockerfile, then the image's ENV is its final stage's, as the container starts with it (the
    builder stage's PIP_* settings are not in it)."""
    environment = image_environment((PROJECT_ROOT / "container" / "Dockerfile").read_text(encoding="utf-8"))
    assert {name: value for name, value in environment.items() if name != "PATH"} == {
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "SAGEMAKER_PROGRAM": "train.py",
    }


def test_an_image_saved_before_its_env_was_recorded_still_names_its_program(tmp_path: Path) -> None:
    """Given an image.json written without `environment` (an older state directory), then the image found has
    SAGEMAKER_PROGRAM as its ENV, which is all that was kept of it."""
    store = ImageStore(tmp_path / "images")
    digest = "sha256:" + "cd" * 32
    saved = store.save(_context(tmp_path / "ctx"), digest=digest, repository_uri="repo", tag="t", commit="c")
    metadata_file = saved.root / "image.json"
    record = json.loads(metadata_file.read_text(encoding="utf-8"))
    del record["environment"]
    metadata_file.write_text(json.dumps(record), encoding="utf-8")

    found = store.find(digest)

    assert found is not None
    assert found.environment == {"SAGEMAKER_PROGRAM": "train.py"}


def test_read_dockerfile_applies_build_arguments_and_stops_at_the_target_stage() -> None:
    """`docker build --build-arg PROGRAM=fit.py --target train`: the train stage's ENV, with the argument's value;
    without --target, the last stage; an unknown stage is Docker's error."""
    dockerfile = (
        "ARG BASE=python:3.13-slim\n"
        "FROM $BASE AS train\nARG PROGRAM=default.py\nENV SAGEMAKER_PROGRAM=$PROGRAM\nCOPY fit.py /opt/ml/code/\n"
        "FROM $BASE AS serve\nENV SAGEMAKER_PROGRAM=serve.py\nCOPY serve.py /opt/ml/code/\n"
    )

    trained, train_copies = read_dockerfile(dockerfile, build_args={"PROGRAM": "fit.py"}, target="train")
    default, _ = read_dockerfile(dockerfile, target="TRAIN")
    last, _ = read_dockerfile(dockerfile, build_args={"PROGRAM": "fit.py"})

    assert (trained, train_copies) == ("fit.py", [("fit.py", "/opt/ml/code/")])
    assert default == "default.py"
    assert last == "serve.py"
    with pytest.raises(ImageError, match='target stage "nope" could not be found'):
        read_dockerfile(dockerfile, target="nope")


def test_a_comment_inside_a_continued_env_is_skipped_as_docker_does() -> None:
    program, _ = read_dockerfile("ENV A=1 \\\n# why B\n    SAGEMAKER_PROGRAM=x.py\nCOPY x.py /opt/ml/code/\n")
    assert program == "x.py"


def _context(root: Path, dockerfile: str = TRAIN_DOCKERFILE) -> Path:
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    (root / "train.py").write_text("print('training')\n", encoding="utf-8")
    (root / "tests").mkdir()
    (root / "tests" / "test_train.py").write_text("def test_nothing():\n    pass\n", encoding="utf-8")
    return root


def test_context_digest_is_a_deterministic_content_digest(tmp_path: Path) -> None:
    """Same files, same digest, wherever they are; compiled caches do not count."""
    first = _context(tmp_path / "a")
    second = tmp_path / "b"
    shutil.copytree(first, second)
    (second / "__pycache__").mkdir()
    (second / "__pycache__" / "train.cpython-313.pyc").write_bytes(b"\x00compiled")
    (second / "tests" / "__pycache__").mkdir()
    (second / "tests" / "__pycache__" / "x.pyc").write_bytes(b"\x01")

    digest = context_digest(first)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert context_digest(first) == digest
    assert context_digest(second) == digest


def test_context_digest_changes_with_one_byte_or_the_executable_bit(tmp_path: Path) -> None:
    context_dir = _context(tmp_path / "ctx")
    original = context_digest(context_dir)
    train = context_dir / "train.py"

    train.write_text("print('trainint')\n", encoding="utf-8")  # one byte differs
    changed_byte = context_digest(context_dir)
    train.write_text("print('training')\n", encoding="utf-8")
    assert context_digest(context_dir) == original

    train.chmod(train.stat().st_mode | stat.S_IXUSR)
    executable = context_digest(context_dir)

    assert len({original, changed_byte, executable}) == 3


def test_context_digest_changes_when_a_file_is_renamed(tmp_path: Path) -> None:
    context_dir = _context(tmp_path / "ctx")
    before = context_digest(context_dir)
    (context_dir / "tests" / "test_train.py").rename(context_dir / "tests" / "test_other.py")
    assert context_digest(context_dir) != before


def test_an_image_saved_is_found_by_its_digest_with_its_code(tmp_path: Path) -> None:
    """save() keeps the context and the /opt/ml/code tree (only what the Dockerfile copies there)."""
    store = ImageStore(tmp_path / "images")
    context_dir = _context(tmp_path / "ctx")
    digest = "sha256:" + "ab" * 32

    saved = store.save(context_dir, digest=digest, repository_uri="123.dkr.ecr/train", tag="abc123", commit="abc123")
    found = store.find(digest)

    assert found == saved
    assert found.program == "train.py"
    assert found.environment == {"SAGEMAKER_PROGRAM": "train.py"}
    assert found.uri == f"123.dkr.ecr/train@{digest}"
    assert found.context_digest == context_digest(context_dir)
    assert sorted(path.name for path in found.code_dir.iterdir()) == ["train.py"]
    assert (found.code_dir / "train.py").read_text(encoding="utf-8") == "print('training')\n"
    assert store.find("sha256:" + "0" * 64) is None
    # Saving the same digest again keeps the first registration (images are immutable).
    (context_dir / "train.py").write_text("print('changed')\n", encoding="utf-8")
    again = store.save(context_dir, digest=digest, repository_uri="123.dkr.ecr/train", tag="abc123", commit="abc123")
    assert (again.code_dir / "train.py").read_text(encoding="utf-8") == "print('training')\n"


def test_save_refuses_a_dockerfile_copying_a_missing_file(tmp_path: Path) -> None:
    context_dir = _context(tmp_path / "ctx", "ENV SAGEMAKER_PROGRAM=train.py\nCOPY missing.py /opt/ml/code/\n")
    with pytest.raises(ImageError, match=r"missing\.py"):
        ImageStore(tmp_path / "images").save(
            context_dir, digest="sha256:" + "2" * 64, repository_uri="r", tag="t", commit="c"
        )
    assert ImageStore(tmp_path / "images").find("sha256:" + "2" * 64) is None


def test_manifests_of_different_contexts_differ_and_carry_the_context_digest(tmp_path: Path) -> None:
    one = context_digest(_context(tmp_path / "one"))
    other_dir = _context(tmp_path / "other")
    (other_dir / "train.py").write_text("print('other')\n", encoding="utf-8")
    other = context_digest(other_dir)

    assert manifest_for(one, 100) != manifest_for(other, 100)
    assert manifest_for(one, 100) == manifest_for(one, 100)
    manifest = json.loads(manifest_for(one, 100))
    assert manifest["layers"] == [
        {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 100, "digest": one}
    ]
    assert manifest["schemaVersion"] == 2


# ============================================================================================== provisioner


def _resource(properties: dict[str, Any] | None = None, depends_on: Any = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"Type": "AWS::SQS::Queue", "Properties": properties or {}}
    if depends_on is not None:
        resource["DependsOn"] = depends_on
    return resource


def _before(order: list[str], first: str, then: str) -> bool:
    return order.index(first) < order.index(then)


def test_creation_order_follows_refs_getatts_subs_and_depends_on() -> None:
    resources = {
        "Zeta": _resource(),
        "ByRef": _resource({"Queue": {"Ref": "Zeta"}}),
        "ByGetAttList": _resource({"Arn": {"Fn::GetAtt": ["ByRef", "Arn"]}}),
        "ByGetAttDotted": _resource({"Arn": {"Fn::GetAtt": "ByGetAttList.Arn"}}),
        "BySub": _resource({"Name": {"Fn::Sub": "${ByGetAttDotted.QueueName}-${AWS::Region}-${!Literal}"}}),
        "BySubMap": _resource({"Name": {"Fn::Sub": ["${X}", {"X": {"Ref": "BySub"}}]}}),
        "DependsString": _resource(depends_on="BySubMap"),
        "DependsList": _resource({"Param": {"Ref": "SomeParameter"}}, depends_on=["DependsString", "Zeta"]),
    }
    order = creation_order(resources)
    assert sorted(order) == sorted(resources)
    chain = ["Zeta", "ByRef", "ByGetAttList", "ByGetAttDotted", "BySub", "BySubMap", "DependsString", "DependsList"]
    assert [name for name in order if name in chain] == chain


def test_creation_order_ignores_references_to_parameters_and_pseudo_parameters() -> None:
    resources = {
        "B": _resource({"Name": {"Fn::Sub": "${AWS::StackName}-${Env}"}}),
        "A": _resource({"X": {"Ref": "Env"}}),
    }
    assert creation_order(resources) == ["A", "B"]


@pytest.mark.parametrize(
    "resources",
    [
        pytest.param({"A": _resource({"X": {"Ref": "B"}}), "B": _resource(depends_on="A")}, id="two"),
        pytest.param({"A": _resource({"X": {"Fn::GetAtt": ["A", "Arn"]}})}, id="self"),
        pytest.param(
            {
                "A": _resource(depends_on="C"),
                "B": _resource(depends_on="A"),
                "C": _resource({"X": {"Fn::Sub": "${B}"}}),
            },
            id="three",
        ),
    ],
)
def test_a_dependency_cycle_is_a_provision_error(resources: dict[str, Any]) -> None:
    with pytest.raises(ProvisionError, match="circular dependency"):
        creation_order(resources)


def test_physical_names_are_deterministic_and_respect_case_and_length() -> None:
    name = physical_name("sagepipe-local", "DataBucket", lowercase=True, limit=63)
    assert name == physical_name("sagepipe-local", "DataBucket", lowercase=True, limit=63)
    assert name != physical_name("sagepipe-other", "DataBucket", lowercase=True, limit=63)
    assert name.startswith("sagepipe-local-databucket-")
    assert name == name.lower()
    assert re.fullmatch(r"sagepipe-local-DataBucket-[0-9A-F]{12}", physical_name("sagepipe-local", "DataBucket"))
    long_name = physical_name("s" * 100, "VeryLongLogicalId" * 10, limit=64)
    assert len(long_name) == 64
    assert long_name != physical_name("s" * 100, "VeryLongLogicalId" * 9, limit=64), "the suffix keeps them apart"
    assert len(physical_name("stack", "Queue", limit=80)) <= 80


def test_apply_substitutions_replaces_defined_keys_only() -> None:
    definition = '{"A": "${TableName}", "B": "${Unknown}", "C": "{% $states.input.x %}", "D": "$.x", "E": "${Table}"}'
    result = apply_substitutions(definition, {"TableName": "runs", "Table": 7})
    assert result == '{"A": "runs", "B": "${Unknown}", "C": "{% $states.input.x %}", "D": "$.x", "E": "7"}'


@dataclass
class _NoEmulator:
    """The provisioner only reaches the emulator through client(); these templates need no client."""

    def client(self, service: str) -> Any:
        raise AssertionError(f"no {service} client expected")


def _provision(resources: dict[str, Any], conditions: dict[str, Any] | None = None) -> Any:
    translated = {"Resources": resources, "Conditions": conditions or {}}
    return _Provisioner(
        emulator=_NoEmulator(),  # type: ignore[arg-type]
        stack_name="unit",
        project_root=PROJECT_ROOT,
        translated=translated,
        sam_template={},
        parameters={"Env": "dev"},
    ).run()


def test_a_resource_type_without_a_handler_is_a_provision_error_naming_it() -> None:
    with pytest.raises(ProvisionError, match=r"Widget: resource type AWS::Made::Up has no local handler"):
        _provision({"Widget": {"Type": "AWS::Made::Up", "Properties": {}}})


def test_types_not_needed_locally_and_false_conditions_are_skipped_with_the_reason() -> None:
    stack = _provision(
        {
            "Policy": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyName": "p"}},
            "ProdOnly": {"Type": "AWS::Made::Up", "Condition": "IsProd", "Properties": {}},
        },
        conditions={"IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]}},
    )
    assert stack.skipped == {"Policy": NOT_NEEDED_LOCALLY["AWS::IAM::Policy"], "ProdOnly": "condition IsProd is false"}
    assert stack.resources["Policy"].created is False
    assert "ProdOnly" not in stack.resources


# ============================================================================================== intrinsics


@pytest.fixture
def resolver() -> Resolver:
    template = {
        "Resources": {"Bucket": {}, "Topic": {}},
        "Conditions": {
            "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
            "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
            "ThreeDays": {"Fn::Equals": [{"Ref": "Days"}, "3"]},
            "DevAndThree": {"Fn::And": [{"Condition": "IsDev"}, {"Condition": "ThreeDays"}]},
            "ProdOrThree": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "ThreeDays"}]},
        },
    }
    return Resolver(
        template,
        parameters={"Env": "dev", "Days": 3, "Csv": "a,b,c"},
        pseudo_parameters={"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"},
        resource_ref=lambda logical_id: f"physical-{logical_id.lower()}",
        resource_attribute=lambda logical_id, name: f"arn:{logical_id}:{name}",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"Ref": "Env"}, "dev", id="ref-parameter"),
        pytest.param({"Ref": "AWS::Region"}, "us-east-1", id="ref-pseudo"),
        pytest.param({"Ref": "Bucket"}, "physical-bucket", id="ref-resource"),
        pytest.param({"Fn::GetAtt": ["Bucket", "Arn"]}, "arn:Bucket:Arn", id="getatt-list"),
        pytest.param({"Fn::GetAtt": "Topic.TopicName"}, "arn:Topic:TopicName", id="getatt-dotted"),
        pytest.param(
            {"Fn::Sub": "${Bucket}/${Bucket.Arn}/${AWS::AccountId}/${Env}/${!Literal}/${!Bucket.Arn}"},
            "physical-bucket/arn:Bucket:Arn/123456789012/dev/${Literal}/${Bucket.Arn}",
            id="sub",
        ),
        pytest.param({"Fn::Sub": ["${Name}-${Env}", {"Name": {"Ref": "Topic"}}]}, "physical-topic-dev", id="sub-map"),
        pytest.param({"Fn::Join": [":", ["a", {"Ref": "Env"}, {"Ref": "AWS::Region"}]]}, "a:dev:us-east-1", id="join"),
        pytest.param({"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "Csv"}]}]}, "b", id="select-split"),
        pytest.param({"Fn::Select": ["2", ["x", "y", "z"]]}, "z", id="select-string-index"),
        pytest.param({"Fn::If": ["IsProd", "big", "small"]}, "small", id="if"),
        pytest.param({"Fn::Not": [{"Condition": "IsProd"}]}, True, id="not"),
        pytest.param({"Fn::And": [{"Condition": "IsDev"}, {"Fn::Equals": ["a", "a"]}]}, True, id="and"),
        pytest.param({"Fn::Or": [{"Condition": "IsProd"}, {"Fn::Equals": ["a", "b"]}]}, False, id="or"),
        pytest.param({"Condition": "DevAndThree"}, True, id="condition"),
        pytest.param({"Fn::Base64": "hi"}, "aGk=", id="base64"),
    ],
)
def test_resolver_resolves_intrinsics(resolver: Resolver, value: Any, expected: Any) -> None:
    assert resolver.resolve(value) == expected


def test_equals_compares_a_number_parameter_with_a_string_as_cloudformation_does(resolver: Resolver) -> None:
    assert resolver.condition("ThreeDays") is True
    assert resolver.condition("ProdOrThree") is True
    assert resolver.resolve({"Fn::Equals": [{"Ref": "Days"}, 3]}) is True
    assert resolver.resolve({"Fn::Equals": [True, "true"]}) is False, "booleans are not numbers"


def test_no_value_removes_list_elements_and_dict_keys(resolver: Resolver) -> None:
    value = {
        "Keep": "x",
        "Dropped": {"Ref": "AWS::NoValue"},
        "IfDropped": {"Fn::If": ["IsProd", "prod-only", {"Ref": "AWS::NoValue"}]},
        "List": ["a", {"Ref": "AWS::NoValue"}, {"Fn::If": ["IsDev", "dev", {"Ref": "AWS::NoValue"}]}],
        "Nested": {"Inner": {"Ref": "AWS::NoValue"}},
    }
    assert resolver.resolve(value) == {"Keep": "x", "List": ["a", "dev"], "Nested": {}}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param({"Fn::ImportValue": "shared"}, "unsupported intrinsic function Fn::ImportValue", id="unknown-fn"),
        pytest.param({"Ref": "Missing"}, "Ref to unknown name 'Missing'", id="unknown-ref"),
        pytest.param({"Fn::GetAtt": ["Missing", "Arn"]}, "unknown resource 'Missing'", id="unknown-getatt"),
        pytest.param({"Fn::If": ["Nope", 1, 2]}, "unknown condition 'Nope'", id="unknown-condition"),
    ],
)
def test_what_cannot_be_resolved_is_an_intrinsic_error(resolver: Resolver, value: Any, message: str) -> None:
    with pytest.raises(IntrinsicError, match=re.escape(message)):
        resolver.resolve(value)


def test_a_resolver_without_resource_callbacks_refuses_resource_references() -> None:
    bare = Resolver({"Resources": {"Bucket": {}}}, parameters={}, pseudo_parameters={})
    with pytest.raises(IntrinsicError, match="cannot be resolved"):
        bare.resolve({"Ref": "Bucket"})


# ============================================================================================== aws_sdk


@pytest.mark.parametrize(
    ("service", "name"),
    [
        ("ecr", "Ecr"),
        ("s3", "S3"),
        ("dynamodb", "DynamoDb"),
        ("secretsmanager", "SecretsManager"),
        ("acm-pca", "AcmPca"),
        ("stepfunctions", "Sfn"),
        ("sfn", "Sfn"),
        ("sagemaker", "SageMaker"),
        ("codebuild", "CodeBuild"),
    ],
)
def test_sdk_service_names_are_the_java_sdk_client_names(service: str, name: str) -> None:
    assert aws_sdk.sdk_service_name(service) == name


@pytest.mark.parametrize(
    ("service", "code", "name"),
    [
        ("s3", "NoSuchKey", "S3.NoSuchKeyException"),
        ("ecr", "ImageNotFoundException", "Ecr.ImageNotFoundException"),
        ("dynamodb", "ResourceNotFoundException", "DynamoDb.ResourceNotFoundException"),
        ("ecr", "ThrottlingException", "Ecr.EcrException"),
        ("s3", "SlowDown", "S3.S3Exception"),
        ("s3", "InternalError", "S3.S3Exception"),
    ],
)
def test_sdk_error_names_are_the_java_sdk_2_exception_classes(service: str, code: str, name: str) -> None:
    """A code the service models is named after its class, any other after the client's base exception."""
    assert aws_sdk.sdk_error_name(service, code) == name


def test_to_api_value_maps_pascal_case_onto_the_operation_s_members_recursively() -> None:
    shape = aws_sdk.operation_model("ecr", "describeImages").input_shape
    converted = aws_sdk.to_api_value(
        {
            "RepositoryName": "training",
            "ImageIds": [{"ImageTag": "abc", "ImageDigest": "sha256:1"}],
            "Filter": {"TagStatus": "TAGGED"},
        },
        shape,
    )
    assert converted == {
        "repositoryName": "training",
        "imageIds": [{"imageTag": "abc", "imageDigest": "sha256:1"}],
        "filter": {"tagStatus": "TAGGED"},
    }
    assert aws_sdk.to_api_value({"repositoryname": "r"}, shape) == {"repositoryName": "r"}


def test_to_api_value_keeps_map_keys_and_refuses_an_unknown_member() -> None:
    tagging = aws_sdk.operation_model("s3", "putObject").input_shape
    assert aws_sdk.to_api_value({"Bucket": "b", "Key": "k", "Metadata": {"owner-team": "ml"}}, tagging) == {
        "Bucket": "b",
        "Key": "k",
        "Metadata": {"owner-team": "ml"},
    }
    with pytest.raises(ValueError, match=r"DescribeImagesRequest has no member 'RepositoryNam'"):
        aws_sdk.to_api_value({"RepositoryNam": "typo"}, aws_sdk.operation_model("ecr", "describeImages").input_shape)
    with pytest.raises(ValueError, match=r"has no member 'Bogus'"):
        aws_sdk.to_api_value({"ImageIds": [{"Bogus": 1}]}, aws_sdk.operation_model("ecr", "describeImages").input_shape)


def test_to_sfn_value_pascal_cases_nested_members_and_formats_timestamps() -> None:
    pushed = datetime(2026, 11, 24, 9, 15, 0, tzinfo=UTC)
    response = {
        "imageDetails": [{"imageDigest": "sha256:1", "imagePushedAt": pushed, "imageTags": ["abc"]}],
        "nextToken": None,
    }
    assert aws_sdk.to_sfn_value(response) == {
        "ImageDetails": [
            {"ImageDigest": "sha256:1", "ImagePushedAt": "2026-11-24T09:15:00+00:00", "ImageTags": ["abc"]}
        ],
        "NextToken": None,
    }
    assert aws_sdk.to_sfn_value({"body": b"bytes"}) == {"Body": "bytes"}


@pytest.mark.parametrize(
    ("copy_source", "expected"),
    [
        pytest.param("data/datasets%2Ftrain.csv", {"Bucket": "data", "Key": "datasets/train.csv"}, id="encoded-slash"),
        pytest.param("data/datasets/my%20train.csv", {"Bucket": "data", "Key": "datasets/my train.csv"}, id="space"),
        pytest.param(
            "data/datasets/%C3%A9t%C3%A9%20%E2%9C%93.csv", {"Bucket": "data", "Key": "datasets/été ✓.csv"}, id="unicode"
        ),
        pytest.param(
            "/data/datasets%2Fa%2Bb.csv?versionId=IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
            {"Bucket": "data", "Key": "datasets/a+b.csv", "VersionId": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"},
            id="version-and-plus",
        ),
        pytest.param("data/what%3F.csv", {"Bucket": "data", "Key": "what?.csv"}, id="encoded-question-mark"),
    ],
)
def test_parse_copy_source_decodes_once(copy_source: str, expected: dict[str, str]) -> None:
    assert aws_sdk.parse_copy_source(copy_source) == expected


# ============================================================================================== s3_events


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("datasets/train.csv", "datasets/train.csv"),
        ("datasets/breast-cancer/train 2026-11-24.csv", "datasets/breast-cancer/train+2026-11-24.csv"),
        ("datasets/a+b=c&d.csv", "datasets/a%2Bb%3Dc%26d.csv"),
        ("datasets/été.csv", "datasets/%C3%A9t%C3%A9.csv"),
    ],
)
def test_encode_key_form_encodes_as_s3_notifications_do(key: str, encoded: str) -> None:
    assert s3_events.encode_key(key) == encoded


@dataclass
class _Key:
    name: str
    size: int = 121744
    etag: str = '"b1946ac92492d2347c6235b4d2611184"'
    version_id: str = "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"


class FakeDeleteMarker:  # the name moto's delete markers have, which build_event recognises
    def __init__(self, name: str) -> None:
        self.name = name
        self.version_id = "marker-version"


@pytest.mark.parametrize(
    ("event_name", "reason"),
    [
        (S3NotificationEvent.OBJECT_CREATED_PUT_EVENT, "PutObject"),
        (S3NotificationEvent.OBJECT_CREATED_COPY_EVENT, "CopyObject"),
        (S3NotificationEvent.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD_EVENT, "CompleteMultipartUpload"),
    ],
)
def test_build_event_is_the_documented_object_created_event(event_name: Any, reason: str) -> None:
    event = s3_events.build_event("123456789012", "eu-west-1", "data", event_name, _Key("datasets/train 1.csv"))
    assert event is not None
    assert event["detail-type"] == "Object Created"
    assert event["source"] == "aws.s3"
    assert event["account"] == "123456789012"
    assert event["region"] == "eu-west-1"
    assert event["resources"] == ["arn:aws:s3:::data"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert uuid.UUID(event["id"])
    detail = event["detail"]
    assert detail["reason"] == reason
    assert detail["bucket"] == {"name": "data"}
    assert {key: value for key, value in detail["object"].items() if key != "sequencer"} == {
        "key": "datasets/train+1.csv",
        "size": 121744,
        "etag": "b1946ac92492d2347c6235b4d2611184",
        "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
    }
    assert re.fullmatch(r"[0-9A-F]{18}", detail["object"]["sequencer"])
    assert "deletion-type" not in detail
    assert detail["requester"] == "123456789012"


def test_sequencers_grow_with_every_event() -> None:
    events = [
        s3_events.build_event("1", "us-east-1", "b", S3NotificationEvent.OBJECT_CREATED_PUT_EVENT, _Key("k"))
        for _ in range(3)
    ]
    sequencers = [event["detail"]["object"]["sequencer"] for event in events if event]
    assert sequencers == sorted(sequencers)
    assert len(set(sequencers)) == 3


def test_an_unversioned_object_has_no_version_id() -> None:
    event = s3_events.build_event(
        "1", "us-east-1", "b", S3NotificationEvent.OBJECT_CREATED_PUT_EVENT, _Key("k", version_id="null")
    )
    assert event is not None
    assert "version-id" not in event["detail"]["object"]


def test_a_delete_marker_event_has_no_size_or_etag() -> None:
    event = s3_events.build_event(
        "1", "us-east-1", "b", S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT, FakeDeleteMarker("d/k")
    )
    assert event is not None
    assert event["detail-type"] == "Object Deleted"
    assert event["detail"]["deletion-type"] == "Delete Marker Created"
    assert event["detail"]["reason"] == "DeleteObject"
    assert set(event["detail"]["object"]) == {"key", "version-id", "sequencer"}


def test_a_permanent_delete_says_so() -> None:
    event = s3_events.build_event("1", "us-east-1", "b", S3NotificationEvent.OBJECT_REMOVED_DELETE_EVENT, _Key("k"))
    assert event is not None
    assert event["detail"]["deletion-type"] == "Permanently Deleted"


def test_object_tags_added_is_sent_only_for_an_object_that_has_tags() -> None:
    """moto runs its tagging path (and notifies) after every PutObject; AWS sends "Object Tags Added" only when tags
    were set. Tags live in moto's tagger, so this uses real moto objects."""
    from moto import mock_aws
    from moto.s3.models import s3_backends

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="tags-bucket")
        client.put_object(Bucket="tags-bucket", Key="plain", Body=b"x")
        client.put_object(Bucket="tags-bucket", Key="tagged", Body=b"x", Tagging="team=ml")
        bucket = s3_backends["123456789012"]["aws"].buckets["tags-bucket"]
        plain, tagged = bucket.keys["plain"], bucket.keys["tagged"]
        event = S3NotificationEvent.OBJECT_TAGGING_PUT_EVENT
        assert s3_events.build_event("123456789012", "us-east-1", "tags-bucket", event, plain) is None
        sent = s3_events.build_event("123456789012", "us-east-1", "tags-bucket", event, tagged)
    assert sent is not None
    assert sent["detail-type"] == "Object Tags Added"
    assert "reason" not in sent["detail"]


# ============================================================================================== eventbridge_targets


def test_normalise_time_gives_aws_s_time_and_drops_ingestion_time() -> None:
    moto_event = {"id": "e-1", "source": "demo", "time": 1_795_000_000, "ingestion-time": 1_795_000_001.5}
    fixed = eventbridge_targets.normalise_time(moto_event)
    assert fixed == {"id": "e-1", "source": "demo", "time": "2026-11-18T11:06:40Z"}
    assert moto_event["time"] == 1_795_000_000, "the caller's event is not changed"
    assert (
        eventbridge_targets.normalise_time({"time": "2026-11-24T09:15:00Z", "id": "x"})["time"]
        == "2026-11-24T09:15:00Z"
    )
    assert uuid.UUID(eventbridge_targets.normalise_time({"source": "demo"})["id"])


EVENT: dict[str, Any] = {
    "id": "e-1",
    "source": "aws.s3",
    "detail-type": "Object Created",
    "time": "2026-11-24T09:15:00Z",
    "detail": {"bucket": {"name": "data"}, "object": {"key": "datasets/a.csv"}},
}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param({"Arn": "arn", "Input": '{"fixed": true}'}, {"fixed": True}, id="input"),
        pytest.param({"Arn": "arn", "InputPath": "$.detail.object"}, {"key": "datasets/a.csv"}, id="input-path"),
        pytest.param({"Arn": "arn", "InputPath": "$"}, EVENT, id="input-path-root"),
        pytest.param({"Arn": "arn"}, EVENT, id="whole-event"),
    ],
)
def test_target_input(target: dict[str, Any], expected: Any) -> None:
    assert json.loads(eventbridge_targets.target_input(target, EVENT)) == expected


def test_an_input_transformer_renders_json() -> None:
    target = {
        "Arn": "arn",
        "InputTransformer": {"InputPathsMap": {"key": "$.detail.object.key"}, "InputTemplate": '{"dataset": "<key>"}'},
    }
    rendered = eventbridge_targets.target_input(target, eventbridge_targets.normalise_time(EVENT))
    assert json.loads(rendered) == {"dataset": "datasets/a.csv"}


def test_targets_moto_serves_still_receive_the_event() -> None:
    """Regression (HEAD 2b8fe08): the wrapper handed moto's own targets the AWS-shaped event, without the
    ingestion-time and Unix time moto's EventTemplateParser needs, so PutEvents matching a rule with an SQS target
    raised KeyError('ingestion-time')."""
    from moto import mock_aws

    with mock_aws():
        import boto3

        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="audit")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        moto_event = {**EVENT, "time": 1_795_000_000, "ingestion-time": 1_795_000_000, "resources": []}

        eventbridge_targets.send_to_targets(moto_rule([{"Id": "audit", "Arn": arn}]), moto_event)

        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"])["detail"] == EVENT["detail"]


def test_a_disabled_rule_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    monkeypatch.setattr(
        eventbridge_targets, "_start_execution", lambda rule, target, event: started.append(target["Arn"])
    )
    rule = moto_rule(
        [{"Id": "p", "Arn": "arn:aws:states:us-east-1:123456789012:stateMachine:pipeline"}], state="DISABLED"
    )
    eventbridge_targets.send_to_targets(rule, dict(EVENT))
    assert started == []


# ============================================================================================== lambda_runtime


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RuntimeContext:
    """A runtime context of its own (restored afterwards), as the emulator would create it."""
    monkeypatch.setattr(context, "_current", None)
    created = RuntimeContext(
        state_dir=tmp_path / "state", endpoint="http://localhost:1", client_factory=lambda service: None
    )
    context.set_current(created)
    return created


@pytest.fixture
def function(tmp_path: Path) -> Iterator[FunctionSpec]:
    """A function whose code is a small module of handlers, under a name no other test imports."""
    module = f"local_units_handler_{uuid.uuid4().hex}"
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / f"{module}.py").write_text(
        textwrap.dedent(
            """\
            import os
            import threading

            RELEASE = threading.Event()


            def greet(event, context):
                print("greeting", event["name"])
                left = context.get_remaining_time_in_millis()
                return {"hello": event["name"], "function": context.function_name, "left": left}


            def fail(event, context):
                raise ValueError("no such dataset: " + event["key"])


            def slow(event, context):
                RELEASE.wait(10)
                return "late"


            def unserialisable(event, context):
                return {"at": object()}


            def environment(event, context):
                return {name: os.environ.get(name) for name in event["names"]}


            def tables(event, context):
                import boto3

                return boto3.client("dynamodb").list_tables()["TableNames"]
            """
        ),
        encoding="utf-8",
    )
    yield FunctionSpec(
        name=f"fn-{module[-8:]}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:fn-{module[-8:]}",
        code_dir=code_dir,
        handler=f"{module}.greet",
        environment={"DATA_BUCKET_NAME": "data-bucket", "POWERTOOLS_SERVICE_NAME": "unit"},
        timeout_seconds=5,
        memory_mb=256,
    )
    loaded = sys.modules.pop(module, None)
    if loaded is not None:
        loaded.RELEASE.set()


def _with_handler(spec: FunctionSpec, handler: str, **changes: Any) -> FunctionSpec:
    module = spec.handler.rsplit(".", 1)[0]
    return dataclasses.replace(spec, handler=f"{module}.{handler}", **changes)


def test_a_handler_s_result_is_the_json_payload(runtime: RuntimeContext, function: FunctionSpec) -> None:
    payload, error = lambda_runtime.invoke_function(function, {"name": "sagepipe"})
    assert error is None
    result = json.loads(payload)
    assert result["hello"] == "sagepipe"
    assert result["function"] == function.name
    assert 0 < result["left"] <= 5000
    log = (runtime.logs_dir / "lambda" / f"{function.name}.log").read_text(encoding="utf-8")
    assert "greeting sagepipe" in log
    assert re.search(r"START RequestId: \S+ Version: \$LATEST", log)
    assert "REPORT RequestId:" in log


def test_an_exception_is_an_unhandled_function_error(runtime: RuntimeContext, function: FunctionSpec) -> None:
    payload, error = lambda_runtime.invoke_function(_with_handler(function, "fail"), {"key": "datasets/x.csv"})
    assert error == "Unhandled"
    body = json.loads(payload)
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "no such dataset: datasets/x.csv"
    assert body["stackTrace"]
    assert uuid.UUID(body["requestId"])


def test_a_handler_past_its_timeout_is_sandbox_timedout(runtime: RuntimeContext, function: FunctionSpec) -> None:
    payload, error = lambda_runtime.invoke_function(_with_handler(function, "slow", timeout_seconds=1), {})
    assert error == "Unhandled"
    assert json.loads(payload) == {"errorMessage": "Task timed out after 1.00 seconds", "errorType": "Sandbox.Timedout"}


def test_a_result_that_is_not_json_is_a_marshal_error(runtime: RuntimeContext, function: FunctionSpec) -> None:
    payload, error = lambda_runtime.invoke_function(_with_handler(function, "unserialisable"), {})
    assert error == "Unhandled"
    body = json.loads(payload)
    assert body["errorType"] == "Runtime.MarshalError"
    assert body["errorMessage"].startswith("Unable to marshal response:")


def test_a_handler_s_clients_reach_the_emulator_s_application_in_process(
    runtime: RuntimeContext, function: FunctionSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a runtime whose transport serves its endpoint with a WSGI application (as the emulator's does), when a
    handler makes a client with `boto3.client(...)` and calls DynamoDB, then the application answers the signed
    request (no socket: nothing listens on the endpoint's port), and boto3's default session is the one it was
    before the invocation."""
    seen: list[dict[str, Any]] = []

    def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ)
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [json.dumps({"TableNames": ["answered-in-process"]}).encode()]

    monkeypatch.setattr(runtime, "transport", InProcessTransport(runtime.endpoint, application))
    before = boto3.DEFAULT_SESSION
    payload, error = lambda_runtime.invoke_function(_with_handler(function, "tables"), {})
    assert (error, json.loads(payload)) == (None, ["answered-in-process"]), payload
    (request,) = seen
    assert request["HTTP_HOST"] == "localhost:1"
    assert request["HTTP_X_AMZ_TARGET"] == "DynamoDB_20120810.ListTables"
    assert "Credential=sagepipe-local/" in request["HTTP_AUTHORIZATION"]
    assert boto3.DEFAULT_SESSION is before


def test_the_handler_sees_its_environment_only_while_it_runs(runtime: RuntimeContext, function: FunctionSpec) -> None:
    names = ["DATA_BUCKET_NAME", "AWS_LAMBDA_FUNCTION_NAME", "AWS_ENDPOINT_URL", "AWS_REGION", "LAMBDA_TASK_ROOT"]
    payload, error = lambda_runtime.invoke_function(_with_handler(function, "environment"), {"names": names})
    assert error is None
    assert json.loads(payload) == {
        "DATA_BUCKET_NAME": "data-bucket",
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_ENDPOINT_URL": "http://localhost:1",
        "AWS_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(function.code_dir),
    }
    assert "DATA_BUCKET_NAME" not in os.environ


def _reports(runtime: RuntimeContext, spec: FunctionSpec) -> list[str]:
    log = (runtime.logs_dir / "lambda" / f"{spec.name}.log").read_text(encoding="utf-8")
    return [line for line in log.splitlines() if line.startswith("REPORT ")]


def test_a_deployed_function_starts_cold_at_its_first_invocation_only(
    runtime: RuntimeContext, function: FunctionSpec
) -> None:
    """Given a function deployed again after it ran (its module imported), when it is deployed, then its module is
    forgotten and not imported again until it is invoked; when it is invoked twice, then only the first REPORT line
    carries an Init Duration (the cold start), and both answer."""
    # Given
    module = function.handler.rsplit(".", 1)[0]
    lambda_runtime.local_functions().functions[function.name] = function
    assert lambda_runtime.invoke_function(function, {"name": "before"})[1] is None
    assert module in sys.modules

    # When
    lambda_runtime.deploy(function)

    # Then
    assert module not in sys.modules
    first = lambda_runtime.invoke_function(function, {"name": "first"})
    second = lambda_runtime.invoke_function(function, {"name": "second"})
    assert [json.loads(payload)["hello"] for payload, _ in (first, second)] == ["first", "second"]
    *_, cold, warm = _reports(runtime, function)
    assert re.search(r"\tInit Duration: \d+\.\d\d ms$", cold), cold
    assert "Init Duration" not in warm, warm


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "import no_such_module_anywhere\n",
            (
                "Runtime.ImportModuleError",
                "Unable to import module 'broken': No module named 'no_such_module_anywhere'",
            ),
            id="import-error",
        ),
        pytest.param(
            "def handle(event, context)\n",
            ("Runtime.UserCodeSyntaxError", "Syntax error in module 'broken': "),
            id="syntax",
        ),
        pytest.param(
            "def other(event, context):\n    return 1\n",
            ("Runtime.HandlerNotFound", "Handler 'handle' missing on module 'broken'"),
            id="no-handler",
        ),
        pytest.param("raise RuntimeError('no settings')\n", ("RuntimeError", "no settings"), id="init-raises"),
    ],
)
def test_a_handler_that_cannot_be_loaded_fails_each_invocation_as_the_python_runtime_reports_it(
    runtime: RuntimeContext, function: FunctionSpec, tmp_path: Path, source: str, expected: tuple[str, str]
) -> None:
    """Given a function whose module cannot be imported, or lacks its handler, when it is invoked twice, then each
    invocation is an Unhandled error with the Python runtime's type and message (its Init is tried again, and each
    REPORT line carries the Init Duration)."""
    # Given
    code_dir = tmp_path / f"broken-{uuid.uuid4().hex}"
    code_dir.mkdir()
    (code_dir / "broken.py").write_text(source, encoding="utf-8")
    broken = dataclasses.replace(function, code_dir=code_dir, handler="broken.handle")
    try:
        # When
        outcomes = [lambda_runtime.invoke_function(broken, {}) for _ in range(2)]
    finally:
        sys.modules.pop("broken", None)
        sys.path.remove(str(code_dir))

    # Then
    error_type, message = expected
    for payload, error in outcomes:
        body = json.loads(payload)
        assert (error, body["errorType"]) == ("Unhandled", error_type), body
        assert body["errorMessage"].startswith(message), body
    reports = _reports(runtime, broken)
    assert len(reports) == 2
    assert all("Init Duration" in line for line in reports)

"""Contract: what the local runtime's adapters (all but jsonata, which has its own file) assume about moto 5.2.5.

Two kinds of checks. First, every moto internal an adapter declares in MOTO_INTERNALS still resolves (and still
takes the parameters the adapter passes). Second, for each adapter, the gap it closes is still there in moto's
own code (so the adapter is still needed and still replaces the right thing), and the shapes it builds on are
still the same. Every assertion message says what moto now does and which adapter to re-check.

moto's own implementations are reached with `original_attribute`, so these tests hold whether or not an
emulator in the same process has installed the adapters.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.codebuild.models import CodeBuildBackend
from moto.events.models import Rule
from moto.events.utils import EventTemplateParser
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.s3 import notifications
from moto.s3.models import FakeBucket, S3Backend, s3_backends
from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
    state_task_service_factory,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported import (
    StateTaskServiceUnsupported,
)
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from sagepipe.local import codebuild, sagemaker
from sagepipe.local.codebuild import adapter as codebuild_sync
from sagepipe.local.core import context as runtime_context
from sagepipe.local.core import jsonpath_cache, moto_internals
from sagepipe.local.core.moto_internals import Internal, original_attribute
from sagepipe.local.dynamodb import atomic as dynamodb_atomic
from sagepipe.local.dynamodb import attribute_values as dynamodb_attribute_values
from sagepipe.local.eventbridge import targets as eventbridge_targets
from sagepipe.local.lambda_ import runtime as lambda_runtime
from sagepipe.local.s3 import bucket_policy as s3_bucket_policy
from sagepipe.local.s3 import copy_limit as s3_copy_limit
from sagepipe.local.s3 import events as s3_events
from sagepipe.local.sagemaker import adapter as sagemaker_sync
from sagepipe.local.services import ADAPTER_MODULES
from sagepipe.local.stepfunctions import (
    aws_sdk,
    program_cache,
    service_errors,
    service_tasks,
    task_clients,
    task_timeouts,
    value_copies,
)
from sagepipe.local.stepfunctions import sync_task as _sync_task
from sagepipe.template import PROJECT_ROOT
from tests.moto_objects import moto_rule

ACCOUNT = "123456789012"
REGION = "us-east-1"

# ----------------------------------------------------------------------------------------------- declarations

SYNC_TASK = "sagepipe.local.stepfunctions.sync_task"
CHECKED_HERE = (*(name for name in ADAPTER_MODULES if not name.endswith(".jsonata")), SYNC_TASK)
"""jsonata's internals are checked one by one in test_jsonata_adapter_contract.py."""


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def _adapter_name(module: ModuleType) -> str:
    return str(getattr(module, "ADAPTER", None) or getattr(module, "ADAPTER_NAME", None) or module.__name__)


def _declared() -> Iterator[Any]:
    for name in CHECKED_HERE:
        module = _module(name)
        for internal in module.MOTO_INTERNALS:
            yield pytest.param(_adapter_name(module), internal, id=f"{name}:{internal.path}")


@pytest.mark.parametrize(("adapter", "internal"), list(_declared()))
def test_moto_internal_is_where_the_adapter_expects_it(adapter: str, internal: Internal) -> None:
    """Given an internal an adapter declares, then it resolves in the installed moto with the declared parameters.

    A failure is a MotoContractError naming the adapter, the internal and the moto version.
    """
    internal.resolve(adapter)


# Declared without `why` or `parameters` when these tests were written. Each one should say what the adapter does
# with it; strict xfail makes this list shrink as they are documented (an XPASS fails: delete the entry then).
UNDOCUMENTED_INTERNALS: frozenset[str] = frozenset()


def test_every_adapter_module_is_listed_so_its_contract_is_checked() -> None:
    """A module of sagepipe/local that patches moto (it declares MOTO_INTERNALS and has an install()) but is not in
    ADAPTER_MODULES would escape every test above."""
    import pkgutil

    import sagepipe.local

    on_disk = set()
    for info in pkgutil.walk_packages(sagepipe.local.__path__, "sagepipe.local."):
        module = importlib.import_module(info.name)
        if hasattr(module, "MOTO_INTERNALS") and callable(getattr(module, "install", None)):
            on_disk.add(info.name)
    assert on_disk == set(ADAPTER_MODULES), (
        f"adapter modules on disk {sorted(on_disk)} differ from ADAPTER_MODULES {sorted(ADAPTER_MODULES)}"
    )


@pytest.mark.parametrize("name", [*ADAPTER_MODULES, SYNC_TASK])
def test_every_adapter_module_declares_its_moto_internals(name: str) -> None:
    """Given an adapter module (every one install_all installs, and the shared _sync_task), then it declares a
    non-empty MOTO_INTERNALS of Internal objects, so the contract tests above have something to check."""
    module = _module(name)
    internals = getattr(module, "MOTO_INTERNALS", None)
    assert isinstance(internals, tuple), f"adapter module {name} has no MOTO_INTERNALS tuple"
    assert internals, f"adapter module {name} declares no moto internals; every adapter touches at least one"
    assert all(isinstance(item, Internal) for item in internals), f"{name}.MOTO_INTERNALS holds non-Internal items"
    assert callable(getattr(module, "install", None)) or name == SYNC_TASK, f"adapter {name} has no install()"


def _every_internal() -> Iterator[Any]:
    for name in (*ADAPTER_MODULES, SYNC_TASK):
        for internal in _module(name).MOTO_INTERNALS:
            key = f"{name}:{internal.path}"
            marks = (
                [pytest.mark.xfail(strict=True, reason="declared with neither why nor parameters")]
                if key in UNDOCUMENTED_INTERNALS
                else []
            )
            yield pytest.param(internal, id=key, marks=marks)


@pytest.mark.parametrize("internal", list(_every_internal()))
def test_every_declared_internal_says_why_or_what_it_passes(internal: Internal) -> None:
    """Given a declared internal, then it has a `why` or the parameters the adapter relies on: a bare path tells
    the next person upgrading moto nothing about what to re-check."""
    assert internal.why.strip() or internal.parameters, (
        f"{internal.path} is declared with neither why= nor parameters=; say what the adapter does with it"
    )


# ----------------------------------------------------------------------------------------------- s3_events


def _fake_bucket(name: str = "data-bucket") -> Any:
    return SimpleNamespace(name=name, region_name=REGION, arn=f"arn:aws:s3:::{name}")


def _fake_key(name: str = "datasets/train 1.csv") -> Any:
    return SimpleNamespace(name=name, size=3, etag='"abc"', version_id="v1")


def test_moto_s3_eventbridge_events_are_not_in_aws_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gap s3_events closes: moto's own _send_event_bridge_message sends reason "ObjectCreated" (AWS:
    PutObject), a Unix `time`, an `eTag` field and the key unencoded."""
    # Given: moto's default bus with one rule that records what it is sent
    sent: list[dict[str, Any]] = []
    rule = SimpleNamespace(send_to_targets=lambda event, transform_input=True: sent.append(event))
    backends = {ACCOUNT: {REGION: SimpleNamespace(event_buses={"default": SimpleNamespace(rules={"r": rule})})}}
    monkeypatch.setattr("moto.events.models.events_backends", backends)
    moto_send = original_attribute(notifications, "_send_event_bridge_message")

    # When: moto sends the event of a PutObject
    moto_send(ACCOUNT, _fake_bucket(), notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT, _fake_key())

    # Then: it is moto's shape, not AWS's
    assert len(sent) == 1, (
        "moto's _send_event_bridge_message no longer delivers to events_backends[account][region].event_buses"
        "[*].rules[*].send_to_targets (or now raises inside its bare except); re-check adapter s3_events"
    )
    (event,) = sent
    detail = event["detail"]
    assert detail["reason"] == "ObjectCreated", (
        f"moto now sends reason {detail['reason']!r} for PutObject; re-check adapter s3_events (its REASONS table "
        "may be redundant, and the data rule matches reason PutObject)"
    )
    assert isinstance(event["time"], int | float), (
        "moto now stamps S3 events with a non-numeric time; re-check s3_events"
    )
    assert "eTag" in detail["object"], "moto now names the etag field differently; re-check s3_events"
    assert detail["object"]["key"] == "datasets/train 1.csv", (
        "moto now URL-encodes keys in S3 EventBridge events; re-check s3_events.encode_key (double encoding)"
    )


def test_moto_names_s3_notification_events_with_an_enum_the_adapter_reads_by_value() -> None:
    """build_event reads event names with `.value` and asks moto's _detail_type for the detail-type."""
    put = notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT
    assert put.value == "s3:ObjectCreated:Put", (
        f"moto's S3NotificationEvent.OBJECT_CREATED_PUT_EVENT is now {put.value!r}; re-check s3_events.REASONS"
    )
    values = {member.value for member in notifications.S3NotificationEvent}
    assert set(s3_events.REASONS) <= values, (
        f"moto no longer has the S3 event names {sorted(set(s3_events.REASONS) - values)}; re-check s3_events.REASONS"
    )
    detail_type = original_attribute(notifications, "_detail_type")
    expected = {
        notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT: "Object Created",
        notifications.S3NotificationEvent.OBJECT_CREATED_COPY_EVENT: "Object Created",
        notifications.S3NotificationEvent.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD_EVENT: "Object Created",
        notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_EVENT: "Object Deleted",
        notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT: "Object Deleted",
        notifications.S3NotificationEvent.OBJECT_TAGGING_PUT_EVENT: "Object Tags Added",
    }
    actual = {member: detail_type(member) for member in expected}
    assert actual == expected, f"moto's _detail_type now maps differently ({actual}); re-check s3_events.build_event"


class _SendEventSpy:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []

    def __call__(self, account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        self.calls.append((event_name, key))


@pytest.fixture
def send_event_spy(monkeypatch: pytest.MonkeyPatch) -> _SendEventSpy:
    spy = _SendEventSpy()
    # moto.s3.models calls notifications.send_event through the module, so this sees every S3 notification.
    monkeypatch.setattr(notifications, "send_event", spy)
    return spy


def _bucket_notifying_eventbridge(name: str) -> Any:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}})
    return s3


def test_moto_put_object_notifies_created_then_a_spurious_tags_added(send_event_spy: _SendEventSpy) -> None:
    """PutObject on an EventBridge-enabled bucket: moto notifies ObjectCreated:Put, then ObjectTagging:Put with the
    same FakeKey, which has no `tags` attribute; build_event drops the second ("Object Tags Added" without tags)."""
    with mock_aws():
        # Given: a versioned bucket with EventBridge notifications on
        s3 = _bucket_notifying_eventbridge("data-bucket")

        # When: an object is put
        s3.put_object(Bucket="data-bucket", Key="datasets/a.csv", Body=b"abc")

    # Then
    names = [event_name for event_name, _ in send_event_spy.calls]
    assert names == [
        notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT,
        notifications.S3NotificationEvent.OBJECT_TAGGING_PUT_EVENT,
    ], f"moto's PutObject now notifies {names}; re-check s3_events.build_event's filter of 'Object Tags Added'"
    _, key = send_event_spy.calls[0]
    assert (key.name, key.size, key.etag.strip('"')) == ("datasets/a.csv", 3, "900150983cd24fb0d6963f7d28e17f72")
    assert key.version_id not in (None, "", "null"), "moto's FakeKey.version_id changed; re-check s3_events"
    assert not hasattr(key, "tags"), (
        "moto's FakeKey now has a `tags` attribute; s3_events.build_event reads it to drop PutObject's spurious "
        "'Object Tags Added': re-check that filter (a PutObject with a Tagging header must still not emit one)"
    )
    tags_event = s3_events.build_event(ACCOUNT, REGION, "data-bucket", *send_event_spy.calls[1])
    assert tags_event is None


def test_moto_complete_multipart_upload_notifies_a_spurious_put_first(send_event_spy: _SendEventSpy) -> None:
    """CompleteMultipartUpload: moto stores the object through its PutObject path, which notifies
    ObjectCreated:Put (the key's `multipart` set), then notifies CompleteMultipartUpload. AWS sends only the
    latter; build_event drops the former, so one upload starts one run."""
    with mock_aws():
        # Given: a versioned bucket with EventBridge notifications on
        s3 = _bucket_notifying_eventbridge("data-bucket")

        # When: a one-part multipart upload completes
        upload = s3.create_multipart_upload(Bucket="data-bucket", Key="datasets/big.csv")
        part = s3.upload_part(
            Bucket="data-bucket", Key="datasets/big.csv", UploadId=upload["UploadId"], PartNumber=1, Body=b"abc"
        )
        s3.complete_multipart_upload(
            Bucket="data-bucket",
            Key="datasets/big.csv",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
        )

    # Then
    created = [
        (event_name, key)
        for event_name, key in send_event_spy.calls
        if str(event_name.value).startswith("s3:ObjectCreated:")
    ]
    assert [event_name for event_name, _ in created] == [
        notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT,
        notifications.S3NotificationEvent.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD_EVENT,
    ], f"moto's CompleteMultipartUpload now notifies {created}; re-check s3_events.build_event's multipart filter"
    (spurious_name, spurious_key), (complete_name, complete_key) = created
    assert spurious_key.multipart is not None, "moto's FakeKey.multipart is no longer set; re-check s3_events"
    assert s3_events.build_event(ACCOUNT, REGION, "data-bucket", spurious_name, spurious_key) is None
    event = s3_events.build_event(ACCOUNT, REGION, "data-bucket", complete_name, complete_key)
    assert event is not None
    assert event["detail"]["reason"] == "CompleteMultipartUpload"


def test_moto_put_object_tagging_cannot_be_told_from_put_object(send_event_spy: _SendEventSpy) -> None:
    """Fidelity gap, documented: a real PutObjectTagging reaches the adapter exactly like PutObject's spurious
    notification (a FakeKey without tags), so s3_events drops it; AWS sends "Object Tags Added"."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="data-bucket")
        s3.put_object(Bucket="data-bucket", Key="k", Body=b"x")
        send_event_spy.calls.clear()

        s3.put_object_tagging(Bucket="data-bucket", Key="k", Tagging={"TagSet": [{"Key": "team", "Value": "ml"}]})

    ((event_name, key),) = send_event_spy.calls
    assert event_name == notifications.S3NotificationEvent.OBJECT_TAGGING_PUT_EVENT
    assert s3_events.build_event(ACCOUNT, REGION, "data-bucket", event_name, key) is None, (
        "moto's key now carries its tags, so s3_events can emit 'Object Tags Added' for PutObjectTagging as AWS "
        "does; update this test and the s3_events docstring"
    )


def test_moto_sends_no_event_when_a_delete_marker_is_created(send_event_spy: _SendEventSpy) -> None:
    """Fidelity gap, documented: DeleteObject on a versioned bucket creates a delete marker and moto notifies
    nothing, so no "Object Deleted" (deletion-type "Delete Marker Created") is ever emitted locally."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="data-bucket")
        s3.put_bucket_versioning(Bucket="data-bucket", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="data-bucket", Key="k", Body=b"x")
        send_event_spy.calls.clear()

        response = s3.delete_object(Bucket="data-bucket", Key="k")

    assert response.get("DeleteMarker") is True
    assert send_event_spy.calls == [], (
        f"moto now notifies {[name for name, _ in send_event_spy.calls]} for a delete marker; check what key object "
        "it passes (FakeDeleteMarker?) and that s3_events.build_event sets deletion-type 'Delete Marker Created'"
    )


# ----------------------------------------------------------------------------------------------- eventbridge_targets

STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:pipeline"


def _moto_event() -> dict[str, Any]:
    """An event as moto's put_events builds it."""
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": 1_700_000_000,
        "region": REGION,
        "resources": ["arn:aws:s3:::data-bucket"],
        "detail": {"bucket": {"name": "data-bucket"}},
        "ingestion-time": 1_700_000_000,
    }


def test_moto_rules_cannot_deliver_to_a_state_machine() -> None:
    """The gap eventbridge_targets closes: moto's Rule.send_to_targets raises for a Step Functions target."""
    rule = moto_rule([{"Id": "pipeline", "Arn": STATE_MACHINE_ARN}])
    event = _moto_event()
    moto_send = original_attribute(Rule, "send_to_targets")
    with pytest.raises(NotImplementedError) as raised:
        moto_send(rule, event)
    assert "Expr not defined" in str(raised.value), (
        f"moto's Rule.send_to_targets now fails differently for a state machine ({raised.value}); re-check "
        "eventbridge_targets"
    )


def test_moto_rules_do_not_handle_state_machine_targets_themselves() -> None:
    """If moto's own send_to_targets stops raising for a state machine, it may now start executions itself, and
    the adapter would start each one twice (it hands moto the other targets only)."""
    rule = moto_rule([{"Id": "pipeline", "Arn": STATE_MACHINE_ARN}])
    source = inspect.getsource(original_attribute(Rule, "send_to_targets"))
    assert '"states"' not in source, (
        "moto's Rule.send_to_targets now handles Step Functions targets; re-check eventbridge_targets (duplicate "
        "executions, input shape)"
    )
    assert rule.targets[0]["Arn"] == STATE_MACHINE_ARN


def test_moto_put_events_hands_each_rule_a_unix_time_and_ingestion_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """put_events calls send_to_targets on every rule of the bus (the method the adapter wraps), with moto's event
    shape: `time` in Unix seconds and a non-AWS `ingestion-time`, which normalise_time fixes."""
    received: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(
        Rule, "send_to_targets", lambda self, event, transform_input=True: received.append((self.name, event))
    )
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        events.put_rule(Name="on-data", EventPattern=json.dumps({"source": ["demo"]}))
        events.put_events(Entries=[{"Source": "demo", "DetailType": "Demo", "Detail": "{}"}])

    assert [name for name, _ in received] == ["on-data"], (
        "moto's put_events no longer calls Rule.send_to_targets per rule; re-check eventbridge_targets"
    )
    ((_, event),) = received
    assert isinstance(event["time"], int | float), (
        "moto now stamps events with a non-numeric time; re-check normalise_time"
    )
    assert "ingestion-time" in event, "moto no longer adds ingestion-time; re-check eventbridge_targets.normalise_time"
    assert event["id"], "moto no longer gives put_events events an id; the runner matches executions to event ids"


def test_moto_put_events_also_hands_disabled_rules_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto does not skip DISABLED rules before calling send_to_targets, so a wrapper must check rule.state itself
    (eventbridge_targets.send_to_targets does not; see the report and tests/unit/test_local_units.py)."""
    received: list[str] = []
    monkeypatch.setattr(Rule, "send_to_targets", lambda self, event, transform_input=True: received.append(self.state))
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        events.put_rule(Name="paused", EventPattern=json.dumps({"source": ["demo"]}), State="DISABLED")
        events.put_events(Entries=[{"Source": "demo", "DetailType": "Demo", "Detail": "{}"}])
    assert received == ["DISABLED"], (
        f"moto's put_events now filters rules by state ({received}); eventbridge_targets may rely on it"
    )


def test_moto_input_transformer_needs_ingestion_time_and_returns_parsed_json() -> None:
    """EventTemplateParser.parse, which the adapter calls for InputTransformer targets and moto calls for its own
    targets, reads event["ingestion-time"] and returns the template parsed as JSON (a dict), not text."""
    transformer: dict[str, Any] = {"InputPathsMap": {"src": "$.source"}, "InputTemplate": '{"from": "<src>"}'}
    event: Any = {"source": "aws.s3", "detail": {}, "ingestion-time": 1}
    parsed = EventTemplateParser.parse(
        input_template=transformer["InputTemplate"], input_paths_map=transformer["InputPathsMap"], event=event
    )
    assert parsed == {"from": "aws.s3"}, (
        f"moto's EventTemplateParser.parse now returns {parsed!r}; re-check eventbridge_targets.target_input"
    )
    without_ingestion_time: Any = {key: value for key, value in event.items() if key != "ingestion-time"}
    with pytest.raises(KeyError, match="ingestion-time"):
        EventTemplateParser.parse(
            input_template=transformer["InputTemplate"], input_paths_map={}, event=without_ingestion_time
        )


@pytest.mark.parametrize("module_name", value_copies.COPYING_MODULES)
def test_the_engine_modules_whose_copy_is_replaced_take_only_deepcopy_from_it(module_name: str) -> None:
    """Given an engine module value_copies gives its own `copy`, then the module imports `copy` as a module and
    uses nothing from it but `copy.deepcopy` (nothing from `from copy import ...`, which the replacement would
    miss), so every copy it makes goes through json_deepcopy."""
    source = inspect.getsource(_module(module_name))
    tree = ast.parse(source)
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "copy"
    }
    assert used == {"deepcopy"}, f"{module_name} uses copy.{sorted(used)}; re-check sagepipe's value_copies"
    from_copy = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "copy"]
    assert not from_copy, f"{module_name} imports from copy directly; value_copies' replacement would miss it"


def test_moto_parser_backend_start_execution_returns_the_execution() -> None:
    """The adapter starts executions on stepfunctions_parser_backends with keywords and reads `.execution_arn`."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
        arn = sfn.create_state_machine(
            name="pipeline", definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn"
        )["stateMachineArn"]
        backends = Internal("moto.stepfunctions.parser.models:stepfunctions_parser_backends").resolve("test")
        execution = backends[ACCOUNT][REGION].start_execution(
            state_machine_arn=arn, name="run-1", execution_input='{"a": 1}'
        )
        described = sfn.describe_execution(executionArn=execution.execution_arn)
    assert execution.execution_arn == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:pipeline:run-1", (
        "moto's parser start_execution result no longer has the execution's ARN in .execution_arn; re-check "
        "eventbridge_targets._start_execution"
    )
    assert json.loads(described["input"]) == {"a": 1}


def test_moto_sqs_send_message_takes_what_the_dead_letter_path_passes() -> None:
    """Undeclared in MOTO_INTERNALS: eventbridge_targets._dead_letter calls SQSBackend.send_message by keyword."""
    Internal(
        "moto.sqs.models:SQSBackend.send_message",
        parameters=("self", "queue_name", "message_body", "message_attributes"),
        why="eventbridge_targets parks undeliverable events in the target's dead-letter queue",
    ).resolve(eventbridge_targets.ADAPTER)


# ----------------------------------------------------------------------------------------------- lambda_runtime


def test_moto_simple_lambda_echoes_the_payload_and_runs_nothing() -> None:
    """The gap lambda_runtime closes: without Docker, moto's LambdaSimpleBackend.invoke returns the request body
    (or a fixed string) without looking the function up, let alone running it."""
    with mock_aws(config={"lambda": {"use_docker": False}}):
        from moto.awslambda.utils import get_backend
        from moto.awslambda_simple.models import LambdaSimpleBackend

        backend = get_backend(ACCOUNT, REGION)
        assert isinstance(backend, LambdaSimpleBackend), (
            f"moto now serves Lambda without Docker with {type(backend).__name__}; re-check adapter lambda_runtime"
        )
        moto_invoke = original_attribute(LambdaSimpleBackend, "invoke")
        echoed = moto_invoke(backend, "no-such-function", None, '{"key": "value"}', {}, {})
        default = moto_invoke(backend, "no-such-function", None, "", {}, {})
    assert echoed == b'{"key": "value"}', (
        f"moto's LambdaSimpleBackend.invoke now returns {echoed!r}; it may run code: re-check adapter lambda_runtime"
    )
    assert default == b"Simple Lambda happy path OK"


# ----------------------------------------------------------------------------------------------- aws_sdk


def _client_error(code: str) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "no such image"},
        "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "req-1"},
    }
    return ClientError(response, "DescribeImages")


def test_moto_aws_sdk_errors_lose_the_error_code() -> None:
    """The gap aws_sdk closes: moto names every ClientError of an aws-sdk task after the service twice
    (ecr.ecrException), so `ErrorEquals: ["Ecr.ImageNotFoundException"]` never matches."""
    service = StateTaskServiceAwsSdk._normalise_service_error_name("ecr")
    name = StateTaskServiceAwsSdk._normalise_exception_name(service, _client_error("ImageNotFoundException"))
    assert name.lower() == "ecr.ecrexception", (
        f"moto now names aws-sdk ClientErrors {name!r}; if it is Ecr.ImageNotFoundException, adapter aws_sdk's "
        "_from_error may be redundant: re-check it"
    )
    assert "ImageNotFound" not in name
    assert aws_sdk.sdk_error_name("ecr", "ImageNotFoundException") == "Ecr.ImageNotFoundException"


def test_moto_aws_sdk_passes_parameters_as_written() -> None:
    """The gap aws_sdk closes: moto's aws-sdk task does not map AWS's PascalCase names onto the API's."""
    moto_normalise = original_attribute(StateTaskServiceAwsSdk, "_normalise_parameters")
    task = SimpleNamespace(resource=SimpleNamespace(api_name="ecr", api_action="describeImages"))
    parameters = {"RepositoryName": "training", "ImageIds": [{"ImageTag": "abc"}]}
    moto_normalise(task, parameters)
    assert parameters == {"RepositoryName": "training", "ImageIds": [{"ImageTag": "abc"}]}, (
        f"moto now normalises aws-sdk parameters ({parameters}); re-check adapter aws_sdk (double mapping)"
    )
    source = inspect.getsource(StateTaskServiceAwsSdk._eval_service_task)
    assert "(**normalised_parameters)" in source, (
        "moto's aws-sdk _eval_service_task no longer passes the normalised parameters straight to the boto3 call; "
        "re-check adapter aws_sdk"
    )


def test_moto_task_execution_normalises_parameters_and_response_through_the_hooks() -> None:
    """aws_sdk replaces the _normalise_parameters / _normalise_response hooks, which only matter as long as
    StateTaskService._eval_execution calls them, on a copy of the arguments, around the service call."""
    assert "_eval_execution" not in vars(StateTaskServiceAwsSdk), (
        "moto's StateTaskServiceAwsSdk now overrides _eval_execution; re-check adapter aws_sdk's hooks"
    )
    source = inspect.getsource(original_attribute(StateTaskService, "_eval_execution"))
    positions = [
        source.find("copy.deepcopy(raw_parameters)"),
        source.find("self._normalise_parameters(normalised_parameters)"),
        source.find("self._eval_service_task("),
        source.find("self._normalise_response("),
    ]
    assert -1 not in positions, (
        "moto's StateTaskService._eval_execution no longer copies the arguments, calls _normalise_parameters, "
        "_eval_service_task and _normalise_response; adapter aws_sdk's replacements may never run: re-check it"
    )
    assert positions == sorted(positions), "moto's _eval_execution calls its hooks in another order; re-check aws_sdk"


# ----------------------------------------------------------------------------------------------- s3_bucket_policy

TLS_ONLY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::data-bucket", "arn:aws:s3:::data-bucket/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
OBJECT = "arn:aws:s3:::data-bucket/datasets/a.csv"


def test_moto_denies_through_a_tls_only_statement_whatever_the_context() -> None:
    """The gap s3_bucket_policy closes: moto applies the Deny of the standard TLS-only statement even to a request
    with aws:SecureTransport "true" (it ignores Bool), so every upload to the stack's buckets is refused."""
    moto_permitted = original_attribute(IAMPolicyStatement, "is_action_permitted")
    statement = IAMPolicyStatement(TLS_ONLY)
    moto_result = moto_permitted(statement, "s3:PutObject", OBJECT, None, {"aws:SecureTransport": "true"})
    assert moto_result == PermissionResult.DENIED, (
        f"moto now returns {moto_result} for the TLS-only Deny over TLS; adapter s3_bucket_policy may be redundant: "
        "re-check it"
    )
    adapter_result = s3_bucket_policy.is_action_permitted(
        statement, "s3:PutObject", OBJECT, incoming_condition_values={"aws:SecureTransport": "true"}
    )
    assert adapter_result == PermissionResult.NEUTRAL
    insecure = s3_bucket_policy.is_action_permitted(
        statement, "s3:PutObject", OBJECT, incoming_condition_values={"aws:SecureTransport": "false"}
    )
    assert insecure == PermissionResult.DENIED


def test_an_allow_whose_condition_does_not_match_does_not_apply() -> None:
    """Under the adapter (with moto's statement helpers), an Allow whose Condition does not hold is NEUTRAL, and one
    whose Condition holds is PERMITTED, as in IAM's evaluation logic."""
    allow_from_vpce = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::data-bucket/*",
        "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1234"}},
    }
    statement = IAMPolicyStatement(allow_from_vpce)
    context = dict(s3_bucket_policy.LOCAL_REQUEST_CONTEXT)
    assert s3_bucket_policy.is_action_permitted(
        statement, "s3:GetObject", OBJECT, incoming_condition_values=context
    ) == (PermissionResult.NEUTRAL)
    matching = IAMPolicyStatement(allow_from_vpce | {"Condition": {"Bool": {"aws:SecureTransport": "true"}}})
    assert s3_bucket_policy.is_action_permitted(
        matching, "s3:GetObject", OBJECT, incoming_condition_values=context
    ) == (PermissionResult.PERMITTED)
    other_action = s3_bucket_policy.is_action_permitted(
        matching, "s3:PutObject", OBJECT, incoming_condition_values=context
    )
    assert other_action == PermissionResult.NEUTRAL


def test_moto_bucket_permission_passes_no_request_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's FakeBucket.get_permission evaluates the bucket policy without any request context, so the TLS-only
    statement denies a PutObject; the adapter's get_permission supplies aws:SecureTransport "true"."""
    monkeypatch.setattr(
        IAMPolicyStatement, "is_action_permitted", original_attribute(IAMPolicyStatement, "is_action_permitted")
    )
    bucket = SimpleNamespace(policy=json.dumps({"Version": "2012-10-17", "Statement": [TLS_ONLY]}).encode())
    moto_result = original_attribute(FakeBucket, "get_permission")(bucket, "s3:PutObject", OBJECT)
    assert moto_result == PermissionResult.DENIED, (
        f"moto's FakeBucket.get_permission now returns {moto_result} for a TLS-only policy; re-check s3_bucket_policy"
    )
    monkeypatch.setattr(IAMPolicyStatement, "is_action_permitted", s3_bucket_policy.is_action_permitted)
    assert s3_bucket_policy.get_permission(bucket, "s3:PutObject", OBJECT) == PermissionResult.NEUTRAL


# ----------------------------------------------------------------------------------------------- s3_copy_limit

AWS_COPY_TOO_LARGE = "The specified copy source is larger than the maximum allowable size for a copy source: {}"


@pytest.fixture
def copy_limit_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> runtime_context.RuntimeContext:
    """The adapter installed (moto's copy_object restored after the test) and a runtime whose limit is 1 KiB."""
    monkeypatch.setattr(S3Backend, "copy_object", S3Backend.copy_object)
    s3_copy_limit.install()
    s3_copy_limit.install()
    runtime = runtime_context.RuntimeContext(
        state_dir=tmp_path, endpoint="http://localhost:0", client_factory=lambda _: None
    )
    s3_copy_limit.settings(runtime).copy_object_max_bytes = 1024
    monkeypatch.setattr(runtime_context, "_current", runtime)
    return runtime


def test_moto_copy_object_copies_a_source_of_any_size() -> None:
    """The gap s3_copy_limit closes: moto's S3Backend.copy_object copies a source over S3's 5 GiB copy limit (the
    source's FakeKey says it is 5 GiB + 1 byte), where S3 answers InvalidRequest."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="data-bucket")
        s3.put_object(Bucket="data-bucket", Key="big.csv", Body=b"x,target\n")
        backend = s3_backends[ACCOUNT]["global"]
        source = backend.get_object("data-bucket", "big.csv")
        assert source is not None
        source.contentsize = s3_copy_limit.S3_COPY_OBJECT_MAX_BYTES + 1
        assert source.size == s3_copy_limit.S3_COPY_OBJECT_MAX_BYTES + 1, (
            "moto's FakeKey.size no longer reads contentsize"
        )
        original_attribute(S3Backend, "copy_object")(backend, source, "data-bucket", "copy.csv")
        copied = s3.head_object(Bucket="data-bucket", Key="copy.csv")
    assert copied["ContentLength"] == len(b"x,target\n"), (
        "moto now refuses (or changes) a copy over 5 GiB; adapter s3_copy_limit may be redundant: re-check it"
    )


def test_the_adapter_refuses_copy_object_over_the_runtime_s_limit_with_s3_s_error(
    copy_limit_installed: runtime_context.RuntimeContext,
) -> None:
    """Given the adapter and a runtime limit of 1 KiB, when a client copies a source of 1 KiB + 1 byte with
    CopyObject, then it gets S3's HTTP 400 InvalidRequest with S3's message naming the limit; a source of exactly
    the limit is copied; and the same large source still copies with UploadPartCopy."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="data-bucket")
        s3.put_object(Bucket="data-bucket", Key="at-limit.csv", Body=b"a" * 1024)
        s3.put_object(Bucket="data-bucket", Key="over-limit.csv", Body=b"b" * 1025)

        with pytest.raises(ClientError) as refused:
            s3.copy_object(Bucket="data-bucket", Key="copy.csv", CopySource="data-bucket/over-limit.csv")
        s3.copy_object(Bucket="data-bucket", Key="copy-at-limit.csv", CopySource="data-bucket/at-limit.csv")

        upload = s3.create_multipart_upload(Bucket="data-bucket", Key="in-parts.csv")["UploadId"]
        part = s3.upload_part_copy(
            Bucket="data-bucket",
            Key="in-parts.csv",
            UploadId=upload,
            PartNumber=1,
            CopySource="data-bucket/over-limit.csv",
        )
        s3.complete_multipart_upload(
            Bucket="data-bucket",
            Key="in-parts.csv",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]},
        )
        in_parts = s3.get_object(Bucket="data-bucket", Key="in-parts.csv")["Body"].read()
        at_limit = s3.head_object(Bucket="data-bucket", Key="copy-at-limit.csv")["ContentLength"]

    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "InvalidRequest"
    assert error["Error"]["Message"] == AWS_COPY_TOO_LARGE.format(1024)
    assert at_limit == 1024
    assert in_parts == b"b" * 1025


def test_without_a_running_runtime_the_adapter_applies_aws_s_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto in process, after an emulator installed the adapters and stopped: AWS's 5 GiB limit applies."""
    error = s3_copy_limit.copy_source_too_large(
        s3_copy_limit.S3_COPY_OBJECT_MAX_BYTES + 1, s3_copy_limit.S3_COPY_OBJECT_MAX_BYTES
    )
    assert error is not None
    assert str(getattr(error, "message", "")) == AWS_COPY_TOO_LARGE.format(5368709120)
    assert (
        s3_copy_limit.copy_source_too_large(
            s3_copy_limit.S3_COPY_OBJECT_MAX_BYTES, s3_copy_limit.S3_COPY_OBJECT_MAX_BYTES
        )
        is None
    )
    monkeypatch.setattr(runtime_context, "_current", None)
    assert s3_copy_limit.copy_object_max_bytes() == 5_368_709_120


# ----------------------------------------------------------------------------------------------- codebuild_sync


def _codebuild_backend_with_a_build() -> tuple[Any, dict[str, Any]]:
    backend = CodeBuildBackend(REGION, ACCOUNT)
    backend.create_project(
        "train-image",
        None,
        {"type": "NO_SOURCE", "buildspec": "buildspec.yml"},
        {"type": "NO_ARTIFACTS"},
        {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"},
        f"arn:aws:iam::{ACCOUNT}:role/build",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    )
    build = backend.start_build("train-image", "abc123", None)
    return backend, build


def test_moto_codebuild_reports_every_build_succeeded() -> None:
    """The gap codebuild_sync closes: moto's batch_get_builds flips an IN_PROGRESS build to SUCCEEDED."""
    backend, build = _codebuild_backend_with_a_build()
    assert build["buildStatus"] == "IN_PROGRESS"
    (reported,) = original_attribute(CodeBuildBackend, "batch_get_builds")(backend, [build["id"]])
    assert reported["buildStatus"] == "SUCCEEDED", (
        f"moto's batch_get_builds now reports {reported['buildStatus']} for a new build; re-check codebuild_sync "
        "(it may no longer need to replace batch_get_builds)"
    )


def test_moto_codebuild_keeps_the_started_build_dict_in_its_history() -> None:
    """codebuild_sync writes the local build's status into the dict start_build returned, and finds it again in
    build_metadata_history (a dict of lists of build dicts with "id")."""
    backend, build = _codebuild_backend_with_a_build()
    history = backend.build_metadata_history
    assert isinstance(history, dict), "moto's CodeBuildBackend.build_metadata_history changed; re-check codebuild_sync"
    assert all(isinstance(builds, list) for builds in history.values())
    stored = [item for builds in history.values() for item in builds if item["id"] == build["id"]]
    assert len(stored) == 1, "moto no longer records a started build in build_metadata_history; re-check codebuild_sync"
    assert stored[0] is build, (
        "moto's start_build now returns a copy of the build it stores; codebuild_sync's updates to the build "
        "would no longer reach batch-get-builds: re-check it"
    )
    assert isinstance(build["environment"]["environmentVariables"], list)
    assert build["id"].startswith("train-image:")


def test_the_adapter_keeps_a_local_build_s_real_status(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Given a build the local runtime is running, codebuild_sync's batch_get_builds returns it as it is."""
    backend, build = _codebuild_backend_with_a_build()
    runtime = runtime_context.RuntimeContext(state_dir=tmp_path, endpoint="http://localhost:0", client_factory=print)
    monkeypatch.setattr(runtime_context, "_current", runtime)
    runtime.state(codebuild_sync.LocalBuilds).add(_sync_task.LocalJob(build["id"]))
    (reported,) = codebuild_sync.batch_get_builds(backend, [build["id"]])
    assert reported["buildStatus"] == "IN_PROGRESS"
    assert reported is build


# ----------------------------------------------------------------------------------------------- sagemaker_sync

TRAINING_JOB: dict[str, Any] = {
    "TrainingJobName": "sagepipe-run-1",
    "AlgorithmSpecification": {
        "TrainingImage": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/train@sha256:{'a' * 64}",
        "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "validation:accuracy", "Regex": "validation:accuracy=([0-9.]+);"}],
    },
    "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sagemaker",
    "OutputDataConfig": {"S3OutputPath": "s3://artifacts-bucket/runs"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
}


def test_moto_sagemaker_creates_training_jobs_completed_with_made_up_metrics() -> None:
    """The gap sagemaker_sync closes: moto's job is Completed at once and its MetricDefinitions are replaced."""
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_training_job(**TRAINING_JOB)
        described = sagemaker.describe_training_job(TrainingJobName="sagepipe-run-1")
    assert described["TrainingJobStatus"] == "Completed", (
        f"moto now creates training jobs {described['TrainingJobStatus']}; re-check sagemaker_sync's _finish "
        "after create_training_job"
    )
    definitions = described["AlgorithmSpecification"]["MetricDefinitions"]
    assert definitions != TRAINING_JOB["AlgorithmSpecification"]["MetricDefinitions"], (
        "moto now keeps the job's MetricDefinitions; sagemaker_sync restores them (harmless), re-check it"
    )


def test_moto_describe_training_job_reflects_the_job_s_attributes() -> None:
    """sagemaker_sync records the local job's outcome by setting attributes on moto's FakeTrainingJob (found in
    SageMakerModelBackend.training_jobs); DescribeTrainingJob must show them, and drop the ones set to None."""
    from moto.sagemaker.models import SageMakerModelBackend

    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_training_job(**TRAINING_JOB)
        backend = Internal("moto.sagemaker.models:sagemaker_backends").resolve("test")[ACCOUNT][REGION]
        assert isinstance(backend, SageMakerModelBackend)
        assert isinstance(backend.training_jobs, dict), "moto's SageMakerModelBackend.training_jobs changed"
        job: Any = backend.training_jobs["sagepipe-run-1"]
        job.training_job_status = "Failed"
        job.secondary_status = "Failed"
        job.failure_reason = "AlgorithmError: the train channel has no 'target' column"
        job.final_metric_data_list = [
            {"MetricName": "validation:accuracy", "Value": 0.5, "Timestamp": datetime(2026, 1, 1, tzinfo=UTC)}
        ]
        job.model_artifacts = None
        described: Any = sagemaker.describe_training_job(TrainingJobName="sagepipe-run-1")
    shown: dict[str, Any] = {
        key: described.get(key)
        for key in ("TrainingJobStatus", "SecondaryStatus", "FailureReason", "FinalMetricDataList")
    }
    assert shown["TrainingJobStatus"] == "Failed"
    assert shown["SecondaryStatus"] == "Failed"
    assert shown["FailureReason"] == "AlgorithmError: the train channel has no 'target' column", (
        f"moto's DescribeTrainingJob no longer reflects the job's attributes ({shown}); re-check sagemaker_sync._finish"
    )
    assert [metric["MetricName"] for metric in shown["FinalMetricDataList"] or []] == ["validation:accuracy"]
    assert "ModelArtifacts" not in described, "moto now shows attributes set to None; re-check sagemaker_sync._finish"
    assert described["TrainingJobArn"] == job.arn


# ----------------------------------------------------------------------------------------------- service_tasks

_CALLER = importlib.import_module("moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_factory")


def _parsed_task(resource: str) -> Any:
    definition = {
        "StartAt": "Work",
        "States": {"Work": {"Type": "Task", "Resource": resource, "Parameters": {}, "End": True}},
    }
    program: Any
    program, _ = AmazonStateLanguageParser.parse(json.dumps(definition))
    return program.states.states["Work"]


@pytest.mark.parametrize("service", ["codebuild", "sagemaker"])
def test_moto_has_no_integration_for_codebuild_and_sagemaker(service: str) -> None:
    """The gap service_tasks closes: moto's factory gives CodeBuild and SageMaker the unsupported task class."""
    moto_factory = original_attribute(state_task_service_factory, "state_task_service_for")
    task = moto_factory(service)
    assert type(task) is StateTaskServiceUnsupported, (
        f"moto now has {type(task).__name__} for {service}; re-check adapter service_tasks (and whether the local "
        f"{service} integration is still needed)"
    )


def test_moto_parses_task_states_through_the_factory_name_in_state_task_factory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """state_task_factory imported the factory by name, and the parser builds Task states through that name: so
    service_tasks must replace it there. Parsing routes codebuild/sagemaker to the local tasks only that way."""
    moto_factory = original_attribute(state_task_service_factory, "state_task_service_for")
    assert original_attribute(_CALLER, "state_task_service_for") is moto_factory, (
        "moto's state_task_factory no longer imports state_task_service_for by name; re-check service_tasks"
    )

    # Given moto's factory where the parser looks: a .sync CodeBuild task is the unsupported class, which cannot sync
    monkeypatch.setattr(_CALLER, "state_task_service_for", moto_factory)
    unsupported = _parsed_task("arn:aws:states:::codebuild:startBuild.sync")
    build_sync_resolver: Any = unsupported._build_sync_resolver
    assert type(unsupported) is StateTaskServiceUnsupported
    with pytest.raises(RuntimeError, match=r"Unsupported \.sync callback procedure"):
        build_sync_resolver(env=None, resource_runtime_part=None, normalised_parameters={}, state_credentials=None)

    # Given the adapter's factory there: the parser builds the local integrations
    monkeypatch.setattr(
        _CALLER,
        "state_task_service_for",
        service_tasks.factory({"codebuild": codebuild.task, "sagemaker": sagemaker.task}),
    )
    assert type(_parsed_task("arn:aws:states:::codebuild:startBuild.sync")) is codebuild_sync.CodeBuildTask, (
        "moto's parser no longer creates Task states through state_task_factory.state_task_service_for; "
        "re-check service_tasks"
    )
    assert type(_parsed_task("arn:aws:states:::sagemaker:createTrainingJob.sync")) is sagemaker_sync.SageMakerTask
    assert type(_parsed_task("arn:aws:states:::sns:publish")).__name__ == "StateTaskServiceSns"


# ----------------------------------------------------------------------------------------------- _sync_task


def test_moto_interrupts_a_task_token_endpoint_it_creates_only_for_wait_for_task_token() -> None:
    """Why LocalSyncTask lists waitForTaskToken as supported (and refuses it itself): moto's
    _eval_integration_pattern always calls callback_endpoint.interrupt_all(), but creates that endpoint only
    when waitForTaskToken is among the supported patterns; without it, every .sync task ends in an AttributeError."""
    source = inspect.getsource(StateTaskServiceCallback._eval_integration_pattern)
    assert "callback_endpoint.interrupt_all()" in source, (
        "moto's _eval_integration_pattern no longer interrupts the callback endpoint unconditionally; "
        "re-check _sync_task.LocalSyncTask (it may not need to list waitForTaskToken any more)"
    )
    assert "ResourceCondition.WaitForTaskToken in self._supported_integration_patterns" in source, (
        "moto now creates the callback endpoint on another condition; re-check _sync_task.LocalSyncTask.__init__"
    )
    task = codebuild_sync.CodeBuildTask()
    assert ResourceCondition.WaitForTaskToken in task._supported_integration_patterns
    assert ResourceCondition.Sync in task._supported_integration_patterns


def test_moto_polls_the_sync_resolver_with_a_pause_and_the_local_tasks_poll_without_one() -> None:
    """The gap LocalSyncTask._eval_sync closes: moto calls the resolver in a loop while env.is_running(), pausing
    `_DELAY_SECONDS_SYNC_CONDITION_CHECK` after each "not yet" (None). The local loop is moto's without the pause
    (its resolvers block until the job ends) and keeps moto's signature."""
    source = inspect.getsource(StateTaskServiceCallback._eval_sync)
    for fragment in (
        "while env.is_running()",
        "sync_result = sync_resolver()",
        "if callback_output or sync_result:",
        "time.sleep(_DELAY_SECONDS_SYNC_CONDITION_CHECK)",
    ):
        assert fragment in source, (
            f"moto's StateTaskServiceCallback._eval_sync no longer contains {fragment!r}; re-check "
            "_sync_task.LocalSyncTask._eval_sync, which reproduces moto's loop without its pause"
        )
    delay = state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK
    assert isinstance(delay, int | float)
    assert delay > 0, "moto no longer pauses between sync checks; LocalSyncTask._eval_sync may no longer be needed"
    moto_parameters = list(inspect.signature(StateTaskServiceCallback._eval_sync).parameters)
    assert list(inspect.signature(_sync_task.LocalSyncTask._eval_sync).parameters) == moto_parameters


def test_the_local_sync_loop_returns_as_soon_as_the_job_ends_and_stops_with_the_execution() -> None:
    """Given a job that ends while the engine waits on it, then the local loop returns its result without a pause;
    given an execution that stops, then the loop stops asking."""
    task = codebuild_sync.CodeBuildTask()
    job = _sync_task.LocalJob("build:1")
    resolver = _sync_task.sync_resolver(job, lambda: {"Build": {"BuildStatus": "SUCCEEDED"}})
    running = SimpleNamespace(is_running=lambda: True)
    threading.Timer(0.05, job.done.set).start()

    started = time.monotonic()
    result = task._eval_sync(running, resolver, None, None, None)

    assert result == {"Build": {"BuildStatus": "SUCCEEDED"}}
    assert time.monotonic() - started < _sync_task.RESOLVER_WAIT_SECONDS
    stopped = SimpleNamespace(is_running=lambda: False)
    assert task._eval_sync(stopped, lambda: pytest.fail("asked after the execution stopped"), None, None, None) is None


def test_the_failures_sync_tasks_raise_are_built_from_moto_s_types() -> None:
    """task_failed and service_error build moto failure events (StatesErrorName, CustomErrorName, EventDetails with
    taskFailedEventDetails) that moto's Catch and history read back through extract_error_cause_pair."""
    env = SimpleNamespace(next_state_name="BuildImage", event_history_context=SimpleNamespace(source_event_id=7))
    task: Any = SimpleNamespace(_get_sfn_resource=lambda: "startBuild.sync", _get_sfn_resource_type=lambda: "codebuild")
    failed = _sync_task.task_failed(task, env, {"Build": {"BuildStatus": "FAILED"}})
    assert failed.failure_event.event_type == HistoryEventType.TaskFailed
    assert failed.failure_event.error_name is not None
    assert failed.failure_event.error_name.error_name == "States.TaskFailed"
    assert failed.extract_error_cause_pair() == ("States.TaskFailed", '{"Build":{"BuildStatus":"FAILED"}}'), (
        "moto's FailureEventException no longer reads error and cause from taskFailedEventDetails; re-check _sync_task"
    )
    error = _sync_task.service_error(
        task, env, "codebuild", _sync_task.client_error("ResourceNotFoundException", "Project cannot be found: x")
    )
    pair = error.extract_error_cause_pair()
    assert pair is not None
    assert pair[0] == "CodeBuild.ResourceNotFoundException"
    assert error.failure_event.state_name == "BuildImage"


def test_install_is_idempotent_and_keeps_moto_s_original_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """install() only checks the internals and patches moto: installing twice wraps moto's original once, and
    original_attribute still returns moto's own implementation (which these contract tests call)."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    # Restored after the test: without a running emulator, the adapter's invoke has no runtime context to read.
    monkeypatch.setattr(LambdaSimpleBackend, "invoke", LambdaSimpleBackend.invoke)
    before = original_attribute(LambdaSimpleBackend, "invoke")
    lambda_runtime.install()
    lambda_runtime.install()
    sagemaker_sync.install()
    assert LambdaSimpleBackend.invoke is lambda_runtime.invoke
    assert original_attribute(LambdaSimpleBackend, "invoke") is before
    assert before.__module__ == "moto.awslambda_simple.models", "original_attribute no longer returns moto's invoke"


# ------------------------------------------------------------------------------------ task_clients / program_cache


def test_moto_builds_a_new_client_for_every_task_call_and_ignores_the_state_role() -> None:
    """The gap task_clients closes: moto's boto_client_for builds a fresh boto3 client on every call (about 15 ms
    of CPU), and the state's role does not change the client it builds (so caching per role is faithful)."""
    factory = importlib.import_module(task_clients._FACTORY_MODULE)
    moto_build = original_attribute(factory, "boto_client_for")
    role = SimpleNamespace(role_arn=f"arn:aws:iam::{ACCOUNT}:role/other")
    first = moto_build(REGION, "dynamodb", None)
    second = moto_build(REGION, "dynamodb", role)
    assert first is not second, "moto now reuses task clients; task_clients may no longer be needed"
    for client in (first, second):
        credentials = client._request_signer._credentials
        assert (credentials.access_key, credentials.secret_key) == ("ak", "sk"), (
            "moto's task clients now carry other credentials (the state role?); re-check task_clients' cache key"
        )
    for module in task_clients.CALLER_MODULES:
        assert original_attribute(importlib.import_module(module), "boto_client_for") is moto_build, (
            f"{module} no longer imports moto's boto_client_for by name; re-check task_clients.CALLER_MODULES"
        )


def test_task_clients_shares_one_client_per_region_service_and_role(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The adapter's cache: the same client for the same (region, service, role), another for anything else; a
    reset of the runtime forgets them."""
    runtime = runtime_context.RuntimeContext(state_dir=tmp_path, endpoint="http://localhost:0", client_factory=print)
    monkeypatch.setattr(runtime_context, "_current", runtime)
    role = SimpleNamespace(role_arn=f"arn:aws:iam::{ACCOUNT}:role/pipeline")
    client = task_clients.boto_client_for(REGION, "dynamodb", role)
    assert task_clients.boto_client_for(REGION, "dynamodb", SimpleNamespace(role_arn=role.role_arn)) is client
    assert task_clients.boto_client_for(REGION, "sns", role) is not client
    assert task_clients.boto_client_for("eu-west-1", "dynamodb", role) is not client
    assert task_clients.boto_client_for(REGION, "dynamodb", None) is not client
    runtime.reset()
    assert task_clients.boto_client_for(REGION, "dynamodb", role) is not client


def _attributes_set_after_construction(function: Any) -> set[str]:
    """Names of the attributes `function` (a method) sets on `self`, or changes in place."""
    import ast
    import textwrap

    found: set[str] = set()
    in_place = {"append", "extend", "update", "pop", "clear", "add", "setdefault", "remove", "insert", "discard"}
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(function)))):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in in_place:
            targets = [node.func.value]
        for target in targets:
            changed = target
            while isinstance(changed, ast.Subscript):  # self.x[key] = ... changes self.x
                changed = changed.value
            owner = changed.value if isinstance(changed, ast.Attribute) else None
            if isinstance(changed, ast.Attribute) and isinstance(owner, ast.Name) and owner.id == "self":
                found.add(changed.attr)
    return found


def _component_classes() -> list[type]:
    import pkgutil

    import moto.stepfunctions.parser.asl.component as components_package
    from moto.stepfunctions.parser.asl.component.component import Component

    for info in pkgutil.walk_packages(components_package.__path__, f"{components_package.__name__}."):
        importlib.import_module(info.name)
    found: list[type] = []
    pending: list[type] = [Component]
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return found


SOURCE_ROOTS: list[str] = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "pytest"
]["ini_options"]["pythonpath"]
"""Where pytest finds the project's modules; an interpreter the tests start finds them there too."""


def attributes_components_change_with_every_adapter_installed() -> dict[str, list[str]]:
    """Install every adapter, then read each Step Functions component class's own methods (moto's and
    sagepipe's): the attributes of its own that each method sets or changes, by `module:Class.method`.

    It installs the adapters for good, so the test runs it in an interpreter of its own (a test worker whose later
    tests run moto's engine in process, with no runtime, must not find them installed)."""
    from sagepipe.local.services import install_all

    install_all()
    changed: dict[str, list[str]] = {}
    for cls in _component_classes():
        for name, member in vars(cls).items():
            function = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            if name in ("__init__", "from_state_props") or not inspect.isfunction(function):
                continue
            attributes = _attributes_set_after_construction(function)
            if attributes:
                changed[f"{cls.__module__}:{cls.__qualname__}.{name}"] = sorted(attributes)
    return changed


def test_moto_s_program_components_keep_no_evaluation_state_of_their_own() -> None:
    """program_cache shares one parsed program between executions, which is safe only while every Step Functions
    component (moto's, sagepipe's Task components, and the methods sagepipe's adapters put in moto's) keeps what
    an evaluation changes in the Environment: no method but the construction (__init__, and from_state_props,
    which the parser calls) and heap_key's sets or changes an attribute of its own component."""
    # Given every adapter installed (in a fresh interpreter), and every component class moto and sagepipe define
    # When the methods each one has of its own are read
    scan = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from tests.contract.test_adapter_contracts import "
            "attributes_components_change_with_every_adapter_installed as scan; print(json.dumps(scan()))",
        ],
        check=False,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(str(PROJECT_ROOT / part) for part in SOURCE_ROOTS)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert scan.returncode == 0, scan.stderr
    changed = json.loads(scan.stdout.splitlines()[-1])
    # Then only EvalComponent.heap_key sets one, which program_cache draws before sharing a program
    eval_component = "moto.stepfunctions.parser.asl.component.eval_component:EvalComponent"
    assert changed == {f"{eval_component}.heap_key": ["__heap_key"]}, (
        "a Step Functions component now keeps state of its own while it evaluates; program_cache shares one parsed "
        f"program between executions, which is no longer safe unless that state is drawn before sharing: {changed}"
    )


def test_every_execution_of_a_definition_shares_one_program_with_every_heap_key_drawn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """program_cache's sharing: the same program for every execution of a definition, parsed once, with the heap
    key of every component drawn before it is shared (two executions drawing one at once could keep two); a
    reset keeps it."""
    # Given sagepipe's definition, and a runtime
    definition = (PROJECT_ROOT / "statemachine" / "pipeline.asl.json").read_text(encoding="utf-8")
    runtime = runtime_context.RuntimeContext(state_dir=tmp_path, endpoint="http://localhost:0", client_factory=print)
    monkeypatch.setattr(runtime_context, "_current", runtime)

    # When two executions ask for its program
    first = program_cache.parsed_program(definition)
    second = program_cache.parsed_program(definition)

    # Then they share one, whose components (the Train task's retriers among them) all have their heap key
    assert first is second
    found = program_cache.components(first)
    assert first in found
    assert first.states.states["Train"] in found
    assert len(found) > 1000, "the walk no longer reaches the program's components"
    assert all(component._EvalComponent__heap_key is not None for component in found)
    runtime.reset()
    assert program_cache.parsed_program(definition) is first, "a reset made the next run parse again"


def test_moto_validates_a_definition_by_parsing_it_and_the_cache_refuses_what_moto_refuses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """CreateStateMachine validates with one more parse (the gap program_cache closes for validation too): moto's
    _validate_definition parses with the parser program_cache uses, and the cached validation keeps the parse
    for the first execution, while a definition the parser refuses gets moto's own InvalidDefinition."""
    from moto.stepfunctions.parser.api import InvalidDefinition
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    moto_validate = original_attribute(StepFunctionsParserBackend, "_validate_definition")
    assert "AmazonStateLanguageParser.parse(definition)" in inspect.getsource(moto_validate), (
        "moto no longer validates a definition by parsing it; re-check program_cache's _validate_definition"
    )
    runtime = runtime_context.RuntimeContext(state_dir=tmp_path, endpoint="http://localhost:0", client_factory=print)
    monkeypatch.setattr(runtime_context, "_current", runtime)
    definition = (PROJECT_ROOT / "statemachine" / "pipeline.asl.json").read_text(encoding="utf-8")

    program_cache._validate_definition(definition=definition)

    assert definition in runtime.memo(program_cache.ParsedPrograms).programs
    broken = '{"StartAt": "Nowhere", "States": {"Somewhere": {"Type": "Pass", "End": true'
    with pytest.raises(InvalidDefinition) as cached_refusal:
        program_cache._validate_definition(definition=broken)
    with pytest.raises(InvalidDefinition) as moto_refusal:
        moto_validate(definition=broken)
    assert str(cached_refusal.value) == str(moto_refusal.value)


# ----------------------------------------------------------------------------------------------- execution_slots


def test_moto_gives_every_execution_a_thread_of_its_own_and_does_all_its_work_there() -> None:
    """The gap execution_slots closes, and the steps it splits: moto's ExecutionWorker.start starts a thread per
    execution, whose _execution_logic gets the program and the environment, records ExecutionStarted, evaluates
    the program and reports the end. execution_slots does the environment and ExecutionStarted at once and the
    rest on a slot; if moto's steps change, its split must change with them."""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    start = inspect.getsource(original_attribute(ExecutionWorker, "start"))
    assert "Thread(target=self._execution_logic" in start, (
        f"moto's ExecutionWorker.start no longer runs _execution_logic on a thread of its own:\n{start}\n"
        "re-check whether sagepipe.local.stepfunctions.execution_slots is still needed"
    )
    logic = inspect.getsource(ExecutionWorker._execution_logic)
    steps = [
        "self._get_evaluation_entrypoint()",
        "self._get_evaluation_environment()",
        "HistoryEventType.ExecutionStarted",
        "program.eval(self.env)",
        "self._execution_communication.terminated()",
    ]
    positions = [logic.find(step) for step in steps]
    missing = [step for step, position in zip(steps, positions, strict=True) if position < 0]
    assert not missing, (
        f"moto's _execution_logic no longer has the steps {missing}; "
        "re-check execution_slots._start and _started_event, which do them in two halves"
    )
    assert positions == sorted(positions), f"moto's _execution_logic does its steps in another order:\n{logic}"


# -------------------------------------------------------------------------------------- dynamodb_attribute_values

EVERY_KIND_OF_ITEM: dict[str, Any] = {
    "pk": {"S": "RUN#1"},
    "sk": {"S": "RECORD"},
    "count": {"N": "42.5"},
    "blob": {"B": b"\x00\x01binary"},
    "names": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"x", b"y"]},
    "nothing": {"NULL": True},
    "flag": {"BOOL": False},
    "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"BOOL": True}}}]}, "empty": {"M": {}}}},
    "empty_list": {"L": []},
}


def _dynamodb_answers(monkeypatch: pytest.MonkeyPatch, structure_serialiser: Any) -> tuple[list[bytes], int]:
    """The raw bodies moto answers GetItem, Query, Scan and BatchGetItem with, under `structure_serialiser`, and
    how many member lookups its attribute picker made."""
    from moto.core.serialize import BaseJSONSerializer, ResponseSerializer

    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", structure_serialiser)
    lookups = 0
    moto_get_value = ResponseSerializer.get_value

    def counted_get_value(self: Any, value: Any, key: str, shape: Any) -> Any:
        nonlocal lookups
        lookups += 1
        return moto_get_value(self, value, key, shape)

    monkeypatch.setattr(ResponseSerializer, "get_value", counted_get_value)
    bodies: list[bytes] = []
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.meta.events.register("after-call", lambda http_response, **_: bodies.append(http_response.content))
        dynamodb.create_table(
            TableName="runs",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName="runs", Item=EVERY_KIND_OF_ITEM)
        dynamodb.put_item(TableName="runs", Item={"pk": {"S": "RUN#2"}, "sk": {"S": "CLAIM"}})
        bodies.clear()
        key = {"pk": EVERY_KIND_OF_ITEM["pk"], "sk": EVERY_KIND_OF_ITEM["sk"]}
        dynamodb.get_item(TableName="runs", Key=key)
        dynamodb.query(
            TableName="runs", KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "RUN#1"}}
        )
        dynamodb.scan(TableName="runs")
        dynamodb.batch_get_item(RequestItems={"runs": {"Keys": [key]}})
        dynamodb.update_item(
            TableName="runs",
            Key=key,
            UpdateExpression="SET flag = :flag",
            ExpressionAttributeValues={":flag": {"BOOL": True}},
            ReturnValues="ALL_NEW",
        )
    return bodies, lookups


def test_dynamodb_items_are_answered_byte_for_byte_as_moto_answers_them_with_far_fewer_lookups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gap dynamodb_attribute_values closes, and its one promise: moto's generic structure path looks every
    member of every AttributeValue up through its attribute picker; the adapter serialises only the members the
    value holds, and the answers are the same bytes."""
    from moto.core.serialize import BaseJSONSerializer

    moto_structure = original_attribute(BaseJSONSerializer, "_serialize_type_structure")
    # The adapter hands other structures to moto's original, which it finds where install() would have left it.
    registry_key = (id(BaseJSONSerializer), "_serialize_type_structure")
    monkeypatch.setitem(moto_internals._ORIGINALS, registry_key, moto_structure)
    moto_bodies, moto_lookups = _dynamodb_answers(monkeypatch, moto_structure)
    adapter_bodies, adapter_lookups = _dynamodb_answers(
        monkeypatch, dynamodb_attribute_values._serialize_type_structure
    )
    assert len(moto_bodies) == 5
    assert adapter_bodies == moto_bodies, (
        "moto now serialises DynamoDB items differently from dynamodb_attribute_values; re-check the adapter"
    )
    assert json.loads(moto_bodies[0])["Item"]["nested"]["M"]["list"]["L"][2] == {"M": {"deep": {"BOOL": True}}}
    assert adapter_lookups * 5 < moto_lookups, (
        f"moto's path made {moto_lookups} member lookups, the adapter's {adapter_lookups}: the fast path was not taken"
    )


# ----------------------------------------------------------------------------------------------- dynamodb_atomic


def _concurrent_first_writes(monkeypatch: pytest.MonkeyPatch, call_action: Any, rounds: int = 20) -> int:
    """Two threads each SET their own attribute on the same new item, `rounds` times (a new item each round);
    returns how many rounds lost a write. moto's read of the item is slowed by 2 ms, so that without a lock
    the two requests overlap, as they do when two executions record the latest commit and data at once."""
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    monkeypatch.setattr(DynamoHandler, "call_action", call_action)
    moto_get_item = Table.get_item

    def slow_get_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        found = moto_get_item(self, *args, **kwargs)
        time.sleep(0.002)
        return found

    monkeypatch.setattr(Table, "get_item", slow_get_item)
    lost = 0
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="runs",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for round_number in range(rounds):
            key = {"pk": {"S": f"POINTER#{round_number}"}}

            def write(half: str, key: dict[str, Any] = key) -> None:
                dynamodb.update_item(
                    TableName="runs",
                    Key=key,
                    UpdateExpression="SET #half = :value",
                    ExpressionAttributeNames={"#half": half},
                    ExpressionAttributeValues={":value": {"S": half}},
                )

            threads = [threading.Thread(target=write, args=(half,)) for half in ("latest_commit", "latest_data")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=10)
            item = dynamodb.get_item(TableName="runs", Key=key)["Item"]
            lost += not {"latest_commit", "latest_data"} <= item.keys()
    return lost


def test_moto_loses_one_of_two_concurrent_first_writes_to_an_item(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gap dynamodb_atomic closes: moto reads, checks and writes an item without a lock, so of two
    UpdateItem calls creating the same item at once, one is lost (DynamoDB applies both)."""
    from moto.dynamodb.responses import DynamoHandler

    lost = _concurrent_first_writes(monkeypatch, original_attribute(DynamoHandler, "call_action"))
    assert lost > 0, "moto no longer loses concurrent writes to one item; dynamodb_atomic may no longer be needed"


def test_dynamodb_atomic_applies_both_concurrent_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the adapter's call_action, each request reads, checks and writes as one step: no write is lost."""
    from moto.dynamodb.responses import DynamoHandler

    monkeypatch.setattr(DynamoHandler, "call_action", DynamoHandler.call_action)  # restored after the test
    dynamodb_atomic.install()  # remembers moto's call_action, which the adapter's calls
    assert _concurrent_first_writes(monkeypatch, dynamodb_atomic.call_action) == 0


# ----------------------------------------------------------------------------------------------- task_timeouts


def _failure_env() -> Any:
    return SimpleNamespace(next_state_name="Work", event_history_context=SimpleNamespace(source_event_id=3))


def test_moto_names_a_dynamodb_task_timeout_an_amazon_dynamodb_exception() -> None:
    """The gap task_timeouts closes: moto's DynamoDB task turns the engine's TimeoutError into
    DynamoDB.AmazonDynamoDBException, while the Lambda task (which defers to StateTask) gives States.Timeout."""
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb import (
        StateTaskServiceDynamoDB,
    )

    task = _parsed_task("arn:aws:states:::dynamodb:updateItem")
    moto_from_error = original_attribute(StateTaskServiceDynamoDB, "_from_error")
    named = moto_from_error(task, _failure_env(), EvalTimeoutError()).error_name.error_name
    assert named == "DynamoDB.AmazonDynamoDBException", (
        f"moto now names a DynamoDB task timeout {named}; task_timeouts may no longer be needed"
    )
    lambda_task = _parsed_task("arn:aws:states:::lambda:invoke")
    assert lambda_task._from_error(_failure_env(), EvalTimeoutError()).error_name.error_name == "States.Timeout"


def test_task_timeouts_gives_states_timeout_and_keeps_dynamodb_s_own_errors() -> None:
    """With the adapter: a timeout is States.Timeout; a service error is still DynamoDB.<Code>."""
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError

    task = _parsed_task("arn:aws:states:::dynamodb:updateItem")
    assert task_timeouts._from_error(task, _failure_env(), EvalTimeoutError()).error_name.error_name == (
        "States.Timeout"
    )
    response: Any = {
        "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"},
        "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "r-1"},
    }
    throttled = ClientError(response, "UpdateItem")
    named = task_timeouts._from_error(task, _failure_env(), throttled).error_name.error_name
    assert named == "DynamoDB.ProvisionedThroughputExceededException"


# ----------------------------------------------------------------------------------------------- service_errors

_SERVICE_MODULE = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service"


def _service_class(module: str, name: str) -> Any:
    return getattr(importlib.import_module(f"{_SERVICE_MODULE}.{module}"), name)


def _answer(code: str, status: int = 400) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "r-1"},
    }
    return ClientError(response, "Call")


def _function_error(error_type: str) -> Exception:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils import (
        LambdaFunctionErrorException,
    )

    payload = json.dumps({"errorMessage": "Task timed out after 3.00 seconds", "errorType": error_type})
    return LambdaFunctionErrorException(function_error="Unhandled", payload=payload)


def test_moto_names_optimised_integration_errors_from_the_code_alone() -> None:
    """The gap service_errors closes: moto names DynamoDB errors DynamoDB.<Code>, SNS errors SNS.<Code>Exception
    and Lambda errors Lambda.<Code>, whatever the Java SDK 1.x models; a timed-out function keeps its errorType."""
    dynamodb = original_attribute(
        _service_class("state_task_service_dynamodb", "StateTaskServiceDynamoDB"), "_error_cause_from_client_error"
    )
    error, cause = dynamodb(_answer("InternalServerError", 500))
    assert error == "DynamoDB.InternalServerError", f"moto now names it {error}: re-check adapter service_errors"
    assert cause.endswith(
        "(Service: AmazonDynamoDBv2; Status Code: 500; Error Code: InternalServerError; Request ID: r-1; Proxy: null)"
    )
    sns_from_error = original_attribute(_service_class("state_task_service_sns", "StateTaskServiceSns"), "_from_error")
    sns = sns_from_error(_parsed_task("arn:aws:states:::sns:publish"), _failure_env(), _answer("ThrottlingException"))
    assert sns.error_name.error_name == "SNS.ThrottlingException"
    lambda_from_error = original_attribute(
        _service_class("state_task_service_lambda", "StateTaskServiceLambda"), "_from_error"
    )
    task = _parsed_task("arn:aws:states:::lambda:invoke")
    assert lambda_from_error(task, _failure_env(), _answer("AccessDeniedException")).error_name.error_name == (
        "Lambda.AccessDeniedException"
    )
    timed_out = lambda_from_error(task, _failure_env(), _function_error("Sandbox.Timedout"))
    assert timed_out.error_name.error_name == "Sandbox.Timedout"


def _keep(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
    """Restore owner.name after the test, as stored on the class (a staticmethod stays one)."""
    monkeypatch.setattr(owner, name, owner.__dict__[name])


def test_service_errors_names_as_step_functions_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the adapter: the Java SDK 1.x class for a modelled code, the client's base exception for any other,
    the 1.x cause format, Lambda.Unknown for a function timeout, and a function's own errorType otherwise."""
    dynamodb_class = _service_class("state_task_service_dynamodb", "StateTaskServiceDynamoDB")
    sns_class = _service_class("state_task_service_sns", "StateTaskServiceSns")
    lambda_class = _service_class("state_task_service_lambda", "StateTaskServiceLambda")
    _keep(monkeypatch, dynamodb_class, "_error_cause_from_client_error")
    _keep(monkeypatch, sns_class, "_from_error")
    _keep(monkeypatch, lambda_class, "_from_error")
    service_errors.install()
    service_errors.install()

    dynamodb = _parsed_task("arn:aws:states:::dynamodb:putItem")
    failure = dynamodb._from_error(_failure_env(), _answer("InternalServerError", 500))
    assert failure.error_name.error_name == "DynamoDB.InternalServerErrorException"
    details = failure.event_details["taskFailedEventDetails"]
    assert details["error"] == "DynamoDB.InternalServerErrorException"
    assert details["cause"] == (
        "InternalServerError happened (Service: AmazonDynamoDBv2; Status Code: 500; Error Code: InternalServerError; "
        "Request ID: r-1; Proxy: null)"
    )
    assert dynamodb._from_error(_failure_env(), _answer("ValidationException")).error_name.error_name == (
        "DynamoDB.AmazonDynamoDBException"
    )
    sns = _parsed_task("arn:aws:states:::sns:publish")
    assert sns._from_error(_failure_env(), _answer("Throttled", 429)).error_name.error_name == "SNS.ThrottledException"
    assert sns._from_error(_failure_env(), _answer("ThrottlingException")).error_name.error_name == (
        "SNS.AmazonSNSException"
    )
    lambda_task = _parsed_task("arn:aws:states:::lambda:invoke")
    assert lambda_task._from_error(_failure_env(), _answer("AccessDeniedException")).error_name.error_name == (
        "Lambda.AWSLambdaException"
    )
    assert lambda_task._from_error(_failure_env(), _answer("TooManyRequestsException", 429)).error_name.error_name == (
        "Lambda.TooManyRequestsException"
    )
    assert lambda_task._from_error(_failure_env(), _function_error("Sandbox.Timedout")).error_name.error_name == (
        "Lambda.Unknown"
    )
    assert lambda_task._from_error(_failure_env(), _function_error("ValueError")).error_name.error_name == "ValueError"


# ---------------------------------------------------------------------------------- local_clock / fault_injection


def test_moto_sleeps_each_retry_with_time_sleep_and_waits_each_timeout_it_evaluates() -> None:
    """local_clock replaces the retrier module's `time` (so only its sleep changes) and the value Timeout pushes:
    moto must still sleep with time.sleep(interval_seconds), and wait for the timeout it has just evaluated."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState

    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl.RetrierDecl._eval_body), (
        "moto's retrier no longer waits with time.sleep(interval_seconds); re-check local_clock"
    )
    waits = inspect.getsource(ExecutionState._evaluate_with_timeout)
    for fragment in ("self.timeout.eval(env=env)", "timeout_seconds: int = env.stack.pop()", ".wait(timeout_seconds)"):
        assert fragment in waits, f"moto's _evaluate_with_timeout no longer has {fragment!r}; re-check local_clock"


def test_moto_schedules_and_starts_a_task_before_calling_its_service() -> None:
    """fault_injection interferes at the end of _before_eval_execution: moto must call it (which records
    TaskScheduled and TaskStarted) before _eval_service_task, in _eval_execution."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )

    execution = inspect.getsource(original_attribute(StateTaskService, "_eval_execution"))
    before, service = execution.find("self._before_eval_execution("), execution.find("self._eval_service_task(")
    assert 0 <= before < service, (
        "moto no longer calls _before_eval_execution before the service; re-check fault_injection"
    )
    scheduling = inspect.getsource(original_attribute(StateTaskService, "_before_eval_execution"))
    assert "HistoryEventType.TaskScheduled" in scheduling
    assert "HistoryEventType.TaskStarted" in scheduling


def test_moto_components_do_nothing_once_their_frame_has_ended() -> None:
    """Why LocalSyncTask stops an abandoned job instead of waiting for it: a call that returns after its state
    timed out runs in an ended frame, where moto evaluates no component (so its timeout is never pushed)."""
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    source = inspect.getsource(EvalComponent.eval)
    assert "if env.is_running():" in source, (
        "moto's EvalComponent.eval now evaluates in ended frames; re-check _sync_task._eval_integration_pattern"
    )


# ----------------------------------------------------------------------------------------------- jsonpath_cache


def test_moto_parses_jsonpath_on_every_use_and_leaves_the_expression_as_it_was() -> None:
    """The gap jsonpath_cache closes: moto parses ResultPath, JSONPath reads and InputTransformer paths on every
    use; sharing one parse is faithful because moto's uses (find, update_or_create) do not change it."""
    from moto.events.utils import EventTemplateParser

    result_path = importlib.import_module(jsonpath_cache.RESULT_PATH_MODULE)
    json_path = importlib.import_module(jsonpath_cache.JSON_PATH_MODULE)
    assert "result_expr = parse(self.result_path_src)" in inspect.getsource(result_path.ResultPath._eval_body)
    assert "input_expr = parse(path)" in inspect.getsource(json_path.extract_json)
    assert "from jsonpath_ng.ext import parse" in inspect.getsource(EventTemplateParser.parse), (
        "moto's EventBridge no longer imports jsonpath_ng.ext.parse when it runs; re-check jsonpath_cache"
    )
    extended = original_attribute(importlib.import_module(jsonpath_cache.EXTENDED_MODULE), "parse")
    expression = extended("$.detail.object.key")
    before = repr(expression)
    document = {"detail": {"object": {"key": "a.csv"}}}
    assert [match.value for match in expression.find(document)] == ["a.csv"]
    expression.update_or_create({}, "b.csv")
    assert repr(expression) == before
    assert [match.value for match in expression.find(document)] == ["a.csv"]


def test_jsonpath_cache_parses_each_text_once_per_runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Given a running runtime, the same text gives the same parsed expression and another text another one;
    without a runtime, every call parses."""
    calls: list[str] = []

    def counting_parse(path: str) -> Any:
        calls.append(path)
        return object()

    cached = jsonpath_cache._cached("test", counting_parse)
    monkeypatch.setattr(runtime_context, "_current", None)
    assert cached("$") is not cached("$")
    runtime = runtime_context.RuntimeContext(state_dir=tmp_path, endpoint="http://localhost:0", client_factory=print)
    monkeypatch.setattr(runtime_context, "_current", runtime)
    calls.clear()
    first = cached("$.detail")
    assert cached("$.detail") is first
    assert cached("$.other") is not first
    assert calls == ["$.detail", "$.other"]

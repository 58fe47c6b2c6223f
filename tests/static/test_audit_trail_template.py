"""template.yaml's audit trail: the runs table's query indexes, the Object Lock ledger, and what may seal it."""

import json
from functools import cache
from typing import Any

import pytest

from sagepipe.runs.queries import INDEX_KEYS, RUN_RECORD_SK, SORT_KEY
from sagepipe.template import PROJECT_ROOT, load_template, runs_table_request, translate

DEFINITION = json.loads((PROJECT_ROOT / "statemachine" / "pipeline.asl.json").read_text(encoding="utf-8"))
STATES = DEFINITION["States"]


def _key_schema(index: dict[str, Any]) -> tuple[str, str]:
    keys = {item["KeyType"]: item["AttributeName"] for item in index["KeySchema"]}
    return keys["HASH"], keys["RANGE"]


def test_the_indexes_are_the_ones_sagepipe_runs_queries() -> None:
    """Given the deployed table, then every index `sagepipe runs` names exists, keyed as it queries it, sorted by
    started_at, and projects every attribute (one Query per page, no BatchGetItem)."""
    indexes = {index["IndexName"]: index for index in runs_table_request("t")["GlobalSecondaryIndexes"]}
    assert set(indexes) == set(INDEX_KEYS)
    for name, partition in INDEX_KEYS.items():
        assert _key_schema(indexes[name]) == (partition, SORT_KEY), name
        assert indexes[name]["Projection"] == {"ProjectionType": "ALL"}, name


@pytest.mark.parametrize("count", ["1", "2", "3", "4", "5"])
def test_an_upgrade_adds_one_index_per_step_with_exactly_its_attributes(count: str) -> None:
    """Given RunsTableIndexes=k, then the table has the first k indexes, and defines exactly the attributes their
    keys use (DynamoDB refuses an attribute definition no key uses), so each step of an upgrade adds one index."""
    request = runs_table_request("t", {"RunsTableIndexes": count})
    names = [index["IndexName"] for index in request["GlobalSecondaryIndexes"]]
    assert names == list(INDEX_KEYS)[: int(count)]
    used = {"pk", "sk"} | {name for index in request["GlobalSecondaryIndexes"] for name in _key_schema(index)}
    assert {item["AttributeName"] for item in request["AttributeDefinitions"]} == used
    assert all(item["AttributeType"] == "S" for item in request["AttributeDefinitions"])


def test_only_run_records_are_in_the_indexes() -> None:
    """Every index is sorted by started_at, which only run records have: the claim (ClaimRun) and the pointer
    (RecordLatestPointer) never write it, and every writer of a run record (the normaliser's base, and
    RecordFailure when it creates the record) does. runs-by-time's partition is the run record's sort key."""
    assert RUN_RECORD_SK == "RECORD"
    claim = STATES["ClaimRun"]["Arguments"]["Item"]
    assert claim["sk"] == {"S": "CLAIM"}
    assert SORT_KEY not in claim
    assert SORT_KEY not in STATES["RecordLatestPointer"]["Arguments"]["UpdateExpression"]
    assert (
        f"{SORT_KEY} = if_not_exists({SORT_KEY}, :started_at)"
        in STATES["RecordFailure"]["Arguments"]["UpdateExpression"]
    )
    source = (PROJECT_ROOT / "functions" / "normalise_trigger" / "trigger.py").read_text(encoding="utf-8")
    assert f'"{SORT_KEY}": request.started_at' in source


# ------------------------------------------------------------------------------------------------------ the ledger
@cache
def _resources() -> dict[str, Any]:
    resources: dict[str, Any] = translate(load_template())["Resources"]
    return resources


def test_the_ledger_is_object_locked_versioned_encrypted_private_logged_and_tls_only() -> None:
    resources = _resources()
    ledger = resources["LedgerBucket"]
    properties = ledger["Properties"]
    assert ledger["DeletionPolicy"] == "Retain"
    assert properties["ObjectLockEnabled"] is True
    assert properties["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": {"Ref": "LedgerRetentionMode"}, "Days": {"Ref": "LedgerRetentionDays"}}},
    }
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert properties["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}
    rule = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert rule == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": ["PipelineKey", "Arn"]}}
    policy = resources["LedgerBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "LedgerBucket"}
    assert any(
        statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for statement in policy["PolicyDocument"]["Statement"]
    )


def test_governance_is_the_default_and_compliance_a_choice() -> None:
    parameters = load_template()["Parameters"]
    assert parameters["LedgerRetentionMode"]["AllowedValues"] == ["GOVERNANCE", "COMPLIANCE"]
    assert parameters["LedgerRetentionMode"]["Default"] == "GOVERNANCE"
    days = parameters["LedgerRetentionDays"]
    assert (days["Type"], days["MinValue"]) == ("Number", 1)
    assert days["MaxValue"] == 36500


def test_the_seal_function_may_read_and_seal_run_records_and_write_ledger_objects_only() -> None:
    """Least privilege: GetItem and UpdateItem on run records (leading key RUN#), PutObject under ledger/ of the
    ledger bucket, and the key to encrypt; no s3:PutObjectRetention (the bucket's default applies), no delete."""
    resources = _resources()
    role = next(
        resource
        for name, resource in resources.items()
        if resource["Type"] == "AWS::IAM::Role" and name.startswith("SealRecordFunction")
    )
    statements = [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    granted: dict[str, Any] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            granted[action] = statement
    assert set(granted) == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "s3:PutObject",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    assert granted["dynamodb:UpdateItem"]["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RUN#*"]}
    }
    assert granted["s3:PutObject"]["Resource"] == {"Fn::Sub": "${LedgerBucket.Arn}/ledger/*"}
    function = resources["SealRecordFunction"]["Properties"]
    assert function["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "sagepipe",
        "POWERTOOLS_METRICS_NAMESPACE": "sagepipe",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "ENVIRONMENT": {"Ref": "Environment"},
        "RUNS_TABLE_NAME": {"Ref": "RunsTable"},
        "LEDGER_BUCKET_NAME": {"Ref": "LedgerBucket"},
    }


def test_the_stack_outputs_what_sagepipe_runs_reads() -> None:
    outputs = load_template()["Outputs"]
    for name in (
        "RunsTableName",
        "ArtifactsBucketName",
        "LedgerBucketName",
        "PipelineStateMachineArn",
        "SealRecordFunctionName",
    ):
        assert name in outputs, name

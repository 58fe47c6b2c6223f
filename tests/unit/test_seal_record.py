"""SealRecord: a final record's canonical JSON goes to the Object Lock ledger, and the record points at it."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from seal_record.seal import RecordNotFinal, RecordNotFound, SealConflict, read_record, seal_record

from common.audit_digests import ledger_body, sha256_hex

TABLE = "runs"
BUCKET = "ledger"
RUN = "0f8fad5b-d9cb-469f-a165-70867728950e"


class Account:
    def __init__(self) -> None:
        self.dynamodb: Any = boto3.client("dynamodb", region_name="us-east-1")
        self.s3: Any = boto3.client("s3", region_name="us-east-1")
        self.dynamodb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        self.s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        self.s3.put_object_lock_configuration(
            Bucket=BUCKET,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
            },
        )

    def put_record(self, status: str, **fields: dict[str, Any]) -> None:
        self.dynamodb.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": f"RUN#{RUN}"},
                "sk": {"S": "RECORD"},
                "run_id": {"S": RUN},
                "status": {"S": status},
                "metrics": {"M": {"validation:accuracy": {"N": "0.956140"}}},
                **fields,
            },
        )

    def seal(self, dynamodb: Any = None) -> Any:
        return seal_record(dynamodb or self.dynamodb, self.s3, table=TABLE, bucket=BUCKET, run_id=RUN)

    def versions(self) -> list[dict[str, Any]]:
        versions: list[dict[str, Any]] = self.s3.list_object_versions(Bucket=BUCKET, Prefix=f"ledger/{RUN}.json").get(
            "Versions", []
        )
        return versions


@pytest.fixture
def account() -> Iterator[Account]:
    with mock_aws():
        yield Account()


def test_a_final_record_is_written_to_the_ledger_and_points_at_its_version(account: Account) -> None:
    """Given a SUCCEEDED record, when sealed, then the ledger object is the record's canonical JSON under object
    lock, and the record names that object, its version and its sha256."""
    account.put_record("SUCCEEDED")
    before = read_record(account.dynamodb, TABLE, RUN)
    assert before is not None

    seal = account.seal()

    stored = account.s3.get_object(Bucket=BUCKET, Key=f"ledger/{RUN}.json", VersionId=seal.version_id)
    body = stored["Body"].read()
    assert body == ledger_body(before)
    assert b'"validation:accuracy":0.95614' in body
    assert seal.sha256 == sha256_hex(body)
    assert stored["ObjectLockMode"] == "GOVERNANCE"
    after = read_record(account.dynamodb, TABLE, RUN)
    assert after is not None
    assert (after["ledger_uri"], after["ledger_version_id"], after["ledger_sha256"]) == (
        f"s3://{BUCKET}/ledger/{RUN}.json",
        seal.version_id,
        seal.sha256,
    )
    # Sealing adds the pointers and nothing else: the ledger body of the sealed record is unchanged.
    assert ledger_body(after) == body
    assert seal.sealed_now


def test_sealing_again_changes_nothing(account: Account) -> None:
    """Given a sealed record (a retried task, a manual re-seal), when sealed again, then the same seal comes back
    and no second ledger version is written."""
    account.put_record("FAILED")
    first = account.seal()
    again = account.seal()
    assert (again.uri, again.version_id, again.sha256, again.sealed_now) == (
        first.uri,
        first.version_id,
        first.sha256,
        False,
    )
    assert len(account.versions()) == 1


class RacingClient:
    """A DynamoDB client whose first UpdateItem lets `before_update` run first, as a racing writer would."""

    def __init__(self, client: Any, before_update: Any) -> None:
        self._client = client
        self._before_update = before_update

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_item(self, **kwargs: Any) -> Any:
        if self._before_update is not None:
            before, self._before_update = self._before_update, None
            before()
        return self._client.update_item(**kwargs)


def test_an_attempt_that_races_another_seal_of_the_same_record_agrees_with_it(account: Account) -> None:
    """Given two attempts sealing one record at once (a retry after a lost response), then the loser finds the same
    bytes sealed and returns that seal: the record keeps the winner's version."""
    account.put_record("DUPLICATE")
    winner: list[Any] = []

    loser = account.seal(RacingClient(account.dynamodb, lambda: winner.append(account.seal())))

    assert (loser.version_id, loser.sha256, loser.sealed_now) == (winner[0].version_id, winner[0].sha256, False)
    record = read_record(account.dynamodb, TABLE, RUN)
    assert record is not None
    assert record["ledger_version_id"] == winner[0].version_id


def test_a_record_edited_while_it_is_sealed_is_not_pointed_at_the_old_bytes(account: Account) -> None:
    """Given a record whose status changes between the read and the write, then the seal is refused (SealConflict),
    and the record gets no ledger pointer that would not match it."""
    account.put_record("SKIPPED")

    def edit() -> None:
        account.put_record("SUCCEEDED")

    with pytest.raises(SealConflict, match="changed while it was sealed"):
        account.seal(RacingClient(account.dynamodb, edit))
    record = read_record(account.dynamodb, TABLE, RUN)
    assert record is not None
    assert "ledger_sha256" not in record


def test_only_final_records_exist_to_be_sealed(account: Account) -> None:
    with pytest.raises(RecordNotFound, match="has no record"):
        account.seal()
    account.put_record("RUNNING")
    with pytest.raises(RecordNotFinal, match="is RUNNING: only a final record is sealed"):
        account.seal()
    assert account.versions() == []
